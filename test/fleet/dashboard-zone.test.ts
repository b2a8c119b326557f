// tier: peers; needs initdb
/**
 * The operator's day on a real PostgreSQL 15: a sale at 23:30 UTC is on the next day's row in Europe/Berlin and on
 * its own day in UTC (the fleet's zone, and a user's own chosen on Settings); a day the clock changes has 23 or 25
 * hours, the hour it goes back through twice and apart; the zone is on every page and in every CSV; a name no zone
 * has is refused with a clear message (the Settings form, startDashboard, and `sluice-fleet --time-zone`), and the
 * payments read in a zone of UTC's clock sum to the collector's UTC roll-up to the smallest unit.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS, setUser, startDashboard, type Dashboard } from '../../src/fleet/dashboard/index.ts';
import * as store from '../../src/fleet/dashboard/store.ts';
const FIRST_PAGE = { page: 1, size: 200, offset: 0 };
import { Postgres } from '../peers/postgres.ts';
import { logIn, type Visitor } from './dashboard-http.ts';

let pg: Postgres;
let db: Db;
let dash: Dashboard;
let berlin: Visitor;
let utc: Visitor;

/** A payment stored as the collector stores one (collector/store.ts): its row, and the UTC day's roll-up. */
async function pay(at: string, amount: string, seq: number): Promise<void> {
  await db.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES (1, $1, $2, 'started', 'x402', $2, $3::numeric, 'USDC', $4::timestamptz)`,
    [seq, `s${seq}`, amount, at],
  );
  await db.query(
    `INSERT INTO revenue_days AS d (router_id, day, method, asset, amount, payments)
     VALUES (1, ($1::timestamptz AT TIME ZONE 'UTC')::date, 'x402', 'USDC', $2::numeric, 1)
     ON CONFLICT (router_id, day, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
       payments = d.payments + 1`,
    [at, amount],
  );
}

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
  await db.query(
    `INSERT INTO routers (id, name, last_message_at, max_seq, online, status_at, pricing)
     VALUES (1, 'cafe-berlin', now(), 0, true, now(), $1)`,
    [JSON.stringify([{ id: 'hour', asset: 'USDC', currency: 'USDC', decimals: 6 }])],
  );
  let seq = 0;
  await pay('2026-11-27T12:00:00Z', '2000000', ++seq);
  await pay('2026-11-27T23:30:00Z', '1000000', ++seq);
  // 25 October 2026, Berlin: 02:30 CEST (00:30 UTC) and, an hour later, 02:30 CET (01:30 UTC).
  await pay('2026-10-25T00:30:00Z', '10', ++seq);
  await pay('2026-10-25T01:30:00Z', '20', ++seq);
  await setUser(db, 'anna', 'admin', 'a long password in berlin');
  await setUser(db, 'uwe', 'operator', 'a long password in utc');
  dash = await startDashboard({ db, port: 0, timeZone: 'Europe/Berlin' });
  berlin = await logIn(dash.url, 'anna', 'a long password in berlin');
  utc = await logIn(dash.url, 'uwe', 'a long password in utc');
  const r = await utc.post('/settings/time-zone', { zone: 'UTC' });
  assert.is(r.status, 303);
  assert.match(decodeURIComponent(r.location ?? ''), /saved=your pages are in UTC/);
});

test.after(async () => {
  await dash?.close();
  await db?.close();
  await pg?.close();
});

const PERIOD = '/revenue.csv?table=revenue&from=2026-11-27&to=2026-11-29';

test('a sale at 23:30 UTC: the next day in Europe/Berlin, its own day in UTC; the zone in every CSV row', async () => {
  const inBerlin = await berlin.csv(PERIOD);
  assert.equal(inBerlin[0], [
    'day (Europe/Berlin)',
    'router',
    'method',
    'asset',
    'payments',
    'amount',
    'amount (smallest unit)',
    'time zone',
  ]);
  assert.equal(inBerlin.slice(1), [
    ['2026-11-27', 'cafe-berlin', 'x402', 'USDC', '1', '2 USDC', '2000000', 'Europe/Berlin'],
    ['2026-11-28', 'cafe-berlin', 'x402', 'USDC', '1', '1 USDC', '1000000', 'Europe/Berlin'],
  ]);
  const inUtc = await utc.csv(PERIOD);
  assert.equal(inUtc.slice(1), [['2026-11-27', 'cafe-berlin', 'x402', 'USDC', '2', '3 USDC', '3000000', 'UTC']]);
  // The totals and the chart read the same days.
  const totals = await berlin.csv('/revenue.csv?table=by-router&from=2026-11-28&to=2026-11-29');
  assert.equal(totals.slice(1), [['cafe-berlin', 'USDC', '1', '1 USDC', '1000000', 'Europe/Berlin']]);
  const page = await berlin.get('/revenue?from=2026-11-27&to=2026-11-29');
  assert.match(page.text, /times in Europe\/Berlin/);
  assert.match(page.text, /Revenue per day \(Europe\/Berlin\) and router/);
  for (const path of ['/routers', '/gaps', '/audit', '/venues', '/alerts', '/settings', '/routers/cafe-berlin'])
    assert.match((await berlin.get(path)).text, /times in Europe\/Berlin/, path);
  assert.match((await utc.get('/routers')).text, /times in UTC/);
});

test('a day the clock changes: 25 hours (one of them twice, apart), 23 in spring, 24 in UTC', async () => {
  const autumn = await berlin.csv('/revenue.csv?table=hours&from=2026-10-25&to=2026-10-26');
  assert.is(autumn[0]![0], 'hour (Europe/Berlin, offset from UTC)');
  assert.is(autumn.length - 1, 25);
  const paid = autumn.slice(1).filter((r) => r[1] !== '');
  assert.equal(
    paid.map((r) => [r[0], r[2], r[4]]),
    [
      ['2026-10-25 02:00 (+02:00)', '1', '10'],
      ['2026-10-25 02:00 (+01:00)', '1', '20'],
    ],
  );
  assert.is(autumn[1]![0], '2026-10-25 00:00 (+02:00)');
  assert.is(autumn.at(-1)![0], '2026-10-25 23:00 (+01:00)');
  const spring = await berlin.csv('/revenue.csv?table=hours&from=2026-03-29&to=2026-03-30');
  assert.is(spring.length - 1, 23);
  assert.ok(!spring.some((r) => r[0]!.startsWith('2026-03-29 02:')), 'no 02:00 on the day it is skipped');
  assert.is((await utc.csv('/revenue.csv?table=hours&from=2026-10-25&to=2026-10-26')).length - 1, 24);
  // A period of more than a day has no hours table, and says how to get one.
  assert.match((await berlin.get('/revenue?from=2026-10-25&to=2026-10-27')).text, /Its hours: choose one day/);
});

test("the daily roll-up, the hourly one (kept by the payments' trigger) and the payments sum alike", async () => {
  const period = { from: '2026-10-01', to: '2026-12-01' };
  const daily = await store.revenue(db, { ...period, zone: 'UTC' }, FIRST_PAGE);
  const hourly = await store.revenue(db, { ...period, zone: 'Etc/UTC' }, FIRST_PAGE);
  assert.equal(hourly, daily);
  assert.is(daily.rows.length, 2);
  // +05:30: not whole hours, so read from the payments; 23:30 UTC is 05:00 on the 28th there.
  const kolkata = await store.revenue(db, { from: '2026-11-27', to: '2026-11-29', zone: 'Asia/Kolkata' }, FIRST_PAGE);
  assert.equal(
    kolkata.rows.map((r) => [r.day, r.amount]),
    [
      ['2026-11-27', '2000000'],
      ['2026-11-28', '1000000'],
    ],
  );
  const [hours] = await db.query<{ n: string }>('SELECT sum(payments)::text AS n FROM fleet_revenue_hourly');
  assert.is(hours!.n, '4');
});

test('a name no zone has is refused, clearly: Settings, startDashboard, sluice-fleet --time-zone', async () => {
  const r = await berlin.post('/settings/time-zone', { zone: 'Europe/Berln' });
  const said = decodeURIComponent(r.location ?? '');
  assert.match(
    said,
    /error="Europe\/Berln" is no time zone Node's Intl knows: give an IANA name such as Europe\/Berlin/,
  );
  const page = await berlin.get(r.location!);
  assert.match(page.text, /is no time zone/);
  assert.match(page.text, /times in Europe\/Berlin/, 'the bad name was not saved');
  const injected = await berlin.post('/settings/time-zone', { zone: "UTC'; DROP TABLE payments; --" });
  assert.match(decodeURIComponent(injected.location ?? ''), /its letters are not a zone name/);
  try {
    await startDashboard({ db, port: 0, timeZone: 'Mars/Olympus_Mons' });
    assert.unreachable('started with a bad zone');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_FLEET_TIME_ZONE');
  }
  const [row] = await db.query<{ d: string }>('SELECT current_database() AS d');
  let out = '';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/fleet/main.ts', '--db', pg.url(row!.d), '--listen', 'none', '--time-zone', 'Europe/Berln'],
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 2, out);
  assert.match(out, /--time-zone: "Europe\/Berln" is no time zone Node's Intl knows/);
  assert.not.match(out, /collector started|\n\s+at /);
});

test.run();
