// tier: daemon
/**
 * Outbound PC-sync: the hook sink against a real HTTP server (node:http). Session events arrive
 * signed, in order; through an outage (connection refused, then 503s) they stay queued and arrive once after it, each
 * attempt signed afresh; the receiver example of docs/hook.md (run as written) takes the sink's posts and refuses a
 * forged, altered, stale or replayed one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { HookSink, type HookSinkDeps } from '../../src/upstream/hook/sink.ts';
import { HOOK_HEADERS, signedHeaders, verifyHookSignature } from '../../src/upstream/hook/signature.ts';
import type { HookConfig } from '../../src/config/hook.ts';
import type { Config } from '../../src/config/types.ts';
import { fakeSession, recordingLog, tempDir } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const SECRET = 'hook-test-secret-0123456789';
const cleanups: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Post {
  headers: IncomingHttpHeaders;
  body: Buffer;
  status: number;
}

/** A receiver that records every post and answers `status()` (204 unless told otherwise). */
async function receiver(
  port = 0,
  status: () => number = () => 204,
): Promise<{ server: Server; port: number; posts: Post[]; next: (n: number) => Promise<void> }> {
  const posts: Post[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const code = status();
      posts.push({ headers: req.headers, body: Buffer.concat(chunks), status: code });
      res.writeHead(code).end();
      for (const w of waiters.filter((x) => posts.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return {
    server,
    port: (server.address() as AddressInfo).port,
    posts,
    next: (n) => (posts.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}

function hookConfig(port: number, over: Partial<HookConfig> = {}): HookConfig {
  return {
    enabled: true,
    url: `http://127.0.0.1:${port}/sluice?token=t`,
    secret: SECRET,
    timeoutMs: 2000,
    backoffMaxMs: 200,
    queueMax: 1 << 20,
    ...over,
  };
}

function sinkFor(cfg: HookConfig, stateDir = tempDir('sluice-hook-'), extra: Partial<HookSinkDeps> = {}) {
  const lines: string[] = [];
  const sink = new HookSink(cfg, { log: recordingLog(lines), routerId: 'r1', stateDir, backoffMinMs: 20, ...extra });
  cleanups.push(async () => {
    await sink.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return { sink, lines, stateDir };
}

const json = (p: Post) => JSON.parse(p.body.toString('utf8')) as Record<string, any>;

test('started, topped up, ended: posted in order as JSON, each signed over timestamp, nonce and body', async () => {
  const r = await receiver();
  const { sink } = sinkFor(hookConfig(r.port));
  await sink.start();
  const s = fakeSession({
    user: 'pc-7',
    metric: 'seconds',
    allotment: 3600n,
    rates: { downBps: 8_000_000, upBps: null },
  });
  sink.onEvent({ type: 'started', at: Date.now(), session: s });
  sink.onEvent({
    type: 'topup',
    at: Date.now(),
    session: { ...s, allotment: 7200n },
    payment: { method: 'grant', reference: 'g-top', amount: 0n, asset: '', at: Date.now() },
  });
  sink.onEvent({
    type: 'ended',
    at: Date.now(),
    session: {
      ...s,
      allotment: 7200n,
      used: 1250,
      bytes: 73_400_320,
      state: 'TERMINATED',
      endCause: 'pc-logout',
      endedAt: Date.now(),
    },
  });
  await r.next(3);
  const bodies = r.posts.map(json);
  assert.equal(
    bodies.map((b) => [b.seq, b.event, b.router, b.type]),
    [
      [1, 'started', 'r1', 'session'],
      [2, 'topup', 'r1', 'session'],
      [3, 'ended', 'r1', 'session'],
    ],
  );
  assert.equal(
    [
      bodies[1]!.payment.reference,
      bodies[2]!.session.cause,
      bodies[2]!.session.used,
      bodies[2]!.session.bytes,
      bodies[2]!.session.user,
    ],
    ['g-top', 'pc-logout', 1250, 73_400_320, 'pc-7'],
  );
  assert.equal(
    bodies.map((b) => [b.session.rate_down, b.session.rate_up]),
    [
      [8_000_000, null],
      [8_000_000, null],
      [8_000_000, null],
    ],
    'the speed tier (docs/hook.md)',
  );
  for (const p of r.posts) {
    assert.is(p.headers['content-type'], 'application/json');
    const ts = Number(p.headers[HOOK_HEADERS.timestamp]);
    assert.ok(Math.abs(Date.now() - ts) < 60_000, 'the time of sending');
    assert.match(String(p.headers[HOOK_HEADERS.nonce]), /^[0-9a-f]{24}$/);
    assert.ok(
      verifyHookSignature(SECRET, {
        timestamp: ts,
        nonce: String(p.headers[HOOK_HEADERS.nonce]),
        body: p.body,
        header: String(p.headers[HOOK_HEADERS.signature]),
      }),
    );
    assert.not.ok(
      verifyHookSignature('another-secret-0123456789', {
        timestamp: ts,
        nonce: String(p.headers[HOOK_HEADERS.nonce]),
        body: p.body,
        header: String(p.headers[HOOK_HEADERS.signature]),
      }),
    );
  }
  assert.is(new Set(r.posts.map((p) => p.headers[HOOK_HEADERS.nonce])).size, 3, 'a nonce per post');
  await until(() => sink.stats()['pending'] === 0, 10_000, 'all acknowledged', 10);
  const st = sink.stats();
  assert.equal(
    [st['delivered'], st['pending'], st['url']],
    [3, 0, `http://127.0.0.1:${r.port}/sluice`],
    'stats: no query (a token) shown',
  );
  assert.not.ok(JSON.stringify(st).includes(SECRET));
});

test(
  'an outage (refused, then 503): events stay queued and arrive once after it, in order, retried with a fresh ' +
    'signature',
  async () => {
    const first = await receiver();
    const port = first.port;
    const { sink, lines } = sinkFor(hookConfig(port));
    await sink.start();
    const a = fakeSession({ user: 'pc-1' });
    sink.onEvent({ type: 'started', at: Date.now(), session: a });
    await first.next(1);
    // Down: nothing listens on the port.
    await new Promise<void>((res) => {
      first.server.closeAllConnections();
      first.server.close(() => res());
    });
    sink.onEvent({
      type: 'topup',
      at: Date.now(),
      session: { ...a, allotment: 20_000_000n },
      payment: { method: 'grant', reference: 'g2', amount: 0n, asset: '', at: Date.now() },
    });
    sink.onEvent({
      type: 'ended',
      at: Date.now(),
      session: { ...a, state: 'TERMINATED', endCause: 'admin', endedAt: Date.now(), used: 5000, bytes: 5000 },
    });
    await until(() => Number(sink.stats()['failures']) >= 2, 10_000, 'retried while refused', 10);
    assert.is(sink.stats()['pending'], 2);
    assert.match(String(sink.stats()['last_error']), /POST http:\/\/127\.0\.0\.1:\d+\/sluice failed/);
    assert.ok(
      lines.some((l) => l.startsWith('warn hook delivery failed; retrying')),
      lines.join('\n'),
    );

    // Back, but answering 503 twice: the record is posted again (same seq, new nonce), then acknowledged.
    let answers = 0;
    const back = await receiver(port, () => (++answers <= 2 ? 503 : 204));
    await back.next(4);
    const seqs = back.posts.map((p) => [json(p).seq, p.status]);
    assert.equal(seqs, [
      [2, 503],
      [2, 503],
      [2, 204],
      [3, 204],
    ]);
    assert.is(new Set(back.posts.map((p) => p.headers[HOOK_HEADERS.nonce])).size, 4, 'each attempt signed afresh');
    assert.equal(json(back.posts[3]!).event, 'ended');
    await until(() => sink.stats()['pending'] === 0, 10_000, 'all acknowledged', 10);
    assert.equal([sink.stats()['pending'], sink.stats()['delivered'], sink.stats()['last_error']], [0, 3, null]);
  },
);

test('queued events survive a close with the receiver down and go out after the next start, ended once', async () => {
  const dead = await receiver();
  const port = dead.port;
  await new Promise<void>((res) => dead.server.close(() => res()));
  const stateDir = tempDir('sluice-hook-');
  const s = fakeSession({ user: 'pc-2' });
  const ended = { ...s, state: 'TERMINATED' as const, endCause: 'time-limit' as const, endedAt: Date.now() };
  {
    const sink = new HookSink(hookConfig(port), { log: recordingLog([]), routerId: 'r1', stateDir, backoffMinMs: 20 });
    await sink.start();
    sink.onEvent({ type: 'started', at: Date.now(), session: s });
    sink.onEvent({ type: 'ended', at: Date.now(), session: ended });
    await sink.close();
  }
  const r = await receiver(port);
  // The next run's recovery reports the same end again (it ran out while sluice was down): not posted twice.
  const { sink } = sinkFor(hookConfig(port), stateDir, { recovered: () => ({ ended: [ended] }) });
  await sink.start();
  await r.next(2);
  await sink.close();
  assert.equal(
    r.posts.map((p) => [json(p).seq, json(p).event]),
    [
      [1, 'started'],
      [2, 'ended'],
    ],
  );
});

test('reload switches the hook on and off; events of the time it was off are not posted', async () => {
  const r = await receiver();
  const { sink } = sinkFor(hookConfig(r.port, { enabled: false }));
  await sink.start();
  assert.is(sink.stats()['state'], 'disabled');
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession({ user: 'off' }) });
  const config = (hook: HookConfig) => ({ hook, main: { routerId: 'r2' } }) as unknown as Config;
  await sink.reload(config(hookConfig(r.port)));
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession({ user: 'on' }) });
  await r.next(1);
  assert.equal([json(r.posts[0]!).session.user, json(r.posts[0]!).router], ['on', 'r2']);
  await until(() => sink.stats()['pending'] === 0, 10_000, 'acknowledged', 10);
  await sink.reload(config(hookConfig(r.port, { enabled: false })));
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession({ user: 'off again' }) });
  await sink.reload(config(hookConfig(r.port)));
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession({ user: 'on again' }) });
  await r.next(2);
  assert.equal(
    r.posts.map((p) => json(p).session.user),
    ['on', 'on again'],
  );
});

/** The receiver block of docs/hook.md, run as written. */
async function docsReceiver(
  port: number,
): Promise<{ child: ChildProcess; lines: string[]; next: (n: number) => Promise<void> }> {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/hook.md'), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(doc)![1]!;
  const dir = tempDir('sluice-hook-rx-');
  const file = join(dir, 'receiver.mjs');
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, HOOK_SECRET: SECRET, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  const lines: string[] = [];
  let buffered = '';
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.filter((x) => lines.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  // Listening once a connection is accepted.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '' });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('the docs receiver did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    child,
    lines,
    next: (n) => (lines.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}

test(
  "docs/hook.md's receiver acts on the sink's posts once; refuses a forged, an altered, a stale and a replayed " +
    'post',
  async () => {
    const probe = await receiver();
    const port = probe.port;
    await new Promise<void>((res) => probe.server.close(() => res()));
    const rx = await docsReceiver(port);
    const { sink } = sinkFor(hookConfig(port));
    await sink.start();
    const s = fakeSession({ user: 'pc-9' });
    sink.onEvent({ type: 'started', at: Date.now(), session: s });
    sink.onEvent({
      type: 'ended',
      at: Date.now(),
      session: { ...s, state: 'TERMINATED', endCause: 'pc-logout', endedAt: Date.now(), used: 77, bytes: 77 },
    });
    await rx.next(2);
    assert.equal(
      rx.lines.map((l) => JSON.parse(l)),
      [
        { seq: 1, event: 'started', user: 'pc-9', mac: s.mac, cause: null, used: 0 },
        { seq: 2, event: 'ended', user: 'pc-9', mac: s.mac, cause: 'pc-logout', used: 77 },
      ],
    );

    const url = `http://127.0.0.1:${port}/sluice`;
    const body = Buffer.from(
      JSON.stringify({
        v: 1,
        router: 'r1',
        seq: 3,
        type: 'session',
        at: Date.now(),
        event: 'ended',
        session: { id: s.id, mac: s.mac, user: 'pc-9', cause: 'admin', used: 1 },
      }),
    );
    const post = async (headers: Record<string, string>, b: Buffer = body) =>
      (await fetch(url, { method: 'POST', headers, body: b })).status;
    const good = signedHeaders(SECRET, body, Date.now());
    assert.is(await post(signedHeaders('forged-secret-0123456789', body, Date.now())), 401, 'forged: another key');
    assert.is(await post(good, Buffer.from(body.toString().replace('"admin"', '"pc-logout"'))), 401, 'altered body');
    assert.is(await post(signedHeaders(SECRET, body, Date.now() - 10 * 60_000)), 401, 'stale: signed 10 min ago');
    assert.is(await post(good), 204, 'the genuine post');
    assert.is(await post(good), 409, 'the same post replayed');
    await rx.next(3);
    assert.is(rx.lines.length, 3, 'acted on once');
  },
);

test.run();
