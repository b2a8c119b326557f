// tier: peers; needs initdb mosquitto
/**
 * The collector between a real mosquitto and a real PostgreSQL 15: what routers report lands once (a message the
 * broker delivers again changes nothing), amounts exact; bad messages are counted, logged once, and never stop the
 * stream; a message whose `router` is not its topic's is refused.
 */
import { test } from 'uvu';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import { isReject, parseMessage } from '../../src/fleet/collector/index.ts';
import { RouterIds, storeMessage } from '../../src/fleet/collector/store.ts';
import { encode } from '../../src/upstream/mqtt/messages.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { collector, FakeRouter, freshDb, Postgres, waitFor } from './rig.ts';

let pg: Postgres;
let broker: Mosquitto;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
});
test.after.each(async () => {
  for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
});
test.after(async () => {
  await broker?.close();
  await pg?.close();
});

async function setup(): Promise<{ db: Db; c: Collector; lines: string[]; r1: FakeRouter }> {
  const db = await freshDb(pg);
  open.push(db);
  const lines: string[] = [];
  // A group of its own: a stopped collector's persistent session keeps its share of its group's stream.
  const id = Math.random().toString(16).slice(2, 8);
  const c = await collector(db, broker.url, lines, { clientId: `t-${id}`, group: `g-${id}` });
  open.push(c);
  const r1 = await FakeRouter.connect('r1', broker.url);
  open.push(r1);
  return { db, c, lines, r1 };
}

const handled = (c: Collector) => {
  const s = c.stats();
  return s.stored + s.duplicates + s.rejected;
};
const one = async <T>(db: Db, sql: string, params: unknown[] = []): Promise<T> => (await db.query<T>(sql, params))[0]!;

test('reports land once; a repeated seq changes nothing; amounts exact; status and usage roll up', async () => {
  const { db, c, r1 } = await setup();
  const big = '123456789012345678901234567890';
  await r1.started('s1', big);
  await r1.usage([['s1', 1000, 5000, 6000]]);
  await r1.started('s2', '1');
  // The same messages again, as a broker's redelivery would bring them.
  await r1.started('s1', big, 'ref-s1', 1);
  await r1.usage([['s1', 1000, 5000, 6000]], 2);
  await r1.publish('status', { ...r1.envelope('status', r1.seq), online: true, version: '0.1.0', uptime_s: 5 });
  await waitFor(() => handled(c) >= 6, 20_000, 'six messages');
  assert.is(c.stats().duplicates, 2);
  const rev = await one<{ total: string; n: string }>(
    db,
    "SELECT sum(amount)::text AS total, sum(payments)::text AS n FROM fleet_revenue_daily WHERE router = 'r1'",
  );
  assert.is(rev.total, (BigInt(big) + 1n).toString());
  assert.is(rev.n, '2');
  const pay = await one<{ total: string }>(db, 'SELECT sum(amount)::text AS total FROM fleet_payments');
  assert.is(pay.total, rev.total);
  const s1 = await one<Record<string, unknown>>(db, "SELECT * FROM fleet_sessions WHERE id = 's1'");
  assert.is(String(s1['used']), '6000');
  assert.is(String(s1['down_bytes']), '5000');
  assert.is(s1['plan'], 'data');
  const hour = await one<{ up: string; reports: string }>(
    db,
    'SELECT up_bytes::text AS up, reports::text FROM fleet_usage_hourly',
  );
  assert.equal([hour.up, hour.reports], ['1000', '1']);
  const router = await one<Record<string, unknown>>(db, 'SELECT * FROM fleet_routers');
  assert.is(router['online'], true);
  assert.is(String(router['last_seq']), '3');
  assert.equal(await db.query('SELECT * FROM fleet_gaps'), []);
});

test('a payment a router announces again after a restart (a new seq) is stored and counted once', async () => {
  const { db, c, r1 } = await setup();
  await r1.started('s1', '250', 'grant-1');
  // The restart's replay: the same session, method and reference under a later number.
  await r1.started('s1', '250', 'grant-1');
  await r1.started('s2', '250', 'grant-2');
  await waitFor(() => handled(c) >= 3, 20_000, 'three messages');
  assert.is(c.stats().stored, 3, 'each message is in the ledger');
  const rev = await one<{ total: string; n: string }>(
    db,
    "SELECT sum(amount)::text AS total, sum(payments)::text AS n FROM fleet_revenue_daily WHERE router = 'r1'",
  );
  assert.equal([rev.total, rev.n], ['500', '2']);
  const pay = await db.query<{ reference: string }>('SELECT reference FROM fleet_payments ORDER BY reference');
  assert.equal(
    pay.map((p) => p.reference),
    ['grant-1', 'grant-2'],
  );
});

test('a gap says what it held: usage reports only (droppable), a session message (lost), or not known', async () => {
  const { db, c, r1 } = await setup();
  await r1.started('s1', '10'); // 1
  await r1.usage([['s1', 1, 1, 1]]); // 2
  r1.seq += 2; // 3, 4: usage reports lost (in RAM at a crash)
  await r1.usage([['s1', 1, 1, 2]]); // 5: its previous session message is 1
  r1.seq += 1;
  r1.lastSession = 6; // 6: a session message lost
  await r1.usage([['s1', 1, 1, 3]]); // 7
  r1.seq += 1; // 8: unknown (the next message does not say)
  r1.lastSession = null;
  await r1.usage([['s1', 1, 1, 4]]); // 9
  await waitFor(() => handled(c) >= 5, 20_000, 'five messages');
  const gaps = await db.query<{ from_seq: string; to_seq: string; kind: string }>(
    'SELECT from_seq::text, to_seq::text, kind FROM fleet_gaps ORDER BY from_seq',
  );
  assert.equal(gaps, [
    { from_seq: '3', to_seq: '4', kind: 'usage' },
    { from_seq: '6', to_seq: '6', kind: 'session' },
    { from_seq: '8', to_seq: '8', kind: 'unknown' },
  ]);
  r1.lastSession = 0;
  await r1.publish('usage', { ...r1.envelope('usage', 10), prev_session_seq: 10, part: 0, parts: 1 });
  await waitFor(() => c.stats().rejected >= 1, 20_000, 'refused');
  assert.equal(c.stats().reasons, { 'prev_session_seq is not below seq': 1 });
});

test('usage per day from the sessions: their own totals, whatever usage reports were lost', async () => {
  const { db, c, r1 } = await setup();
  await r1.started('s1', '10');
  r1.seq += 3; // usage reports lost
  const env = r1.envelope('session');
  const ended = Date.UTC(2026, 10, 20, 12);
  await r1.publish('session', {
    ...env,
    event: 'ended',
    session: r1.session('s1', { state: 'TERMINATED', cause: 'admin', bytes: 777_000, used: 777_000, ended_at: ended }),
    payments: [{ method: 'x402', reference: 'ref-s1' }],
  });
  await waitFor(() => handled(c) >= 2, 20_000, 'two messages');
  const usage = await db.query('SELECT router, day::text, sessions::int, bytes::text FROM fleet_usage_daily');
  assert.equal(usage, [{ router: 'r1', day: '2026-11-20', sessions: 1, bytes: '777000' }]);
});

test("bad messages counted and logged once, never stopping the stream; a router not its topic's refused", async () => {
  const { db, c, lines, r1 } = await setup();
  const raw = (payload: Buffer | string, kind = 'usage') =>
    r1.client.publishAsync(`sluice/r1/${kind}`, payload, { qos: 1 });
  await raw(Buffer.from([0xc1, 0xff, 0x00]));
  await raw(Buffer.from([0xc1, 0xff, 0x00]));
  await raw('{"v":1,');
  await r1.publish('session', { ...r1.envelope('session'), v: 2, event: 'started', session: r1.session('x') });
  await r1.publish('session', { ...r1.envelope('session'), router: 'r2', event: 'started', session: r1.session('y') });
  await r1.publish('session', {
    ...r1.envelope('session'),
    event: 'started',
    session: r1.session('z'),
    payment: { method: 'x402', reference: 'r', amount: '-5', asset: 'usdc', at: Date.now() },
  });
  await r1.usage([['u', -1, 0, 0]]);
  await r1.publish('session', { ...r1.envelope('session', 99, 12) });
  await r1.started('good', '7');
  await waitFor(() => handled(c) >= 9, 20_000, 'nine messages');
  assert.is(c.stats().rejected, 8);
  assert.is(c.stats().stored, 1);
  const reasons = await db.query<{ reason: string; count: string }>(
    'SELECT reason, count::text FROM fleet_rejects ORDER BY reason',
  );
  // The same bytes twice on one topic are one message (as a redelivery, or another collector's copy): counted once.
  assert.equal(Object.fromEntries(reasons.map((r) => [r.reason, Number(r.count)])), {
    'not MessagePack or JSON': 2,
    'unknown version': 1,
    'router differs from the topic': 1,
    'payment.amount is not a decimal amount of at most 40 digits': 1,
    'row up is not a count': 1,
    'at is not a plausible time': 1,
  });
  assert.is(lines.filter((l) => l.includes('not MessagePack or JSON')).length, 1, 'logged once');
  const pay = await db.query<{ router: string; amount: string }>('SELECT router, amount::text FROM fleet_payments');
  assert.equal(pay, [{ router: 'r1', amount: '7' }]);
  assert.equal(
    (await db.query<{ name: string }>('SELECT name FROM routers')).map((r) => r.name),
    ['r1'],
    'r2 never became a router',
  );
});

test("a router's messages written at once wait for each other, never deadlock over its sessions", async () => {
  // Several connections (and collectors) write one router's messages at once: usage reports naming its sessions in
  // any order, payments on them. Each takes the router's row first, so they queue instead of locking sessions' rows
  // in opposite orders (PostgreSQL would abort one with 40P01, which the collector could only retry).
  const db = await freshDb(pg);
  open.push(db);
  const ids = new RouterIds();
  const ses = Array.from({ length: 8 }, (_, i) => `s${i}`);
  const at = Date.now();
  const parse = (kind: string, body: Record<string, unknown>) => {
    const m = parseMessage('sluice', `sluice/r1/${kind}`, encode('msgpack', body), at);
    if (isReject(m)) throw new Error(m.reject);
    return m;
  };
  const usage = (seq: number, order: string[]) =>
    parse('usage', {
      ...{ v: 1, router: 'r1', seq, type: 'usage', at, part: 0, parts: 1 },
      fields: ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'],
      sessions: order.map((id) => [id, '02:00:00:00:00:01', null, 'bytes', 10, 20, 30, 30, 1000, 970, 'ACTIVE']),
    });
  const topup = (seq: number, id: string) =>
    parse('session', {
      ...{ v: 1, router: 'r1', seq, type: 'session', at, event: 'topup' },
      session: { id, mac: '02:00:00:00:00:01', ip: null, user: null, plan: 'data', metric: 'bytes', state: 'ACTIVE' },
      payment: { method: 'x402', reference: `ref-${seq}`, amount: '5', asset: 'usdc', at },
    });
  await storeMessage(db, ids, usage(1, ses));
  let seq = 1;
  const failures: string[] = [];
  for (let round = 0; round < 30; round++) {
    const batch = [usage(++seq, ses), usage(++seq, [...ses].reverse()), topup(++seq, 's7'), topup(++seq, 's0')];
    await Promise.all(batch.map((m) => storeMessage(db, ids, m).catch((e: Error) => failures.push(e.message))));
  }
  assert.equal(failures, [], 'no transaction aborted');
  const paid = await one<{ n: string; total: string }>(
    db,
    "SELECT count(*)::text AS n, sum(amount)::text AS total FROM fleet_payments WHERE router = 'r1'",
  );
  assert.equal(paid, { n: '60', total: '300' });
  assert.equal(await db.query('SELECT * FROM fleet_gaps'), []);
});

test('sluice-fleet started before its database waits for it, then collects', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const [row] = await db.query<{ d: string }>('SELECT current_database() AS d');
  await pg.stop('fast');
  let out = '';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/fleet/main.ts', '--db', pg.url(row!.d), '--broker', broker.url, '--listen', 'none'].concat(
      ['--client-id', 'waits', '--group', 'waits', '--connections', '1'],
    ),
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  open.push({ stop: async () => void child.kill('SIGKILL') });
  try {
    await waitFor(
      () => out.includes('database not reachable yet') || child.exitCode !== null,
      120_000,
      'the collector to find no database',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.is(child.exitCode, null, `the collector waits, it does not exit: ${out}`);
  } finally {
    await pg.start();
  }
  await waitFor(() => out.includes('fleet: subscribed'), 120_000, `the collector subscribed: ${out}`);
  const r = await FakeRouter.connect('late', broker.url);
  open.push(r);
  await r.started('w1', '3');
  await waitFor(
    async () => (await db.query("SELECT 1 FROM fleet_payments WHERE router = 'late'")).length === 1,
    60_000,
    'the payment stored',
  );
});

test.run();
