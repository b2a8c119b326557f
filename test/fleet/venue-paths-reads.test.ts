// tier: peers; needs initdb
/**
 * The Venues page on a real PostgreSQL 15 with more venue sessions than a page shows: what each of its queries reads
 * of `venue_leases` (EXPLAIN ANALYZE's rows of every node on the table, the page's own statements and parameters)
 * stays within a page and the count's bound however many sessions are kept (a year of a venue is millions, every one
 * kept); the page and one device's path show the newest first, and the total says when it is PostgreSQL's estimate.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDb } from './rig.ts';
import { migrate, type Db, type Sql } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../../src/fleet/dashboard/index.ts';
import type { Table } from '../../src/fleet/dashboard/table.ts';
import { venuesScreen } from '../../src/fleet/dashboard/venue-paths.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { Postgres } from '../peers/postgres.ts';

const LEASES = 30_000;
/** What a page's statements may read of the table: a page (200) and the count's bound (10,001) with room to spare. */
const READ_BOUND = 12_000;
const DEVICE = '02:00:00:00:00:07';

let pg: Postgres;
let db: Db;
test.before(async () => {
  pg = await Postgres.create();
  db = await freshDb(pg);
  await migrate(db, [...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
  // 30,000 sessions of 1,000 devices over a month, each moved once.
  await db.exec(`
    INSERT INTO venue_leases (id, venue, mac, state, holder, holder_session, epoch, since, metric, allotment, used,
      remaining, sold, reported_at, renewed_at, ended_at)
    SELECT 'ra/s' || i, 'hall', '02:00:00:00:' || lpad(to_hex((i % 1000) / 256), 2, '0') || ':' ||
        lpad(to_hex(i % 256), 2, '0'),
      'ended', 'rb', 's' || i, 2, now() - interval '30 days' + i * interval '1 minute', 'bytes', 1000, 500, 500, 1000,
      now(), now(), now()
    FROM generate_series(1, ${LEASES}) i;
    INSERT INTO venue_moves (lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used)
    SELECT id, 2, venue, mac, 'ra', 'rb', since, 'released', metric, remaining, used FROM venue_leases;
    ANALYZE venue_leases;
    ANALYZE venue_moves;`);
});
test.after(async () => {
  await db?.close();
  await pg?.close();
});

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Rows every node of `plan` read of `relation`, kept or filtered out (a parallel node's figures are per loop). */
function rowsOf(plan: PlanNode, relation: string): number {
  const read = plan['Actual Rows'] + (plan['Rows Removed by Filter'] ?? 0);
  const own = plan['Relation Name'] === relation ? read * plan['Actual Loops'] : 0;
  return own + (plan.Plans ?? []).reduce((sum, p) => sum + rowsOf(p, relation), 0);
}

/** The page as the dashboard reads it, with each statement it ran and what that read of venue_leases. */
async function page(query: string): Promise<{ sections: unknown[]; reads: Array<{ sql: string; rows: number }> }> {
  const ran: Array<{ text: string; params: readonly unknown[] }> = [];
  const spy: Sql = {
    query: (text, params) => (ran.push({ text, params: params ?? [] }), db.query(text, params)),
    exec: (text) => db.exec(text),
  };
  const p = await venuesScreen({
    db: spy,
    login: { user: 't', role: 'operator', csrf: '', zone: 'UTC', ownZone: 'UTC' },
    query: new URLSearchParams(query),
    now: Date.now(),
    staleAfterMs: 180_000,
    zone: 'UTC',
    canAct: () => false,
  });
  const reads = [];
  for (const r of ran.filter((r) => r.text.includes('fleet_venue_leases'))) {
    const [row] = await db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${r.text}`,
      r.params,
    );
    reads.push({
      sql: r.text.replace(/\s+/g, ' ').slice(0, 80),
      rows: rowsOf(row!['QUERY PLAN'][0]!.Plan, 'venue_leases'),
    });
  }
  return { sections: p.sections, reads };
}

const pathsOf = (sections: unknown[]): Table =>
  sections.find((s): s is Table => typeof s === 'object' && s !== null && (s as Table).id === 'paths')!;

test("the Venues page reads a page of the sessions and the count's bound, not every session kept", async () => {
  const { sections, reads } = await page('');
  assert.ok(reads.length >= 2, 'its rows and its count');
  for (const r of reads) assert.ok(r.rows <= READ_BOUND, `${r.sql}… read ${r.rows} of ${LEASES} leases`);
  const paths = pathsOf(sections);
  assert.is(paths.rows.length, 200);
  const since = paths.rows.map((r) => String(r[4]));
  assert.equal(since, [...since].sort().reverse(), 'newest first');
  assert.ok(paths.paging?.about, 'the total is an estimate');
  assert.ok(Math.abs(paths.paging!.total - LEASES) < LEASES / 10, `about ${LEASES}: ${paths.paging!.total}`);
});

test("one device's path reads its own sessions, newest first, counted exactly", async () => {
  const { sections, reads } = await page(`mac=${DEVICE}`);
  for (const r of reads) assert.ok(r.rows <= 100, `${r.sql}… read ${r.rows} of ${LEASES} leases`);
  const paths = pathsOf(sections);
  assert.is(paths.rows.length, LEASES / 1000);
  assert.ok(paths.rows.every((r) => r[1] === DEVICE));
  assert.is(paths.paging?.total, LEASES / 1000);
  assert.not.ok(paths.paging?.about);
  const since = paths.rows.map((r) => String(r[4]));
  assert.equal(since, [...since].sort().reverse(), 'newest first');
});

test.run();
