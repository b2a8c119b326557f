// tier: peers; needs initdb mosquitto
/**
 * A router cannot fill the fleet's tables with sessions of its own invention (docs/fleet.md, "What a router may
 * send"): the sessions its usage reports make new are bounded per day (MAX_NEW_SESSIONS_PER_DAY). On a real
 * PostgreSQL 15, both write paths (a report alone, USAGE_SQL; reports batched, usage-batch.ts) store reports up to the
 * bound and refuse the one that passes it, writing nothing of it; a report of sessions already known is stored
 * after it. Through a real mosquitto, the refused report is counted in `fleet_rejects` once and acknowledged, and
 * another router's payment after it is stored.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { isReject, parseMessage, type Inbound } from '../../src/fleet/collector/index.ts';
import { MAX_NEW_SESSIONS_PER_DAY, MAX_USAGE_ROWS } from '../../src/fleet/collector/bounds.ts';
import { RouterIds, storeMessage } from '../../src/fleet/collector/store.ts';
import { storeUsageBatch, type UsageMessage } from '../../src/fleet/collector/usage-batch.ts';
import { encode } from '../../src/upstream/mqtt/messages.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { collector, FakeRouter, freshDb, Postgres, waitFor } from './rig.ts';

let pg: Postgres;
let broker: Mosquitto;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
});
test.after(async () => {
  for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
  await broker?.close();
  await pg?.close();
});

const FIELDS = ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'];
/** Reports of MAX_USAGE_ROWS sessions each that reach the bound exactly. */
const FULL = MAX_NEW_SESSIONS_PER_DAY / MAX_USAGE_ROWS;

/** Session ids `tag-from` … `tag-(from+n-1)`. */
const ids = (tag: string, from: number, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${tag}-${from + i}`);

function report(router: string, seq: number, sessions: string[]): UsageMessage {
  const at = Date.now();
  const rows = sessions.map((id) => [id, '02:00:00:00:00:01', null, 'bytes', 10, 20, 30, 30, 1000, 970, 'ACTIVE']);
  const body = { v: 1, router, seq, prev_session_seq: 0, type: 'usage', at, part: 0, parts: 1, fields: FIELDS };
  const parsed = parseMessage('sluice', `sluice/${router}/usage`, encode('msgpack', { ...body, sessions: rows }), at);
  if (isReject(parsed)) throw new Error(parsed.reject);
  return parsed as UsageMessage;
}

/** The bound's reports, then one new session past it, then a report of known sessions only. */
function reports(router: string): UsageMessage[] {
  const out: UsageMessage[] = [];
  for (let k = 0; k < FULL; k++) out.push(report(router, k + 1, ids('s', k * MAX_USAGE_ROWS, MAX_USAGE_ROWS)));
  out.push(report(router, FULL + 1, ['s-0', 'one-too-many']));
  out.push(report(router, FULL + 2, ids('s', 0, 10)));
  return out;
}

async function counts(db: Db, router: string) {
  const [row] = await db.query<{ sessions: number; ledger: number }>(
    `SELECT (SELECT count(*) FROM fleet_sessions WHERE router = $1)::int AS sessions,
       (SELECT count(*) FROM messages m JOIN routers r ON r.id = m.router_id WHERE r.name = $1)::int AS ledger`,
    [router],
  );
  return row!;
}

const WANT = [...Array.from({ length: FULL }, () => 'stored'), 'over', 'stored'];

test('a report alone: stored up to the bound, the one past it refused whole', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const known = new RouterIds();
  const out: string[] = [];
  for (const m of reports('one')) out.push(await storeMessage(db, known, m as Inbound));
  assert.equal(out, WANT);
  assert.equal(await counts(db, 'one'), { sessions: MAX_NEW_SESSIONS_PER_DAY, ledger: FULL + 1 });
});

test('reports batched: the same, within one batch and across batches', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const known = new RouterIds();
  const all = reports('batch');
  // Another router's reports in the same batch are not held to this router's count.
  const other = report('other', 1, ids('o', 0, 5));
  assert.equal(await storeUsageBatch(db, known, [...all, other]), [...WANT, 'stored']);
  assert.equal(await counts(db, 'batch'), { sessions: MAX_NEW_SESSIONS_PER_DAY, ledger: FULL + 1 });
  assert.equal(await storeUsageBatch(db, known, [report('batch', FULL + 3, ['late-new'])]), ['over']);
  assert.equal(await counts(db, 'other'), { sessions: 5, ledger: 1 });
});

test('through mosquitto: the report past the bound is counted once and acknowledged; others go on', async () => {
  const db = await freshDb(pg);
  open.push(db);
  const lines: string[] = [];
  const c: Collector = await collector(db, broker.url, lines, { clientId: 'bound-c', group: 'bound-g' });
  open.push(c);
  const flood = await FakeRouter.connect('flood', broker.url);
  const good = await FakeRouter.connect('good', broker.url);
  open.push(flood, good);
  const rows = (from: number, n: number) =>
    ids('f', from, n).map((id): [string, number, number, number] => [id, 1, 1, 1]);
  for (let k = 0; k < FULL; k++) await flood.usage(rows(k * MAX_USAGE_ROWS, MAX_USAGE_ROWS));
  await waitFor(async () => (await counts(db, 'flood')).ledger === FULL, 60_000, `the bound's reports stored`);
  await flood.usage(rows(MAX_NEW_SESSIONS_PER_DAY, 3));
  await flood.usage(rows(0, 3));
  await good.started('g1', '7', 'g1-ref');
  const paid = async () => (await db.query("SELECT 1 FROM fleet_payments WHERE reference = 'g1-ref'")).length === 1;
  await waitFor(paid, 30_000, `the other router's payment stored: ${lines.join('\n')}`);
  await waitFor(async () => (await counts(db, 'flood')).ledger === FULL + 1, 30_000, 'the known sessions stored');
  await waitFor(() => c.stats().rejected >= 1, 30_000, 'the report past the bound counted');
  const rejects = await db.query<{ reason: string; count: number }>(
    "SELECT reason, count::int FROM fleet_rejects WHERE router = 'flood'",
  );
  assert.equal(rejects, [{ reason: `over ${MAX_NEW_SESSIONS_PER_DAY} new sessions a day`, count: 1 }]);
  assert.is((await counts(db, 'flood')).sessions, MAX_NEW_SESSIONS_PER_DAY);
  assert.is(c.stats().rejected, 1);
});

test.run();
