// The fleet bench's year part (bench/fleet.ts, `--skip real,capacity,ledger` runs only it): the dashboard's Revenue
// page (dashboard/screens.ts revenueScreen: its days, totals per router and method, chart and units) on a year of
// `routers` routers' revenue roll-ups made with generate_series in a real PostgreSQL 15, in UTC, a zone of whole hours
// (Europe/Berlin), of half hours (Asia/Kolkata) and of quarters (Asia/Kathmandu), for 14 days and a year. Every
// router took every method in every UTC quarter hour (the densest the roll-ups get): the quarters are made first,
// the hours and days summed from them, so the three agree as the payments' triggers keep them. Then its other main
// pages: Routers, a router's, Venues and Alerts over a year of venue sessions and alerts (fleet-year-venues.ts), the
// Venues page before and after the venue migration that orders its sessions (with its query plans and how long the
// migration takes on that year).
import { loadavg } from 'node:os';
import type { Login } from '../../src/fleet/dashboard/auth.ts';
import { revenueScreen, routerScreen, routersScreen } from '../../src/fleet/dashboard/screens.ts';
import { alertsScreen } from '../../src/fleet/dashboard/alert-settings.ts';
import { venuesScreen } from '../../src/fleet/dashboard/venue-paths.ts';
import { FLEET_MIGRATIONS, migrate, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../../src/fleet/dashboard/index.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { OffsetFill } from '../../src/fleet/dashboard/offset-fill.ts';
import { fillAlertYear, fillVenueYear, VENUE_ROUTERS } from './fleet-year-venues.ts';

const load = () => loadavg()[0]!.toFixed(1);
const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Kathmandu'];
const RUNS = 20;

async function timed(fn: () => Promise<unknown>): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(RUNS - 1, Math.ceil(q * RUNS) - 1)]!.toFixed(0);
  return `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms (${RUNS} runs, load ${load()})`;
}

let paidTotal = 0;

/** The venue migration whose indexes order the Venues page: the year is filled before it, then it runs. */
const PATH_ORDER = 2008;

/** The plan's nodes, one line each (their kind, relation or index, actual rows and time), for the bench's output. */
async function plan(db: Db, sql: string, params: readonly unknown[]): Promise<string> {
  const rows = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
  return rows.map((r) => `                | ${r['QUERY PLAN']}`).join('\n');
}

export interface VenueYear {
  venues: number;
  sessionsPerRouterDay: number;
}

export async function yearBench(db: Db, routers: number, venueYear: VenueYear): Promise<void> {
  // The dashboard's and the venues' tables and views too, as sluice-fleet makes them: a router's page, Venues, Alerts.
  await migrate(db, [
    ...FLEET_MIGRATIONS,
    ...DASHBOARD_MIGRATIONS,
    ...VENUE_MIGRATIONS.filter((m) => m.version < PATH_ORDER),
  ]);
  const t0 = Date.now();
  await db.exec(`
    INSERT INTO routers (name, last_message_at, online) SELECT 'r' || lpad(i::text, 4, '0'), now(), true
    FROM generate_series(1, ${routers}) i;
    INSERT INTO revenue_quarters (router_id, quarter, method, asset, amount, payments)
    SELECT r.id, q, m.method, m.asset, (random() * 1e7)::numeric(78, 0), 1 + (random() * 4)::int
    FROM routers r, generate_series(date_trunc('day', now(), 'UTC') - interval '365 days',
        date_trunc('day', now(), 'UTC') + interval '1 day' - interval '15 minutes', interval '15 minutes') q,
      (VALUES ('x402', 'USDC'), ('cashu', 'sat'), ('voucher', '')) m(method, asset);
    INSERT INTO revenue_hours (router_id, hour, method, asset, amount, payments)
    SELECT router_id, date_trunc('hour', quarter, 'UTC'), method, asset, sum(amount), sum(payments)
    FROM revenue_quarters GROUP BY 1, 2, 3, 4;
    INSERT INTO revenue_days (router_id, day, method, asset, amount, payments)
    SELECT router_id, (hour AT TIME ZONE 'UTC')::date, method, asset, sum(amount), sum(payments)
    FROM revenue_hours GROUP BY 1, 2, 3, 4;`);
  const tv = Date.now();
  const made = await fillVenueYear(db, venueYear.venues, venueYear.sessionsPerRouterDay);
  const events = await fillAlertYear(db, routers);
  console.log(
    `  year        venues: ${venueYear.venues} of ${VENUE_ROUTERS} routers, ${venueYear.sessionsPerRouterDay} venue ` +
      `sessions per router-day: ${made.leases} leases, ${made.moves} moves; alerts: ${events} events; made in ` +
      `${((Date.now() - tv) / 1000).toFixed(1)} s (load ${load()})`,
  );
  await db.exec('VACUUM ANALYZE');
  const [n] = await db.query<{ q: string; h: string; d: string }>(
    `SELECT (SELECT count(*) FROM revenue_quarters)::text AS q, (SELECT count(*) FROM revenue_hours)::text AS h,
       (SELECT count(*) FROM revenue_days)::text AS d`,
  );
  console.log(
    `  year        ${routers} routers x 366 days x 3 methods: ${n!.q} quarter, ${n!.h} hour, ${n!.d} day roll-up ` +
      `rows made in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  const now = Date.now();
  const context = (zone: string, query: string) => ({
    db,
    login: { user: 'bench', role: 'operator', csrf: '', zone, ownZone: zone } satisfies Login,
    query: new URLSearchParams(query),
    now,
    staleAfterMs: 180_000,
    zone,
    canAct: () => false,
  });
  const day = (offset: number) => new Date(now + offset * 86_400_000).toISOString().slice(0, 10);
  for (const zone of ZONES) {
    // The zone's offsets kept and filled in the background (as the dashboard does when a zone is set), while a
    // payment of today is stored every 50 ms: how long the fill takes, and the longest such a payment waited.
    const t = Date.now();
    const fill = new OffsetFill({ db });
    fill.keep(zone);
    let done = false;
    let worst = 0;
    let paid = 0;
    const filled = fill.idle().then((failing) => {
      done = true;
      return failing;
    });
    while (!done) {
      const p = Date.now();
      await db.query(
        `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
         VALUES (1, $1, $2, 'started', 'x402', $2, 1, 'USDC', now())`,
        [1e9 + (paidTotal += 1), `bench-${paidTotal}`],
      );
      worst = Math.max(worst, Date.now() - p);
      paid += 1;
      await new Promise((r) => setTimeout(r, 50));
    }
    // A zone whose fill failed is read from the quarters: its figures are not the filled page's.
    const failing = await filled;
    await fill.close();
    console.log(
      `              ${zone}: ` +
        (failing.length > 0 ? `its fill FAILED (${failing.join(', ')}, waiting to retry)` : 'its offsets filled') +
        ` in the background in ${Date.now() - t} ms; ${paid} payments ` +
        `stored meanwhile, the slowest in ${worst} ms (load ${load()})`,
    );
    for (const [label, from] of [
      ['14 days', day(-13)],
      ['a year', day(-364)],
    ] as const)
      console.log(
        `              page Revenue, zone ${zone}, range ${label}: ` +
          (await timed(() => revenueScreen(context(zone, `from=${from}&to=${day(1)}`)))),
      );
  }
  console.log(
    `              page Routers, zone UTC (${routers}): ${await timed(() => routersScreen(context('UTC', '')))}`,
  );
  console.log(
    `              page router r0001, zone UTC: ${await timed(() => routerScreen(context('UTC', ''), 'r0001'))}`,
  );
  // The page's rows, of all and of one device (one with the most sessions), as venue-paths.ts reads them.
  const [device] = await db.query<{ mac: string }>(
    'SELECT mac FROM venue_leases GROUP BY mac ORDER BY count(*) DESC LIMIT 1',
  );
  const rowsSql = `SELECT id, venue, mac, state, holder, epoch, since, metric, remaining::text AS remaining
    FROM fleet_venue_leases WHERE $1::text IS NULL OR mac = $1 ORDER BY since DESC, id LIMIT 200 OFFSET 0`;
  const venuePages = async (when: string) => {
    for (const mac of [null, device!.mac]) {
      console.log(`              the Venues page's rows ${mac === null ? 'of all' : `of ${mac}`}, ${when}:`);
      console.log(await plan(db, rowsSql, [mac]));
    }
    console.log(`              page Venues, ${when}: ${await timed(() => venuesScreen(context('UTC', '')))}`);
    console.log(
      `              page Venues of ${device!.mac}, ${when}: ` +
        (await timed(() => venuesScreen(context('UTC', `mac=${device!.mac}`)))),
    );
  };
  await venuePages(`before migration ${PATH_ORDER}`);
  const tm = Date.now();
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
  await db.exec('VACUUM ANALYZE venue_leases');
  console.log(
    `              migration ${PATH_ORDER} on that year: ${((Date.now() - tm) / 1000).toFixed(1)} s (load ${load()})`,
  );
  await venuePages(`after migration ${PATH_ORDER}`);
  console.log(`              page Alerts: ${await timed(() => alertsScreen(context('UTC', '')))}`);
}
