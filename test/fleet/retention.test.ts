// tier: peers; needs initdb
/**
 * The ledger's retention on a real PostgreSQL 15: once a router's per-message rows are pruned, its spans keep exactly
 * once (a replayed old message is a duplicate, by either write path), the revenue, usage and sessions stay what they
 * were to the smallest unit, a hole before the watermark is still a gap (of the same kind, between the same times)
 * and is filled when its message comes late; and messages stored while passes prune run beside them are all counted
 * once, none lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { isReject, parseMessage, retentionPass, type Inbound } from '../../src/fleet/collector/index.ts';
import { RouterIds, storeMessage, type Stored } from '../../src/fleet/collector/store.ts';
import { storeUsageBatch, type UsageMessage } from '../../src/fleet/collector/usage-batch.ts';
import { encode } from '../../src/upstream/mqtt/messages.ts';
import { freshDb, Postgres } from './rig.ts';

let pg: Postgres;
const open: Db[] = [];
test.before(async () => {
  pg = await Postgres.create();
});
test.after(async () => {
  for (const db of open) await db.close();
  await pg?.close();
});

const FIELDS = ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'];
const DAY = 86_400_000;
/** The largest amount a router may send (40 digits: docs/fleet.md, "What a router may send"). */
const HUGE = '9'.repeat(40);

function parse(router: string, kind: string, body: Record<string, unknown>): Inbound {
  const parsed = parseMessage('sluice', `sluice/${router}/${kind}`, encode('msgpack', body), Date.now());
  if (isReject(parsed)) throw new Error(parsed.reject);
  return parsed;
}

/** A usage report of one session's deltas. */
function usage(router: string, seq: number, prev: number, at: number, session: string, up: number, down: number) {
  const env = { v: 1, router, seq, prev_session_seq: prev, type: 'usage', at, part: 0, parts: 1, fields: FIELDS };
  const row = [session, '02:00:00:00:00:01', null, 'bytes', up, down, seq, seq, 1e9, 1e9 - seq, 'ACTIVE'];
  return parse(router, 'usage', { ...env, sessions: [row] });
}

/** A `started` carrying its payment. */
function started(router: string, seq: number, prev: number, at: number, session: string, amount: string) {
  return parse(router, 'session', {
    v: 1,
    router,
    seq,
    prev_session_seq: prev,
    type: 'session',
    at,
    event: 'started',
    session: {
      id: session,
      mac: '02:00:00:00:00:01',
      ip: '10.0.0.2',
      user: null,
      plan: 'data',
      metric: 'bytes',
      state: 'ACTIVE',
      cause: null,
      allotment: 1e9,
      used: 0,
      bytes: 0,
      remaining: 1e9,
      started_at: at,
      expires_at: null,
      ended_at: null,
      at,
      rate_down: null,
      rate_up: null,
    },
    payment: { method: 'x402', reference: `ref-${router}-${seq}`, amount, asset: 'usdc', at },
  });
}

/** Stores messages, usage reports as one batch (the collector's group commit), session messages one by one. */
async function store(db: Db, ids: RouterIds, messages: readonly Inbound[]): Promise<Stored[]> {
  const out = new Map<Inbound, Stored>();
  const reports = messages.filter((m): m is UsageMessage => m.kind === 'usage');
  if (reports.length > 0) (await storeUsageBatch(db, ids, reports)).forEach((s, i) => out.set(reports[i]!, s));
  for (const m of messages) if (m.kind !== 'usage') out.set(m, await storeMessage(db, ids, m));
  return messages.map((m) => out.get(m)!);
}

/** What the money, usage, sessions and gaps views say, as text. */
async function views(db: Db): Promise<unknown> {
  const q = (sql: string) => db.query(sql);
  return JSON.parse(
    JSON.stringify({
      revenue: await q(
        'SELECT router, day::text, method, asset, amount::text, payments FROM fleet_revenue_daily ORDER BY 1, 2, 3',
      ),
      payments: await q('SELECT router, seq, amount::text, reference FROM fleet_payments ORDER BY 1, 2'),
      hours: await q(
        `SELECT router, hour::text, up_bytes::text, down_bytes::text, rows, reports FROM fleet_usage_hourly
         ORDER BY 1, 2`,
      ),
      sessions: await q(
        'SELECT router, id, used::text, up_bytes::text, down_bytes::text, state FROM fleet_sessions ORDER BY 1, 2',
      ),
      gaps: await q(
        `SELECT router, from_seq, to_seq, missing, kind, after_at::text, before_at::text FROM fleet_gaps
         ORDER BY 1, 2`,
      ),
    }),
  );
}

const count = async (db: Db, sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql))[0]!.n);

test('pruned messages replayed count nothing; money exact; a hole before the watermark stays', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const ids = new RouterIds();
  const T0 = Date.now() - 40 * DAY;
  const at = (seq: number) => T0 + seq * 2000;
  // ra: 1..20; 5 (a start with its payment) and 6 (a usage report) never arrive at first: a hole of kind session.
  const ra: Inbound[] = [];
  for (let seq = 1; seq <= 20; seq++) {
    const prev = seq <= 1 ? 0 : seq <= 4 ? 1 : seq === 5 ? 4 : 5;
    if (seq === 1) ra.push(started('ra', 1, 0, at(1), 's1', HUGE));
    else if (seq === 4) ra.push(started('ra', 4, 1, at(4), 's2', '1'));
    else if (seq === 5) ra.push(started('ra', 5, 4, at(5), 's3', '999999999999999999999'));
    else ra.push(usage('ra', seq, prev, at(seq), 's1', seq * 1000, seq * 3000));
  }
  // rb: a hole of usage reports only (3..4).
  const rb = [1, 2, 5, 6].map((seq) => usage('rb', seq, 0, at(seq), 's9', seq, seq));
  const late = ra.filter((m) => m.seq === 5 || m.seq === 6);
  const first = ra.filter((m) => !late.includes(m));
  assert.ok((await store(db, ids, [...first, ...rb])).every((s) => s === 'stored'));
  const before = await views(db);
  assert.equal(
    (before as { gaps: unknown[] }).gaps.map((g) => {
      const r = g as Record<string, unknown>;
      return [r['router'], r['from_seq'], r['to_seq'], r['kind']];
    }),
    [
      ['ra', '5', '6', 'session'],
      ['rb', '3', '4', 'usage'],
    ],
  );

  // ra's rows up to 12 came 40 days ago (past a 35 days' retention); the rest and rb's are recent.
  await db.query(
    `UPDATE messages SET received_at = now() - interval '40 days'
     WHERE seq <= 12 AND router_id = (SELECT id FROM routers WHERE name = 'ra')`,
  );
  const pass = await retentionPass(db, { retentionMs: 35 * DAY, settleMs: 0, chunk: 7, pruneChunk: 3 });
  assert.equal(pass, { routers: 2, spanned: 18 + 4, pruned: 10 });
  const raRows = "SELECT count(*)::text AS n FROM messages m JOIN routers r ON r.id = m.router_id WHERE r.name = 'ra'";
  assert.is(await count(db, raRows), 8, "ra's rows 13…20 kept");
  const [ledger] = await db.query(
    "SELECT spans_to, pruned_to, pruned_rows, spans FROM fleet_ledger WHERE router = 'ra'",
  );
  assert.equal(JSON.parse(JSON.stringify(ledger)), { spans_to: '20', pruned_to: '12', pruned_rows: '10', spans: '2' });
  assert.equal(await views(db), before, 'revenue, usage, sessions and gaps as before pruning');

  // The router's outbox replays everything after its crash: by the batch and one by one, nothing is counted again.
  assert.ok((await store(db, ids, [...first, ...rb])).every((s) => s === 'duplicate'));
  for (const m of first) assert.is(await storeMessage(db, ids, m), 'duplicate', `seq ${m.seq} one by one`);
  assert.equal(await views(db), before, 'replays changed nothing');

  // The hole's messages come late: each stored once, the revenue grows by exactly the late payment.
  assert.equal(await store(db, ids, [late[1]!]), ['stored']);
  assert.equal(await store(db, ids, [late[1]!]), ['duplicate']);
  assert.equal(await store(db, ids, late), ['stored', 'duplicate']);
  assert.equal(await store(db, ids, late), ['duplicate', 'duplicate']);
  const after = (await views(db)) as { revenue: Array<Record<string, unknown>>; gaps: unknown[] };
  const total = after.revenue.reduce((a, r) => a + BigInt(String(r['amount'])), 0n);
  assert.is(total, BigInt(HUGE) + 1n + 999999999999999999999n);
  assert.equal(
    after.gaps.map((g) => (g as Record<string, unknown>)['router']),
    ['rb'],
    "ra's hole is filled, rb's stays",
  );
  const spans = await db.query(
    `SELECT first_seq::text, last_seq::text FROM message_spans s JOIN routers r ON r.id = s.router_id
     WHERE r.name = 'ra'`,
  );
  assert.equal(JSON.parse(JSON.stringify(spans)), [{ first_seq: '1', last_seq: '20' }]);
});

test('messages stored while passes prune beside them are all counted, once', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const ids = new RouterIds();
  const N = 240;
  const T0 = Date.now() - DAY;
  const names = ['c1', 'c2', 'c3'];
  const all = names.map((router) =>
    Array.from({ length: N }, (_, i) => {
      const seq = i + 1;
      const prev = Math.floor((seq - 1) / 10) * 10;
      return seq % 10 === 1
        ? started(router, seq, seq === 1 ? 0 : seq - 10, T0 + seq * 2000, `s${seq}`, `${HUGE.slice(0, 36)}${seq}`)
        : usage(router, seq, seq === 1 ? 0 : prev + 1, T0 + seq * 2000, 's', seq, 2 * seq);
    }),
  );
  // Each router's messages in a shuffled order, a third of them delivered again later (a replay may meet its
  // original's row pruned already).
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let done = false;
  const feeders = all.map(async (messages) => {
    const order = [...messages, ...messages.filter(() => random() < 0.33)].sort(() => random() - 0.5);
    while (order.length > 0) await store(db, ids, order.splice(0, 1 + Math.floor(random() * 12)));
  });
  let passes = 0;
  const pruner = (async () => {
    while (!done) {
      await retentionPass(db, { retentionMs: 0, settleMs: 0, chunk: 13, pruneChunk: 11 });
      passes++;
    }
  })();
  await Promise.all(feeders).finally(() => (done = true));
  await pruner;
  await retentionPass(db, { retentionMs: 0, settleMs: 0 });
  assert.ok(passes >= 2, `passes ran beside the stores (${passes})`);

  assert.is(await count(db, 'SELECT count(*)::text AS n FROM fleet_gaps'), 0, 'no hole');
  assert.is(await count(db, 'SELECT count(*)::text AS n FROM messages'), 0, 'every row pruned');
  for (const router of names) {
    const [l] = await db.query<Record<string, string>>(
      `SELECT spans_to::text, pruned_rows::text, spans::text FROM fleet_ledger WHERE router = $1`,
      [router],
    );
    assert.equal({ ...l }, { spans_to: String(N), pruned_rows: String(N), spans: '1' }, router);
    const usageSeqs = all[0]!.filter((m) => m.kind === 'usage').map((m) => m.seq);
    const [h] = await db.query<Record<string, string>>(
      `SELECT sum(up_bytes)::text AS up, sum(down_bytes)::text AS down, sum(reports)::text AS reports
       FROM fleet_usage_hourly WHERE router = $1`,
      [router],
    );
    const up = usageSeqs.reduce((a, s) => a + s, 0);
    assert.equal({ ...h }, { up: String(up), down: String(2 * up), reports: String(usageSeqs.length) }, router);
    const [r] = await db.query<Record<string, string>>(
      'SELECT sum(amount)::text AS amount, sum(payments)::text AS n FROM fleet_revenue_daily WHERE router = $1',
      [router],
    );
    const paid = all[0]!.filter((m) => m.kind === 'session').map((m) => BigInt(`${HUGE.slice(0, 36)}${m.seq}`));
    assert.equal({ ...r }, { amount: paid.reduce((a, b) => a + b, 0n).toString(), n: String(paid.length) }, router);
  }
});

test.run();
