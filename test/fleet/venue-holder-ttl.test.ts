// tier: peers; needs initdb
/**
 * The holder's declared lease TTL on a real PostgreSQL 15 (docs/roaming.md, "The holder's switch"): a venue router's
 * status says how long its kernel passes its leased devices (`lease_ttl`), and the fleet moves one of its leases only
 * after the longer of that and its own --lease-ttl, so a router whose switch runs longer than the fleet's TTL never has
 * its device opened elsewhere while its kernel still passes it. A holder that declares nothing expires at the fleet's;
 * a value out of bounds is not believed (counted refused); a TTL above the fleet's is named on the Venues page, once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDb } from './rig.ts';
import { isReject, parseMessage, type Inbound } from '../../src/fleet/collector/index.ts';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { heardReport, type HeardContext } from '../../src/fleet/venue/heard-reports.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { registerSale } from '../../src/fleet/venue/holder-reports.ts';
import { claim, opened, type Figures } from '../../src/fleet/venue/leases.ts';
import { Postgres } from '../peers/postgres.ts';

const TTL_MS = 8000;
const t0 = Date.now();

let pg: Postgres;
let db: Db;
let refused = 0;
let heard: HeardContext;
test.before(async () => {
  pg = await Postgres.create();
  db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const venues = new Map(['ra', 'rb', 'rc', 'rd', 're', 'rf', 'rg'].map((r) => [r, 'hall']));
  heard = {
    db,
    venues,
    now: () => t0,
    refused: () => void refused++,
    ttlMs: TTL_MS,
    namedTtl: new Map(),
    revoke: () => {},
  };
});
test.after(async () => {
  await db?.close();
  await pg?.close();
});

/** A status of `router` as the collector parses it (JSON), with `lease_ttl` when given. */
function status(router: string, leaseTtl?: unknown): Inbound {
  const body = { v: 1, router, type: 'status', at: t0, seq: 0, online: true, uptime_s: 5 };
  const payload = Buffer.from(JSON.stringify(leaseTtl === undefined ? body : { ...body, lease_ttl: leaseTtl }));
  const m = parseMessage('sluice', `sluice/${router}/status`, payload, t0);
  if (isReject(m)) throw new Error(m.reject);
  return m;
}

/** A lease of `mac` held at `holder`, last heard long ago (its status renews it at t0). */
async function held(holder: string, mac: string): Promise<void> {
  await db.query(
    `INSERT INTO venue_leases (id, venue, mac, state, holder, holder_session, epoch, since, metric, allotment, used,
       remaining, sold, reported_at, renewed_at)
     VALUES ($1, 'hall', $2, 'held', $3, 's1', 1, $4, 'bytes', 1000, 0, 1000, 1000, $4, $4)`,
    [`${holder}/s1`, mac, holder, new Date(t0 - 3_600_000)],
  );
}

const claimAt = (mac: string, afterMs: number) =>
  claim(db, 'hall', 'rx', mac, { now: t0 + afterMs, ttlMs: TTL_MS, resendMs: 1000 });

test('a holder that declared 60 s under a fleet TTL of 8 s: not expired at 10 s, expired at 61 s', async () => {
  await held('ra', '02:00:00:00:7a:01');
  await heardReport(heard, status('ra', 60));
  assert.is((await claimAt('02:00:00:00:7a:01', 10_000)).kind, 'release', 'asked of its holder, not moved');
  const late = await claimAt('02:00:00:00:7a:01', 61_000);
  assert.is(late.kind, 'open', 'moved once its own TTL passed');
  assert.is(late.kind === 'open' && late.lease.holder, 'rx');
  const [move] = await db.query<{ how: string }>(`SELECT how FROM venue_moves WHERE lease_id = 'ra/s1'`);
  assert.is(move?.how, 'expired');
});

test("a holder that declared nothing expires at the fleet's TTL", async () => {
  await held('rb', '02:00:00:00:7a:02');
  await heardReport(heard, status('rb'));
  assert.is((await claimAt('02:00:00:00:7a:02', 9000)).kind, 'open');
});

test("a declared TTL below the fleet's changes nothing: the fleet's holds, nobody is named", async () => {
  await held('rc', '02:00:00:00:7a:03');
  await heardReport(heard, status('rc', 5));
  assert.is((await claimAt('02:00:00:00:7a:03', 7000)).kind, 'release', 'not before the fleet TTL');
  assert.is((await claimAt('02:00:00:00:7a:03', 9000)).kind, 'open');
  assert.equal(await db.query(`SELECT 1 FROM venue_breaches WHERE router = 'rc'`), []);
});

test("a declared TTL out of bounds is ignored (counted refused): the fleet's holds", async () => {
  const bad = [4, 86_401, 60.5, '60', -60, 1e20, { s: 60 }];
  for (const v of bad) {
    const m = status('rd', v);
    assert.ok(m.kind === 'status' && m.leaseTtlS === null && m.leaseTtlRefused, `${JSON.stringify(v)} not believed`);
  }
  const edge = [status('rd', 5), status('rd', 86_400), status('rd')];
  assert.equal(
    edge.map((m) => m.kind === 'status' && [m.leaseTtlS, m.leaseTtlRefused]),
    [
      [5, false],
      [86_400, false],
      [null, false],
    ],
  );
  await held('rd', '02:00:00:00:7a:04');
  const before = refused;
  await heardReport(heard, status('rd', 86_401));
  assert.is(refused, before + 1, 'counted');
  assert.is((await claimAt('02:00:00:00:7a:04', 9000)).kind, 'open', "expired at the fleet's TTL");
  assert.equal(await db.query(`SELECT 1 FROM venue_breaches WHERE router = 'rd'`), []);
});

test("a TTL above the fleet's is named on the Venues page, once per router and TTL", async () => {
  await heardReport(heard, status('re', 60));
  await heardReport(heard, status('re', 60));
  const rows = await db.query<{ rule: string; detail: string; count: string }>(
    `SELECT rule, detail, count::text FROM fleet_venue_breaches WHERE router = 're'`,
  );
  assert.equal(rows, [
    { rule: 'lease-ttl-above', detail: "its lease TTL (60 s) is above the fleet's (8 s)", count: '1' },
  ]);
});

test('a lease moved to a holder that declared 60 s takes its TTL at once, not at its next status', async () => {
  await heardReport(heard, status('rf', 60));
  await held('rg', '02:00:00:00:7a:06');
  const moved = await claim(db, 'hall', 'rf', '02:00:00:00:7a:06', { now: t0, ttlMs: TTL_MS, resendMs: 1000 });
  assert.is(moved.kind, 'open', 'expired at rg (heard an hour ago), moved to rf');
  assert.is(moved.kind === 'open' && moved.lease.holderTtlMs, 60_000);
  await opened(db, 'rg/s1', 2, 'rf', 's9');
  // rf is not heard again: its kernel passes the device for its 60 s, so the lease stays with it past the fleet's 8.
  assert.is((await claimAt('02:00:00:00:7a:06', 10_000)).kind, 'release', 'asked of rf, not moved');
  assert.is((await claimAt('02:00:00:00:7a:06', 61_000)).kind, 'open', 'moved once its own TTL passed');
});

test("a sale takes its seller's declared TTL at once", async () => {
  const f: Figures = {
    metric: 'bytes',
    allotment: '1000',
    used: '0',
    remaining: '1000',
    bytes: '0',
    expiresAt: null,
    rateDown: null,
    rateUp: null,
    devices: 1,
    user: null,
    plan: null,
    at: t0,
  };
  const sale = await registerSale(db, 'hall', 'rf', 's10', '02:00:00:00:7a:07', f, t0);
  assert.is(sale.kind, 'registered');
  assert.is((await claimAt('02:00:00:00:7a:07', 10_000)).kind, 'release', 'asked of rf, not moved');
  assert.is((await claimAt('02:00:00:00:7a:07', 61_000)).kind, 'open');
});

test.run();
