// tier: daemon
/**
 * Outbound PC-sync on the real daemon (dist/sluice.mjs): session events reach a real HTTP receiver
 * (node:http) signed; with the receiver down the events wait on flash, survive a kill -9 of the daemon, and arrive
 * once each after the restart (acknowledged ones are not posted again).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DaemonLab } from '../daemon/harness.ts';
import { HOOK_HEADERS, verifyHookSignature } from '../../src/upstream/hook/signature.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';
const SECRET = 'hook-daemon-secret-0123456789';

interface Post {
  headers: IncomingHttpHeaders;
  body: Record<string, any>;
  raw: Buffer;
}
const posts: Post[] = [];
let server: Server | undefined;
let lab: DaemonLab | undefined;

async function listen(port = 0): Promise<number> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      posts.push({ headers: req.headers, body: JSON.parse(raw.toString()) as Record<string, any>, raw });
      res.writeHead(204).end();
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}
async function stopListening(): Promise<void> {
  const s = server;
  server = undefined;
  if (s)
    await new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    });
}

test.after.each(async () => {
  await lab?.close();
  await stopListening();
  lab = undefined;
});

test(
  'events posted signed; queued through a receiver outage ' + 'and a kill -9, each delivered once after the restart',
  async () => {
    const port = await listen();
    lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: `
config hook 'hook'
\toption enabled '1'
\toption url 'http://127.0.0.1:${port}/hook'
\toption secret '${SECRET}'
\toption timeout '2'
\toption backoff_max '1'
`,
    });
    lab.portal.addClient(A, '10.0.3.1');
    lab.portal.addClient(B, '10.0.3.2');
    await lab.startDaemon();
    const l = lab;
    const hookStats = async () =>
      ((await l.call('stats')).upstream as Record<string, Record<string, unknown>>)['hook']!;

    await l.call('grant', { mac: A, seconds: 3600, user: 'pc-1' });
    await l.waitFor(() => posts.length === 1, 10_000, 'started posted');
    await l.waitFor(async () => (await hookStats())['pending'] === 0, 10_000, 'acknowledged');
    const started = posts[0]!;
    assert.equal(
      [started.body.seq, started.body.event, started.body.session.mac, started.body.session.user],
      [1, 'started', A, 'pc-1'],
    );
    const ts = Number(started.headers[HOOK_HEADERS.timestamp]);
    assert.ok(
      verifyHookSignature(SECRET, {
        timestamp: ts,
        nonce: String(started.headers[HOOK_HEADERS.nonce]),
        body: started.raw,
        header: String(started.headers[HOOK_HEADERS.signature]),
      }),
    );

    // The receiver goes away; a purchase and an end happen; the daemon dies without a word.
    await stopListening();
    await l.call('grant', { mac: B, bytes: 1048576, user: 'pc-2' });
    await l.call('terminate', { mac: A });
    await l.waitFor(
      async () => (await hookStats())['pending'] === 2 && Number((await hookStats())['failures']) >= 1,
      10_000,
      'two queued, retrying',
    );
    await l.stopDaemon('SIGKILL');

    await listen(port);
    await l.startDaemon();
    await l.waitFor(() => posts.length >= 3, 20_000, 'the queued events after the restart');
    await l.waitFor(async () => (await hookStats())['pending'] === 0, 10_000, 'acknowledged');
    assert.equal(
      posts.map((p) => [p.body.seq, p.body.event, p.body.session.mac]),
      [
        [1, 'started', A],
        [2, 'started', B],
        [3, 'ended', A],
      ],
      'each once, in order; the one acknowledged before the kill not again',
    );
    const ended = posts[2]!.body.session;
    assert.equal([ended.cause, ended.state, ended.user], ['admin', 'TERMINATED', 'pc-1']);
    assert.ok(typeof ended.used === 'number' && ended.used >= 0);
    const stats = await hookStats();
    assert.not.ok(JSON.stringify(stats).includes(SECRET), 'stats never show the secret');
  },
);

test.run();
