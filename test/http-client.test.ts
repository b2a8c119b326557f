// tier: fast
/**
 * src/http-client.ts, the bounded exchange every outbound HTTP call of sluice goes through (the hook, the x402 and
 * escrow facilitators, the chain's JSON-RPC, the Cashu mints), against real node:http and raw TCP servers: the body
 * is cut at its bound and the connection closed, the deadline covers the body, a declared over-long body is not read,
 * the owner's signal ends it (connecting too), a chunked body is read whole, a peer closing mid-body is no answer and
 * one sending more than it declared gives no more, a 3xx is an answer not followed; a connection is kept for the next
 * exchange, and after each one cut the server holds no connection of the client's. The JSON client on top refuses an
 * over-long answer without reading it all.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { boundedFetch } from '../src/http-client.ts';
import { jsonClient, rpcReader } from '../src/x402/index.ts';
import { HookReceiver } from './peers/hook-receiver.ts';

let server: Server | TcpServer | undefined;
let receiver: HookReceiver | undefined;
/** Every connection the test's server accepted, and when each closed. */
let accepted: Array<Promise<unknown>> = [];

test.after.each(async () => {
  const s = server;
  server = undefined;
  accepted = [];
  if (s)
    await new Promise<void>((r) => {
      if ('closeAllConnections' in s) s.closeAllConnections();
      s.close(() => r());
    });
  await receiver?.close();
  receiver = undefined;
});

async function listen(s: Server | TcpServer): Promise<string> {
  server = s;
  s.on('connection', (socket: Socket) => accepted.push(once(socket, 'close')));
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const serve = (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> =>
  listen(createServer(handler));

/** A peer that writes `bytes` as its answer to whatever comes, then does `then` with the connection. */
const raw = (bytes: string, then: 'end' | 'destroy' | 'hold'): Promise<string> =>
  listen(
    createTcpServer((socket) => {
      socket.once('data', () => {
        socket.write(bytes);
        if (then === 'end') socket.end();
        if (then === 'destroy') socket.destroy();
      });
      socket.on('error', () => undefined);
    }),
  );

/** Waits for each connection the server accepted to close, then asks the server how many it still holds. */
async function connectionsLeft(): Promise<number> {
  await Promise.all(accepted);
  return new Promise<number>((resolve, reject) => server!.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

const post = { method: 'POST' as const, body: '{"x":1}' };

test('a body that streams forever is cut at maxBytes and its connection closed', async () => {
  receiver = await HookReceiver.listen('stream');
  const a = await boundedFetch(receiver.url, { ...post, timeoutMs: 60_000, maxBytes: 4096 });
  assert.equal([a.kind, a.kind === 'cut' && a.why, a.kind !== 'none' && a.status], ['cut', 'too-large', 200]);
  const closed = await receiver.posts[0]!.closed;
  assert.ok(closed.cutByClient, 'the receiver saw the connection closed while sending');
});

test('a trickling body is cut at the deadline, which covers the body', async () => {
  receiver = await HookReceiver.listen('trickle');
  const a = await boundedFetch(receiver.url, { ...post, timeoutMs: 2000, maxBytes: 4096 });
  assert.equal([a.kind, a.kind === 'cut' && a.why], ['cut', 'timeout']);
  assert.ok((await receiver.posts[0]!.closed).cutByClient);
});

test('no status within the deadline: none, timeout; the connection closed', async () => {
  receiver = await HookReceiver.listen('silent');
  const a = await boundedFetch(receiver.url, { ...post, timeoutMs: 300, maxBytes: 4096 });
  assert.equal([a.kind, a.kind === 'none' && a.why], ['none', 'timeout']);
  assert.ok((await receiver.posts[0]!.closed).cutByClient);
});

test("the owner's signal ends an exchange in flight (aborted, not timeout)", async () => {
  receiver = await HookReceiver.listen('silent');
  const owner = new AbortController();
  const pending = boundedFetch(receiver.url, { ...post, timeoutMs: 60_000, maxBytes: 4096, signal: owner.signal });
  while (receiver.posts.length === 0) await new Promise((r) => setTimeout(r, 10));
  owner.abort();
  const a = await pending;
  assert.equal([a.kind, a.kind === 'none' && a.why], ['none', 'aborted']);
  assert.ok((await receiver.posts[0]!.closed).cutByClient);
  const late = await boundedFetch(receiver.url, { ...post, timeoutMs: 60_000, maxBytes: 4096, signal: owner.signal });
  assert.equal(
    [late.kind, late.kind === 'none' && late.why],
    ['none', 'aborted'],
    'an aborted owner sends nothing more',
  );
});

test(
  'a declared Content-Length over the bound is refused ' + 'before reading; a body within it is returned whole',
  async () => {
    let wrote = 0;
    const url = await serve((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(1 << 30) });
        // Whatever it sends, the client hangs up first.
        const timer = setInterval(() => {
          wrote++;
          res.write('y');
        }, 20);
        res.on('close', () => clearInterval(timer));
      } else res.end('{"ok":true}');
    });
    const big = await boundedFetch(`${url}/big`, { method: 'GET', timeoutMs: 60_000, maxBytes: 4096 });
    assert.equal([big.kind, big.kind === 'cut' && big.why], ['cut', 'too-large']);
    const small = await boundedFetch(`${url}/small`, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
    assert.equal([small.kind, small.kind === 'answer' && small.body.toString()], ['answer', '{"ok":true}']);
    assert.ok(wrote < 1000);
  },
);

test('a redirect is an answer, not followed; a refused connection is `unsent`', async () => {
  const asked: string[] = [];
  const url = await serve((req, res) => {
    asked.push(req.url ?? '');
    res.writeHead(302, { location: '/elsewhere' }).end('moved');
  });
  const redirected = await boundedFetch(`${url}/here`, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
  assert.equal(
    [redirected.kind, redirected.kind !== 'none' && redirected.status, asked],
    ['answer', 302, ['/here']],
    'the 302 itself, its Location never asked',
  );
  const closedPort = (server!.address() as AddressInfo).port;
  await new Promise<void>((r) => {
    (server as Server).closeAllConnections();
    server!.close(() => r());
  });
  server = undefined;
  const refused = await boundedFetch(`http://127.0.0.1:${closedPort}/`, {
    method: 'GET',
    timeoutMs: 5000,
    maxBytes: 4096,
  });
  assert.equal([refused.kind, refused.kind === 'none' && refused.why], ['none', 'unsent']);
});

test('a chunked body is read whole; the connection is kept for the next exchange', async () => {
  const url = await serve((_req, res) => {
    res.writeHead(200);
    let n = 0;
    const more = (): void => {
      if (n === 5) return void res.end();
      res.write(`part${n++};`);
      setImmediate(more);
    };
    more();
  });
  for (let i = 0; i < 2; i++) {
    const a = await boundedFetch(url, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
    assert.equal([a.kind, a.kind === 'answer' && a.body.toString()], ['answer', 'part0;part1;part2;part3;part4;']);
  }
  assert.is(accepted.length, 1, 'one connection for both');
});

test('a body as bytes or as text goes with its length in bytes', async () => {
  const got: Array<[string | undefined, string]> = [];
  const url = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push([req.headers['content-length'], Buffer.concat(chunks).toString()]);
      res.end();
    });
  });
  for (const body of ['prix: 5 €', new TextEncoder().encode('prix: 5 €'), ''])
    assert.is((await boundedFetch(url, { method: 'POST', body, timeoutMs: 5000, maxBytes: 16 })).kind, 'answer');
  assert.equal(got, [
    ['11', 'prix: 5 €'],
    ['11', 'prix: 5 €'],
    ['0', ''],
  ]);
});

test('a peer sending more than its Content-Length: the declared body is the answer, the rest is not read', async () => {
  const url = await raw(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello${'x'.repeat(10_000)}`, 'hold');
  const a = await boundedFetch(url, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
  assert.equal([a.kind, a.kind === 'answer' && a.body.toString()], ['answer', 'hello']);
  assert.is(await connectionsLeft(), 0, 'the client closed it, though the peer held it open');
});

test('a peer closing mid-body is a cut answer, whether it declared a length or sent chunks', async () => {
  for (const answer of [
    'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
  ]) {
    for (const then of ['end', 'destroy'] as const) {
      await raw(answer, then);
      const url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
      const a = await boundedFetch(url, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
      assert.equal([a.kind, a.kind === 'cut' && a.why, a.kind === 'cut' && a.status], ['cut', 'failed', 200], then);
      assert.is(await connectionsLeft(), 0);
      await new Promise<void>((r) => server!.close(() => r()));
      server = undefined;
      accepted = [];
    }
  }
});

test("the owner's abort and the deadline end an exchange still connecting (a TLS handshake unanswered)", async () => {
  // A TCP peer that reads and never speaks: an https request waits for its TLS handshake.
  const silent = createTcpServer((socket) => socket.on('error', () => undefined).resume());
  const url = (await listen(silent)).replace('http:', 'https:');
  const owner = new AbortController();
  const pending = boundedFetch(url, { method: 'GET', timeoutMs: 60_000, maxBytes: 4096, signal: owner.signal });
  while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
  owner.abort();
  const a = await pending;
  assert.equal([a.kind, a.kind === 'none' && a.why], ['none', 'aborted']);
  assert.is(await connectionsLeft(), 0);
  const late = await boundedFetch(url, { method: 'GET', timeoutMs: 200, maxBytes: 4096 });
  assert.equal([late.kind, late.kind === 'none' && late.why], ['none', 'timeout']);
  assert.is(await connectionsLeft(), 0);
});

test(
  'the JSON client (facilitators, escrow) and the JSON-RPC reader refuse an answer that streams forever, without ' +
    'reading it all',
  async () => {
    receiver = await HookReceiver.listen('stream');
    const call = jsonClient({ url: receiver.url, timeoutMs: 60_000 });
    const a = await call('POST', '', { q: 1 });
    assert.is(a.kind, 'none');
    assert.match((a as { message: string }).message, /larger than 65536 bytes/);
    const rpc = rpcReader({ url: receiver.url, timeoutMs: 60_000 });
    try {
      await rpc.block(null);
      assert.unreachable('an endless answer is no block');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_X402_RPC_UNAVAILABLE');
      assert.match((err as Error).message, /larger than 1048576 bytes/);
    }
    for (const p of receiver.posts) assert.ok((await p.closed).cutByClient);
  },
);

test.run();
