/**
 * A unix-socket server speaking the portal's control protocol, as ndsctl.sock does (openNDS src/ndsctl_thread.c,
 * nodogsplash the same): the client connects, writes one request `<cmd>[ <args>]\r\n\r\n` (ndsctl joins its arguments
 * with commas), the portal reads up to the first CR/LF, writes the answer and closes the connection. Answers:
 * `json`/`status` print their text; `auth`/`deauth` answer the bare words `Yes` or `No` (the ndsctl binary turns them
 * into "Client … authenticated." and exit 0/1). The portal serves one connection at a time.
 * Used by the demo (the daemon's usage worker fetches from it exactly like from openNDS) and by the meter bench.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { PortalModel } from './portal.ts';

/** Answers one request line (without CR/LF); undefined closes the connection without an answer. */
export type NdsctlRequestHandler = (request: string) => string | Uint8Array | undefined;

export interface NdsctlSocketServer {
  readonly path: string;
  close(): Promise<void>;
}

const MAX_REQUEST = 1024;

export async function listenNdsctlSocket(path: string, handle: NdsctlRequestHandler): Promise<NdsctlSocketServer> {
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let request = '';
    socket.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1');
      const end = request.search(/[\r\n]/);
      if (end < 0) {
        if (request.length > MAX_REQUEST) socket.destroy();
        return;
      }
      const line = request.slice(0, end);
      request = '';
      socket.removeAllListeners('data');
      let answer: string | Uint8Array | undefined;
      try {
        answer = handle(line);
      } catch {
        answer = undefined;
      }
      if (answer === undefined) socket.destroy();
      else socket.end(answer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(path, { force: true });
          resolve();
        });
      }),
  };
}

/** Serves a PortalModel: the socket-level twin of `model.execute(argv)`. A stopped portal drops the connection. */
export function portalRequestHandler(model: PortalModel): NdsctlRequestHandler {
  return (line) => {
    if (!model.running) return undefined;
    const space = line.indexOf(' ');
    const cmd = space < 0 ? line : line.slice(0, space);
    const param = space < 0 ? '' : line.slice(space + 1);
    const result = model.execute(param === '' ? [cmd] : [cmd, param]);
    if (cmd === 'auth' || cmd === 'deauth') return result.code === 0 ? 'Yes' : 'No';
    return result.stdout;
  };
}
