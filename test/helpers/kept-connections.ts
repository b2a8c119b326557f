/**
 * Imported by the peers sluice calls over HTTP: the connections src/http-client.ts keeps idle for a next exchange are
 * unref'd sockets, which a peer closing does not end before its file does (the client reads the peer's FIN on a later
 * turn of a loop that has nothing ref'd left). They are closed as the file ends, so none reaches the next file of a
 * thread (test/helpers/thread-leftovers.mjs).
 */
import { closeKeptConnections } from '../../src/http-client.ts';
import { atFileEnd } from './file-end.mjs';

atFileEnd(closeKeptConnections);
