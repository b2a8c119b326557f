// tier: fast
/**
 * src/http-client.ts, the bounded exchange every outbound HTTP call of sluice goes through (the hook, the x402 and
 * escrow facilitators, the chain's JSON-RPC), against real node:http servers: the body is cut at its bound and the
 * connection closed, the deadline covers the body, a declared over-long body is not read, the owner's signal ends it,
 * and the JSON client on top refuses an over-long answer without reading it all.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { boundedFetch } from '../src/http-client.ts';
import { jsonClient, rpcReader } from '../src/x402/index.ts';
import { HookReceiver } from './peers/hook-receiver.ts';

let server: Server | undefined;
let receiver: HookReceiver | undefined;

test.after.each(async () => {
  const s = server;
  server = undefined;
  if (s)
    await new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    });
  await receiver?.close();
  receiver = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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

test('a refused connection is `unsent`; a redirect is refused', async () => {
  const url = await serve((_req, res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end();
  });
  const closedPort = (() => {
    const s = server!;
    return (s.address() as AddressInfo).port;
  })();
  const redirected = await boundedFetch(url, { method: 'GET', timeoutMs: 5000, maxBytes: 4096 });
  assert.equal([redirected.kind, redirected.kind === 'none' && redirected.why], ['none', 'failed']);
  await new Promise<void>((r) => {
    server!.closeAllConnections();
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
