// tier: peers; needs freeradius
// The accounting sink on its own against a real FreeRADIUS: Interim-Updates by interval with the figures so far, every
// end cause and attribute as FreeRADIUS stored it, and a full queue during an outage drops the oldest Interim-Updates
// (counted), never a Start or a Stop.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../src/log.ts';
import { SessionManager, type Session } from '../../../src/sessions/index.ts';
import { MemoryStore } from '../../../src/sessions/memory-store.ts';
import { SinkHost } from '../../../src/upstream/index.ts';
import { venueSessionOf } from '../../../src/upstream/venue-args.ts';
import { RadiusAccounting } from '../../../src/upstream/radius/accounting.ts';
import { RadiusClient } from '../../../src/radius/client.ts';
import { RadiusUpstream } from '../../../src/upstream/radius/upstream.ts';
import { configFromUci } from '../../../src/config/load.ts';
import { parseUci } from '../../../src/config/uci.ts';
import type { UsageReport } from '../../../src/meter/ports.ts';
import type { NasIdentity } from '../../../src/radius/nas.ts';
import { TERMINATE_CAUSES, LIMIT_CAUSES, type EndCause } from '../../../src/sessions/model.ts';
import { FreeRadius } from '../../peers/freeradius.ts';
import { useBytes } from '../../sessions/helpers.ts';
import { until } from '../../helpers/until.ts';

interface Ctx {
  radius: FreeRadius;
  dir: string;
  sessions: SessionManager;
  host: SinkHost;
  acct: RadiusAccounting;
  client: RadiusClient;
}
const t = suite<Ctx>('radius accounting', {} as Ctx);
const log = createLogger({ level: 'error' });
const mac = (n: number) => `02:00:00:00:0c:${n.toString(16).padStart(2, '0')}`;

async function setup(
  c: Ctx,
  options: {
    interimMs: number;
    maxBytes?: number;
    nas?: NasIdentity;
    multiSessionOf?: (s: Session) => string | null;
  },
): Promise<void> {
  c.dir = mkdtempSync(join(tmpdir(), 'sluice-acct-'));
  c.sessions = await SessionManager.open({ store: new MemoryStore() });
  c.client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: c.radius.acctPort, secret: c.radius.secret }],
    timeoutMs: 200,
    retries: 0,
  });
  const sessions = c.sessions;
  c.acct = new RadiusAccounting({
    dir: c.dir,
    maxBytes: options.maxBytes ?? 1 << 20,
    client: () => c.client,
    nas: () => options.nas ?? { identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' },
    interimMs: () => options.interimMs,
    maxInFlight: 8,
    maxBackoffMs: 500,
    log,
    session: (id) => sessions.get(id),
    recovered: () => ({ active: [], ended: [] }),
    syncIntervalMs: 50,
    ...(options.multiSessionOf && { multiSessionOf: options.multiSessionOf }),
  });
  c.host = new SinkHost({ log });
  c.host.add({
    name: 'radius',
    start: () => c.acct.start(),
    onEvent: (e) => c.acct.onEvent(e),
    stats: () => c.acct.stats(),
    close: () => c.acct.close(),
    destroy: () => c.acct.destroy(),
  });
  c.host.attach(sessions);
  await c.host.start();
}

t.before(async (c) => {
  c.radius = await FreeRadius.start();
});
t.after(async (c) => {
  await c.radius.close();
});
t.after.each(async (c) => {
  await c.host.close();
  await c.client.close();
  await c.sessions.close();
  rmSync(c.dir, { recursive: true, force: true });
});

const lines = (c: Ctx, kind: string) => c.radius.acctLines().filter((l) => l.startsWith(`${kind} `));

t('in a venue, every record carries the venue session as Acct-Multi-Session-Id, sold here or moved in', async (c) => {
  await setup(c, { interimMs: 3_600_000, multiSessionOf: (s) => venueSessionOf('ra', s) });
  const at = Date.now();
  const sold = await c.sessions.activate({
    mac: mac(40),
    metric: 'bytes',
    allotment: 1n << 30n,
    payment: { method: 't', reference: 'v1', amount: 1n, asset: '', at },
  });
  // A session that arrived from router rb (roaming.md): its payment names the venue lease it is a part of.
  const lease = 'rb/00112233445566ff';
  const moved = await c.sessions.activate({
    mac: mac(41),
    metric: 'bytes',
    allotment: 1n << 20n,
    payment: { method: 'venue', reference: `hall/${lease}#2/rb`, amount: 0n, asset: 'venue', at },
  });
  for (const s of [sold.session, moved.session]) await c.sessions.end(s.id, 'moved');
  await until(() => lines(c, 'Stop').length >= 2, 10_000, 'both Stops');
  const multi = (id: string, kind: string) =>
    c.radius.detail().find((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === kind)?.[
      'Acct-Multi-Session-Id'
    ];
  for (const kind of ['Start', 'Stop']) {
    assert.is(multi(sold.session.id, kind), `ra/${sold.session.id}`, `sold here: ${kind}`);
    assert.is(multi(moved.session.id, kind), lease, `moved in: ${kind}`);
  }
});

t('Interim-Update every interval with the usage so far (NAS view: input = upload)', async (c) => {
  await setup(c, { interimMs: 1500 });
  const { session } = await c.sessions.activate({
    mac: mac(1),
    metric: 'bytes',
    allotment: 1n << 40n,
    payment: { method: 't', reference: 'i1', amount: 0n, asset: '', at: Date.now() },
  });
  const report = (down: number, up: number): UsageReport => ({
    mac: mac(1),
    sessionId: session.id,
    metric: 'bytes',
    deltaBytes: down + up,
    deltaDownloadBytes: down,
    deltaUploadBytes: up,
    remainingBytes: 1e12,
    exhausted: false,
  });
  useBytes(c.sessions, [[mac(1), 3000 + 700]]);
  c.host.usage([report(3000, 700)]);
  await until(() => lines(c, 'Interim').length >= 1, 5000, 'first Interim');
  useBytes(c.sessions, [[mac(1), 5000]]);
  c.host.usage([report(5000, 0)]);
  await until(() => lines(c, 'Interim').length >= 2, 5000, 'second Interim');
  const [first, second] = lines(c, 'Interim').map((l) => l.split(' '));
  // linelog: Interim user sid time in out in-gw out-gw
  assert.equal([first![4], first![5]], ['700', '3000']);
  assert.equal([second![4], second![5]], ['700', '8000']);
  assert.ok(Number(second![3]) >= 2, 'Acct-Session-Time grows');
});

t(
  'every end cause reaches FreeRADIUS as its Acct-Terminate-Cause; every attribute of Start and Stop as ' +
    'documented (NAS-IPv6-Address)',
  async (c) => {
    const nas: NasIdentity = { identifier: 'nas-v6', ip: '2001:db8::1', calledStationId: 'AA-BB-CC-DD-EE-FF:hotspot' };
    await setup(c, { interimMs: 3_600_000, nas });
    // docs/radius.md's table; the test fails if a cause is added without a row here.
    const expected: Record<EndCause, string> = {
      'time-limit': 'Session-Timeout',
      'data-limit': 'Session-Timeout',
      admin: 'Admin-Reset',
      disconnect: 'Admin-Reset',
      'pc-logout': 'User-Request',
      'device-limit': 'Port-Preempted',
      'portal-lost': 'Lost-Carrier',
      moved: 'Port-Unneeded',
    };
    const causes = [...LIMIT_CAUSES, ...TERMINATE_CAUSES];
    assert.equal(Object.keys(expected).sort(), [...causes].sort());
    const ids = new Map<EndCause, { id: string; mac: string; startedAt: number }>();
    for (const [i, cause] of causes.entries()) {
      const { session } = await c.sessions.activate({
        mac: mac(60 + i),
        ip: `10.9.0.${i + 1}`,
        metric: 'bytes',
        allotment: 1n << 30n,
        ...(i % 2 === 0 && { user: `u-${cause}` }),
        payment: { method: 't', reference: `cause-${cause}`, amount: 0n, asset: '', at: Date.now() },
      });
      ids.set(cause, { id: session.id, mac: session.mac, startedAt: session.startedAt! });
      useBytes(c.sessions, [[session.mac, 1000 + i]]);
      c.host.usage([
        {
          mac: session.mac,
          sessionId: session.id,
          metric: 'bytes',
          deltaBytes: 1000 + i,
          deltaDownloadBytes: 800 + i,
          deltaUploadBytes: 200,
          remainingBytes: 1e9,
          exhausted: false,
        },
      ]);
    }
    for (const cause of causes) await c.sessions.end(ids.get(cause)!.id, cause);
    const record = (id: string, kind: string) =>
      c.radius.detail().find((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === kind);
    await until(
      () => causes.every((cause) => record(ids.get(cause)!.id, 'Stop') !== undefined),
      10_000,
      'a Stop per cause',
    );
    for (const [i, cause] of causes.entries()) {
      const { id, mac: m, startedAt } = ids.get(cause)!;
      assert.match(id, /^[0-9a-f]{16}$/);
      const start = record(id, 'Start')!;
      const stop = record(id, 'Stop')!;
      const ended = c.sessions.get(id)!;
      assert.is(stop['Acct-Terminate-Cause'], expected[cause], cause);
      for (const r of [start, stop]) {
        assert.equal(
          [
            r['User-Name'],
            r['Calling-Station-Id'],
            r['Called-Station-Id'],
            r['NAS-Identifier'],
            r['NAS-IPv6-Address'],
            r['NAS-IP-Address'],
            r['NAS-Port-Type'],
            r['Acct-Authentic'],
            r['Framed-IP-Address'],
          ],
          [
            i % 2 === 0 ? `u-${cause}` : m.toUpperCase().replaceAll(':', '-'),
            m.toUpperCase().replaceAll(':', '-'),
            'AA-BB-CC-DD-EE-FF:hotspot',
            'nas-v6',
            '2001:db8::1',
            undefined,
            'Wireless-802.11',
            'RADIUS',
            `10.9.0.${i + 1}`,
          ],
          `${cause} ${r['Acct-Status-Type']}`,
        );
      }
      // Event-Timestamp is when it happened (FreeRADIUS prints it as a date): the start, then the end.
      assert.is(
        Date.parse(start['Event-Timestamp']!) / 1000,
        Math.floor(startedAt / 1000),
        `${cause} Start Event-Timestamp`,
      );
      assert.is(
        Date.parse(stop['Event-Timestamp']!) / 1000,
        Math.floor(ended.endedAt! / 1000),
        `${cause} Stop Event-Timestamp`,
      );
      assert.is(start['Acct-Input-Octets'], undefined, 'no octets in a Start');
      // NAS view: input = from the client.
      assert.equal(
        [
          stop['Acct-Input-Octets'],
          stop['Acct-Output-Octets'],
          stop['Acct-Input-Gigawords'],
          stop['Acct-Output-Gigawords'],
        ],
        ['200', String(800 + i), '0', '0'],
        `${cause} octets`,
      );
      assert.ok(Number(stop['Acct-Session-Time']) >= 0 && Number(stop['Acct-Delay-Time']) >= 0);
    }
  },
);

t(
  "a Start carries the session's speed tier as WISPr-Bandwidth-Max-Down/-Up (bit/s); none without one, none in a Stop",
  async (c) => {
    await setup(c, { interimMs: 3_600_000 });
    const grant = (n: number, rates?: { downBps: number | null; upBps: number | null }) =>
      c.sessions.activate({
        mac: mac(n),
        metric: 'seconds',
        allotment: 600n,
        payment: { method: 't', reference: `tier-${n}`, amount: 0n, asset: '', at: Date.now() },
        ...(rates && { rates }),
      });
    const tiered = (await grant(40, { downBps: 8_000_000, upBps: 2_000_000 })).session;
    const down = (await grant(41, { downBps: 4_000_000, upBps: null })).session;
    const plain = (await grant(42)).session;
    await c.sessions.end(tiered.id, 'admin');
    const record = (id: string, kind: string) =>
      c.radius.detail().find((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === kind);
    await until(
      () =>
        [tiered, down, plain].every((s) => record(s.id, 'Start') !== undefined) &&
        record(tiered.id, 'Stop') !== undefined,
      10_000,
      'the Starts and the Stop',
    );
    const tier = (id: string, kind: string) => [
      record(id, kind)!['WISPr-Bandwidth-Max-Down'],
      record(id, kind)!['WISPr-Bandwidth-Max-Up'],
    ];
    assert.equal(tier(tiered.id, 'Start'), ['8000000', '2000000']);
    assert.equal(tier(down.id, 'Start'), ['4000000', undefined], 'a direction not limited is left out');
    assert.equal(tier(plain.id, 'Start'), [undefined, undefined]);
    assert.equal(tier(tiered.id, 'Stop'), [undefined, undefined]);
  },
);

t(
  "a voucher session reports at its Access-Accept's Acct-Interim-Interval, not radius.interim_interval; its " +
    'Class is echoed',
  async (c) => {
    await setup(c, { interimMs: 3_600_000 });
    // What the voucher method hands over after an Accept (voucher.test.ts checks it reads Acct-Interim-Interval, ≥ 60
    // s).
    c.acct.rememberVoucher('v-77', { interimIntervalS: 1, classes: [Buffer.from('plan-7')] });
    const voucher = await c.sessions.activate({
      mac: mac(40),
      user: 'v-77',
      metric: 'seconds',
      allotment: 3600n,
      payment: { method: 'voucher', reference: 'v-77', amount: 0n, asset: '', at: Date.now() },
    });
    const other = await c.sessions.activate({
      mac: mac(41),
      metric: 'seconds',
      allotment: 3600n,
      payment: { method: 't', reference: 'not-a-voucher', amount: 0n, asset: '', at: Date.now() },
    });
    const interims = (id: string) =>
      c.radius.detail().filter((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === 'Interim-Update');
    await until(() => interims(voucher.session.id).length >= 2, 10_000, 'two Interim-Updates of the voucher session');
    assert.is(interims(other.session.id).length, 0, 'the other session waits for radius.interim_interval (1 h)');
    assert.is(interims(voucher.session.id)[0]!['Class'], `0x${Buffer.from('plan-7').toString('hex')}`);
  },
);

t(
  'accounting fails over to the second server of radius.server when the first is silent; each record once',
  async (c) => {
    await setup(c, { interimMs: 3_600_000 });
    await c.client.close();
    // The first server: a port where nothing answers (bound and closed again).
    const dead = createSocket('udp4');
    await new Promise<void>((r) => dead.bind(0, '127.0.0.1', () => r()));
    const deadPort = dead.address().port;
    dead.close();
    c.client = new RadiusClient({
      servers: [
        { host: '127.0.0.1', port: deadPort, secret: c.radius.secret },
        { host: '127.0.0.1', port: c.radius.acctPort, secret: c.radius.secret },
      ],
      timeoutMs: 200,
      retries: 1,
    });
    const { session } = await c.sessions.activate({
      mac: mac(45),
      metric: 'seconds',
      allotment: 3600n,
      payment: { method: 't', reference: 'fo', amount: 0n, asset: '', at: Date.now() },
    });
    await c.sessions.end(session.id, 'admin');
    const mine = (kind: string) => lines(c, kind).filter((l) => l.includes(session.id)).length;
    await until(() => mine('Stop') >= 1, 10_000, 'the Stop at the second server');
    await until(() => c.acct.pendingCount() === 0, 5000, 'queue drained');
    assert.equal([mine('Start'), mine('Stop')], [1, 1]);
    const stats = c.client.stats();
    assert.ok(stats.failovers >= 1, `failovers ${stats.failovers}`);
    assert.is(stats.server, 1, 'the silent first server is skipped for now');
  },
);

t(
  'an outage with a small queue: the oldest Interim-Updates are dropped and counted, every Start and Stop survives',
  async (c) => {
    // The smallest queue (one 4 KiB segment, the outbox's minimum): drops start once the first segment is full rather
    // than after four, which at one tick a second took ~14 s of waiting.
    await setup(c, { interimMs: 100, maxBytes: 4096 });
    await c.radius.stop();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { session } = await c.sessions.activate({
        mac: mac(10 + i),
        metric: 'seconds',
        allotment: 3600n,
        payment: { method: 't', reference: `o${i}`, amount: 0n, asset: '', at: Date.now() },
      });
      ids.push(session.id);
    }
    // One Interim-Update per session per tick (1 s) piles up while the server is down.
    await until(
      () => Number((c.acct.stats() as Record<string, number>).dropped_interim) > 20,
      20_000,
      'interims dropped',
    );
    for (const id of ids) await c.sessions.end(id, 'admin');
    // The Stops wait at least 1.5 s for the server.
    await new Promise((r) => setTimeout(r, 1500));
    const produced = c.acct.stats() as Record<string, Record<string, number>>;
    assert.is(produced.produced!.Start, 6);
    assert.is(produced.produced!.Stop, 6);
    // While no server answers, one request at a time probes; the backlog does not hit the server all at once.
    const during = c.acct.stats() as Record<string, number>;
    assert.is(during.window, 1);
    assert.ok(during.in_flight! <= 1, `in flight ${during.in_flight}`);
    await c.radius.start();
    const mine = (kind: string) =>
      lines(c, kind)
        .map((l) => l.split(' ')[2]!)
        .filter((id) => ids.includes(id))
        .sort();
    await until(() => mine('Stop').length >= 6, 20_000, 'Stops after the outage');
    await until(() => c.acct.pendingCount() === 0, 20_000, 'queue drained');
    assert.equal(mine('Start'), [...ids].sort(), 'each Start exactly once');
    assert.equal(mine('Stop'), [...ids].sort(), 'each Stop exactly once');
    const stats = c.acct.stats() as Record<string, number>;
    assert.ok(stats.dropped_interim! > 20, `dropped ${stats.dropped_interim}`);
    assert.is(stats.window, 8, 'back to max_inflight once the server answers');
    // The Stops waited out the outage: Acct-Delay-Time says so (it is recomputed for every attempt).
    const delays = c.radius
      .detail()
      .filter((r) => r['Acct-Status-Type'] === 'Stop' && ids.includes(r['Acct-Session-Id']!))
      .map((r) => Number(r['Acct-Delay-Time']));
    assert.is(delays.length, 6);
    assert.ok(delays.every((d) => d >= 0) && Math.max(...delays) >= 1, `Acct-Delay-Time ${delays.join(',')}`);
  },
);

t('a session accounting had started that the restarted daemon no longer has gets a Stop with NAS-Reboot', async (c) => {
  await setup(c, { interimMs: 3_600_000 });
  const { session } = await c.sessions.activate({
    mac: mac(30),
    metric: 'seconds',
    allotment: 3600n,
    payment: { method: 't', reference: 'nr', amount: 0n, asset: '', at: Date.now() },
  });
  await until(() => lines(c, 'Start').some((l) => l.includes(session.id)), 5000, 'Start');
  await c.acct.close();
  // A new daemon whose session store lost that session (state reset): its accounting must not stay open for ever.
  const again = new RadiusAccounting({
    dir: c.dir,
    maxBytes: 1 << 20,
    client: () => c.client,
    nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
    interimMs: () => 3_600_000,
    maxInFlight: 8,
    maxBackoffMs: 500,
    log,
    session: () => null,
    recovered: () => ({ active: [], ended: [] }),
  });
  await again.start();
  try {
    await until(() => lines(c, 'Stop').some((l) => l.includes(session.id)), 5000, 'Stop NAS-Reboot');
    assert.ok(
      lines(c, 'Stop')
        .find((l) => l.includes(session.id))!
        .endsWith('NAS-Reboot'),
    );
  } finally {
    await again.close();
  }
});

t(
  'after a restart the running sessions report their first Interim-Update spread over one interval, not all at once',
  async (c) => {
    await setup(c, { interimMs: 3_600_000 });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push(
        (
          await c.sessions.activate({
            mac: mac(80 + i),
            metric: 'seconds',
            allotment: 3600n,
            payment: { method: 't', reference: `sp${i}`, amount: 0n, asset: '', at: Date.now() },
          })
        ).session.id,
      );
    }
    await until(() => ids.every((id) => lines(c, 'Start').some((l) => l.includes(id))), 5000, 'Starts');
    await c.acct.close();
    // The restarted daemon: the same 12 sessions live (all started in the same second), a 4 s interval.
    const sessions = c.sessions;
    const again = new RadiusAccounting({
      dir: c.dir,
      maxBytes: 1 << 20,
      client: () => c.client,
      nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
      interimMs: () => 4000,
      maxInFlight: 8,
      maxBackoffMs: 500,
      log,
      session: (id) => sessions.get(id),
      recovered: () => ({ active: ids.map((id) => sessions.get(id)!), ended: [] }),
    });
    await again.start();
    try {
      const first = () =>
        ids.map((id) =>
          c.radius.detail().find((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === 'Interim-Update'),
        );
      await until(() => first().every((r) => r !== undefined), 10_000, 'a first Interim-Update of each');
      // Sent as each one's random point comes (Event-Timestamp, seconds): without the spread all 12 share one tick.
      const seconds = new Set(first().map((r) => r!['Event-Timestamp']));
      assert.ok(seconds.size >= 2, `first Interim-Updates in ${seconds.size} distinct second(s)`);
    } finally {
      await again.close();
    }
  },
);

t(
  'a session recovery ends again after a crash (its end never reached the journal) gets no second Stop, ' +
    'delivered or queued',
  async (c) => {
    await setup(c, { interimMs: 3_600_000 });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { session } = await c.sessions.activate({
        mac: mac(40 + i),
        metric: 'seconds',
        allotment: 3600n,
        payment: { method: 't', reference: `re${i}`, amount: 0n, asset: '', at: Date.now() },
      });
      ids.push(session.id);
    }
    await until(() => ids.every((id) => lines(c, 'Start').some((l) => l.includes(id))), 5000, 'both Starts');
    // The first Stop reaches the server; the second waits in the queue (server down) when the process dies.
    c.sessions.endNow(ids[0]!, 'admin');
    await until(() => lines(c, 'Stop').some((l) => l.includes(ids[0]!)), 5000, 'first Stop');
    await c.radius.stop();
    c.sessions.endNow(ids[1]!, 'admin');
    await until(() => c.acct.pendingCount() >= 1, 5000, 'second Stop queued');
    c.acct.destroy(); // kill -9: nothing flushed beyond what each write() put in the page cache
    const stopsOf = (id: string) => lines(c, 'Stop').filter((l) => l.includes(id)).length;
    // The restarted daemon's journal lacked both ends: recovery ends both sessions again.
    const restart = () =>
      new RadiusAccounting({
        dir: c.dir,
        maxBytes: 1 << 20,
        client: () => c.client,
        nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
        interimMs: () => 3_600_000,
        maxInFlight: 8,
        maxBackoffMs: 500,
        log,
        session: (id) => c.sessions.get(id),
        recovered: () => ({ active: [], ended: ids.map((id) => ({ ...c.sessions.get(id)!, endedAt: Date.now() })) }),
      });
    let again = restart();
    await again.start();
    try {
      await c.radius.start();
      await until(() => stopsOf(ids[1]!) >= 1, 10_000, 'queued Stop delivered after the restart');
      await until(() => again.pendingCount() === 0, 10_000, 'queue drained');
      await again.close();
      // And once more, after a clean close compacted the logs.
      again = restart();
      await again.start();
      await new Promise((r) => setTimeout(r, 1000));
      assert.is(again.pendingCount(), 0, 'nothing queued');
      assert.equal(ids.map(stopsOf), [1, 1], 'one Stop per session');
      assert.equal((again.stats().produced as Record<string, number>).Stop, 0);
    } finally {
      await again.close();
    }
  },
);

t(
  'a reload to another server in an outage sends the queued Stops there, each once, without waiting out the pause',
  async (c) => {
    const other = await FreeRadius.start();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-acct-reload-'));
    const sessions = await SessionManager.open({ store: new MemoryStore() });
    const config = (port: number) =>
      configFromUci(
        parseUci(
          `config sluice 'main'\n\toption state_dir '${dir}'\nconfig pricing 'p'\n\toption price_per_step 1\n` +
            `config radius 'radius'\n\toption enabled 1\n\toption server 127.0.0.1\n\toption ` +
            `acct_port ${port}\n\toption secret ${c.radius.secret}\n` +
            `\toption coa_port 0\n\toption nas_ip 127.0.0.1\n\toption timeout 0.2\n\toption retries ` +
            `0\n\toption backoff_max 60\n`,
          'test',
        ),
      );
    const upstream = RadiusUpstream.fromConfig(config(c.radius.acctPort), {
      log,
      stateDir: dir,
      sessions,
      recovered: () => ({ active: [], ended: [] }),
      closeGate: async () => undefined,
    })!;
    const host = new SinkHost({ log });
    host.add(upstream);
    host.attach(sessions);
    await host.start();
    const acct = () => (upstream.stats() as { accounting: Record<string, number> }).accounting;
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          (
            await sessions.activate({
              mac: mac(50 + i),
              metric: 'seconds',
              allotment: 3600n,
              payment: { method: 't', reference: `rl${i}`, amount: 0n, asset: '', at: Date.now() },
            })
          ).session.id,
        );
      }
      await until(
        () => ids.every((id) => lines(c, 'Start').some((l) => l.includes(id))),
        5000,
        'Starts at the first server',
      );
      await c.radius.stop();
      for (const id of ids) await sessions.end(id, 'admin');
      // The pause between rounds has grown past what the rest of the test waits for the new server.
      await until(() => acct().backing_off_ms! > 3000, 20_000, 'a long pause');
      await host.reload(config(other.acctPort));
      // No waiting out the old pause: the new servers are tried at once.
      assert.is(acct().backing_off_ms, 0);
      const stopsAt = (id: string) => other.acctLines().filter((l) => l.startsWith('Stop ') && l.includes(id)).length;
      await until(() => ids.every((id) => stopsAt(id) >= 1), 20_000, 'Stops at the new server');
      await until(() => acct().queued === 0, 5000, 'queue drained');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(ids.map(stopsAt), [1, 1, 1]);
    } finally {
      await host.close();
      await sessions.close();
      await other.close();
      await c.radius.start();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

t.run();
