// tier: fast
/**
 * The one listener of the LAN doors, on real loopback sockets: a move binds the new address first, so a bind that
 * fails (the port in use) leaves the old one serving and says ERR_HTTP_LISTEN; a move that succeeds lets a request
 * already on the old socket finish (its answer closes the connection) while new connections reach the new address
 * only; close ends the draining socket too.
 */
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { Listener } from '../../src/listener/index.ts';

interface Answer {
  status: number;
  body: string;
  connection: string | undefined;
}

function get(port: number, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A port some other socket holds, so a bind to it fails. */
async function heldPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}

function listenerWith(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listener> {
  return Listener.open({ host: '127.0.0.1', port: 0, handler, headersTimeoutMs: 5000, requestTimeoutMs: 10_000 });
}

test('a move to a port in use keeps the old socket serving and says ERR_HTTP_LISTEN', async () => {
  const listener = await listenerWith((_req, res) => res.end('here'));
  const held = await heldPort();
  try {
    const before = listener.port;
    const err = await listener.rebind('127.0.0.1', held.port).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, SluiceError);
    assert.is((err as SluiceError).code, 'ERR_HTTP_LISTEN');
    assert.ok((err as SluiceError).message.includes(`127.0.0.1:${held.port}`));
    assert.is(listener.port, before);
    assert.is((await get(before)).body, 'here');
  } finally {
    await listener.close();
    held.server.close();
  }
});

test('a move serves on the new port, finishes the request already on the old one, and stops the old', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered = false;
  const listener = await listenerWith((req, res) => {
    if (req.url === '/slow') {
      entered = true;
      void held.then(() => res.end('slow done'));
    } else res.end(`fast ${req.url}`);
  });
  try {
    const oldPort = listener.port;
    const slow = get(oldPort, '/slow');
    // The slow request is inside the handler before the move.
    while (!entered) await new Promise((r) => setTimeout(r, 10));
    await listener.rebind('127.0.0.1', 0);
    const newPort = listener.port;
    assert.is.not(newPort, oldPort);
    assert.is((await get(newPort, '/x')).body, 'fast /x');
    assert.is(listener.drainingCount, 1, 'the old socket drains while its request runs');
    release();
    const answer = await slow;
    assert.is(answer.body, 'slow done');
    assert.is(answer.connection, 'close', 'the answer on the retired socket closes its connection');
    const refused = await get(oldPort).then(
      () => null,
      (e: NodeJS.ErrnoException) => e.code,
    );
    assert.is(refused, 'ECONNREFUSED');
    while (listener.drainingCount > 0) await new Promise((r) => setTimeout(r, 10));
  } finally {
    release();
    await listener.close();
  }
});

test('close ends a socket still draining after a move', async () => {
  let entered = false;
  const listener = await listenerWith(() => {
    entered = true; // never answers
  });
  const hanging = get(listener.port, '/hang').then(
    () => 'answered',
    () => 'cut',
  );
  while (!entered) await new Promise((r) => setTimeout(r, 10));
  await listener.rebind('127.0.0.1', 0);
  assert.is(listener.drainingCount, 1);
  await listener.close();
  assert.is(await hanging, 'cut');
  assert.is(listener.drainingCount, 0);
});

test.run();
