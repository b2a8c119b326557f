// tier: peers; needs initdb
/**
 * Usage reports stored many per transaction (the collector's group commit) leave a real PostgreSQL 15 exactly as
 * storing them one by one does: the same sessions' figures and sums, the same hourly roll-ups, the same routers' last
 * report, the same ledger; a report given twice (in one batch, or stored before) is a duplicate that changes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { isReject, parseMessage, type Inbound } from '../../src/fleet/collector/index.ts';
import { RouterIds, storeMessage } from '../../src/fleet/collector/store.ts';
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
const T0 = Date.UTC(2026, 10, 26, 9, 59, 58);

/** A usage report of `router` numbered `seq`: rows [session, up, down, used, state, user]. */
function report(
  router: string,
  seq: number,
  at: number,
  rows: Array<[string, number, number, number, string?, string?]>,
) {
  const sessions = rows.map(([id, up, down, used, state, user]) => {
    return [id, '02:00:00:00:00:01', user ?? null, 'seconds', up, down, used * 10, used, 3600, 3600 - used, state];
  });
  const body = { v: 1, router, seq, prev_session_seq: 0, type: 'usage', at, part: 0, parts: 1, fields: FIELDS };
  const parsed = parseMessage('sluice', `sluice/${router}/usage`, encode('msgpack', { ...body, sessions }), at);
  if (isReject(parsed)) throw new Error(parsed.reject);
  return parsed as UsageMessage;
}

/** Everything the usage reports change, as text. */
async function state(db: Db): Promise<unknown[]> {
  return [
    await db.query(
      `SELECT router, id, mac, user_name, state, used::text, bytes::text, remaining::text, up_bytes::text,
         down_bytes::text, updated_at::text FROM fleet_sessions ORDER BY router, id`,
    ),
    await db.query(
      `SELECT router, hour::text, up_bytes::text, down_bytes::text, rows, reports FROM fleet_usage_hourly
        ORDER BY router, hour`,
    ),
    await db.query('SELECT router, last_seq, last_report_at::text FROM fleet_routers ORDER BY router'),
    await db.query('SELECT router_id, seq, kind, at::text, prev_session_seq FROM messages ORDER BY router_id, seq'),
  ].map((rows) => JSON.parse(JSON.stringify(rows)));
}

test('reports stored many per transaction leave the database as one by one does', async () => {
  // Two routers, a session reported by several reports of one batch (out of order, across an hour's end), a session
  // that ends, a user name only an older report carries, a report given twice in one batch.
  const a2 = report('ra', 2, T0 + 2000, [
    ['s1', 10, 20, 4, 'ACTIVE'],
    ['s2', 1, 1, 1, 'ACTIVE', 'ann'],
  ]);
  const reports: UsageMessage[] = [
    report('ra', 1, T0, [['s1', 5, 7, 2, 'ACTIVE']]),
    report('rb', 1, T0, [['s9', 100, 200, 2, 'ACTIVE']]),
    report('ra', 3, T0 + 4000, [
      ['s1', 3, 4, 6, 'ACTIVE'],
      ['s2', 2, 2, 3, 'TERMINATED'],
    ]),
    a2,
    { ...a2 },
    report('rb', 2, T0 + 2000, [['s9', 50, 60, 4, 'ACTIVE']]),
  ];
  const oneByOne = await freshDb(pg);
  const batched = await freshDb(pg);
  open.push(oneByOne, batched);
  const ids1 = new RouterIds();
  const each: string[] = [];
  for (const m of reports) each.push(await storeMessage(oneByOne, ids1, m as Inbound));
  const ids2 = new RouterIds();
  const first = await storeUsageBatch(batched, ids2, reports.slice(0, 5));
  const second = await storeUsageBatch(batched, ids2, [reports[5]!, reports[0]!]);
  assert.equal(each, ['stored', 'stored', 'stored', 'stored', 'duplicate', 'stored']);
  assert.equal(first, ['stored', 'stored', 'stored', 'stored', 'duplicate']);
  assert.equal(second, ['stored', 'duplicate']);
  const expected = await state(oneByOne);
  assert.equal(await state(batched), expected);
  // And what one by one stored is what the reports say (the comparison above is not of two empty databases).
  const s1 = (expected[0] as Array<Record<string, string>>).find((s) => s['id'] === 's1')!;
  assert.equal([s1['used'], s1['up_bytes'], s1['down_bytes']], ['6', '18', '31']);
  const s2 = (expected[0] as Array<Record<string, string>>).find((s) => s['id'] === 's2')!;
  assert.equal([s2['state'], s2['user_name'], s2['up_bytes']], ['TERMINATED', 'ann', '3']);
});

test.run();
