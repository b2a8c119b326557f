// tier: peers; needs initdb
/**
 * The fleet's revenue per day, method and asset (migration 14: fleet_revenue_daily_totals), on a real PostgreSQL 15:
 * summed for UTC's past days and those of the offsets two zones take (Europe/Berlin's +60 and +120, Asia/Kolkata's
 * +330) in transactions of a few days, counted by the trigger for a payment of a day already summed (a late one),
 * each payment once whatever the interleaving (a payment transaction open when a close begins, a payment stored while
 * a close holds the payments' lock, payments written all through a zone's fill); and the Revenue page's tables and
 * chart read from them are the ones it reads from the routers' days.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db, type Sql } from '../../src/fleet/db/index.ts';
import { OffsetFill } from '../../src/fleet/dashboard/offset-fill.ts';
import * as store from '../../src/fleet/dashboard/store.ts';
import { revenueSeries, daysBetween } from '../../src/fleet/dashboard/views.ts';
import { Postgres } from '../peers/postgres.ts';
import { ALL, DAY, METHODS } from './dashboard-days.ts';
import { until } from '../helpers/until.ts';

const ROUTERS = 11;

let pg: Postgres;
let db: Db;
let seq = 0;
/** Midnight UTC 40 days ago: the payments' days are past days of every offset. */
const T0 = Math.floor(Date.now() / DAY) * DAY - 40 * DAY;

/**
 * A payment stored as the collector stores one (collector/store.ts): its row (the triggers' roll-ups), its day's; in
 * one transaction where a close may run meanwhile, as the collector's is.
 */
async function pay(sql: Sql, router: number, atMs: number, amount: bigint, k = seq % 3): Promise<void> {
  const [method, asset] = METHODS[k]!;
  const at = new Date(atMs).toISOString();
  seq += 1;
  await sql.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES ($1, $2, $3, 'started', $4, $3, $5::numeric, $6, $7::timestamptz)`,
    [router, seq, `s${seq}`, method, amount.toString(), asset, at],
  );
  await sql.query(
    `INSERT INTO revenue_days AS d (router_id, day, method, asset, amount, payments)
     VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, $3, $4, $5::numeric, 1)
     ON CONFLICT (router_id, day, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
       payments = d.payments + 1`,
    [router, at, method, asset, amount.toString()],
  );
}

/**
 * Offset m's totals as summed (per day, method and asset; per month, router, method and asset), and as the payments
 * of the days before its days_to sum to.
 */
async function totals(m: number): Promise<{ kept: unknown[]; truth: unknown[]; to: string | null }> {
  const [row] = await db.query<{ to: string | null }>(
    'SELECT days_to::text AS to FROM fleet_revenue_totals_to WHERE minutes = $1',
    [m],
  );
  const to = row?.to ?? null;
  const kept = await db.query(
    `SELECT 'day' AS per, day::text AS at, '' AS router, method, asset, payments::text, amount::text, rows::text
     FROM fleet_revenue_daily_totals WHERE minutes = $1
     UNION ALL
     SELECT 'month', month::text, router, method, asset, payments::text, amount::text, rows::text
     FROM fleet_revenue_monthly_totals WHERE minutes = $1
     ORDER BY 1, 2, 3, 4, 5`,
    [m],
  );
  const truth = await db.query(
    `WITH p AS (
       SELECT ((at AT TIME ZONE 'UTC') + $1 * interval '1 minute')::date AS day, router, method, asset, amount
       FROM fleet_payments)
     SELECT 'day' AS per, day::text AS at, '' AS router, method, asset, count(*)::text AS payments,
       sum(amount)::text AS amount, count(DISTINCT router)::text AS rows
     FROM p WHERE day < $2::date GROUP BY day, method, asset
     UNION ALL
     SELECT 'month', date_trunc('month', day)::date::text, router, method, asset, count(*)::text,
       sum(amount)::text, count(DISTINCT day)::text
     FROM p WHERE day < $2::date GROUP BY date_trunc('month', day), router, method, asset
     ORDER BY 1, 2, 3, 4, 5`,
    [m, to ?? '-infinity'],
  );
  return { kept, truth, to };
}

const todayOf = (m: number): string => new Date(Date.now() + m * 60_000).toISOString().slice(0, 10);

const waiting = async (): Promise<boolean> =>
  (await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'`)).length > 0;

async function fill(...zones: string[]): Promise<void> {
  const f = new OffsetFill({ db, sliceDays: 5 });
  for (const z of zones) f.keep(z);
  await f.idle();
  await f.close();
}

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, FLEET_MIGRATIONS);
  await db.exec(
    `INSERT INTO routers (id, name) SELECT i, 'cafe-' || lpad(i::text, 2, '0') FROM generate_series(1, ${ROUTERS}) i`,
  );
  // Every router over 45 days up to now, every 97 minutes and a few seconds, of amounts past any float's precision.
  for (let i = 0; i < 660; i++) await pay(db, 1 + (i % ROUTERS), T0 - 5 * DAY + i * 5_837_000, 10n ** 24n + BigInt(i));
});

test.after(async () => {
  await db?.close();
  await pg?.close();
});

test("UTC's and two zones' past days summed up to each offset's today: the payments' sums", async () => {
  assert.equal(await db.query('SELECT * FROM fleet_revenue_daily_totals'), []);
  await fill('UTC', 'Europe/Berlin', 'Asia/Kolkata');
  for (const m of [0, 60, 120, 330]) {
    const { kept, truth, to } = await totals(m);
    assert.is(to, todayOf(m), `offset ${m}`);
    assert.ok(truth.length > 30, `offset ${m}: ${truth.length} rows`);
    assert.equal(kept, truth, `offset ${m}`);
  }
  // Nothing left to sum: no lock taken, days_to where it was.
  const [again] = await db.query<{ to: string }>('SELECT revenue_totals_close(330, 30)::text AS to');
  assert.is(again!.to, todayOf(330));
});

test('a late payment (of a day summed) is counted by the trigger; one of today is no total yet', async () => {
  await pay(db, 3, T0 + 2 * DAY + 3_600_000, 7n, 0);
  await pay(db, 4, T0 + 10 * DAY + 23 * 3_600_000 + 50 * 60_000, 9n, 1);
  await db.transaction(async (tx) => {
    await pay(tx, 5, T0 + 20 * DAY, 11n, 2);
    await pay(tx, 5, Date.now(), 13n, 2);
  });
  for (const m of [0, 60, 120, 330]) {
    const { kept, truth } = await totals(m);
    assert.equal(kept, truth, `offset ${m}`);
  }
});

test('a payment open when a close begins is summed by it; one stored while it closes, by the trigger', async () => {
  // Days the totals do not hold yet: days_to moved back to a month's first day, the rows from it on gone (as before
  // those days were summed).
  const back = new Date(T0 + 30 * DAY).toISOString().slice(0, 8) + '01';
  await db.query('DELETE FROM revenue_totals_days WHERE minutes = 0 AND day >= $1::date', [back]);
  await db.query('DELETE FROM revenue_totals_months WHERE minutes = 0 AND month >= $1::date', [back]);
  await db.query('UPDATE revenue_totals_to SET days_to = $1::date WHERE minutes = 0', [back]);
  // Open when the close begins: the close waits for it (the payments' SHARE lock), then sums its payment.
  let release: () => void = () => undefined;
  let held = new Promise<void>((r) => (release = r));
  const open = db.transaction(async (tx) => {
    await pay(tx, 6, Date.parse(`${back}T00:01:00Z`), 17n, 0);
    await held;
  });
  await until(
    async () => (await db.query(`SELECT 1 FROM pg_locks WHERE relation = 'payments'::regclass`)).length > 0,
    60_000,
    'the open transaction holding its lock on payments',
    10,
  );
  let closed = false;
  const close = db.query('SELECT revenue_totals_close(0, 2)').then(() => (closed = true));
  await until(waiting, 60_000, 'a statement waiting on a lock', 10);
  assert.is(closed, false);
  release();
  await Promise.all([open, close]);
  let { kept, truth } = await totals(0);
  assert.equal(kept, truth);
  // Stored while a close holds the lock: the payment waits, then finds its day summed and counts itself.
  held = new Promise<void>((r) => (release = r));
  let to = '';
  const closing = db.transaction(async (tx) => {
    [{ to }] = (await tx.query('SELECT revenue_totals_close(0, 2)::text AS to')) as [{ to: string }];
    await held;
  });
  await until(async () => to !== '', 60_000, 'the close begun, its day known', 10);
  let stored = false;
  const late = db
    .transaction((tx) => pay(tx, 7, Date.parse(`${to}T00:00:00Z`) - 1_000, 19n, 1))
    .then(() => (stored = true));
  await until(waiting, 60_000, 'a statement waiting on a lock', 10);
  assert.is(stored, false);
  release();
  await Promise.all([closing, late]);
  ({ kept, truth } = await totals(0));
  assert.equal(kept, truth);
  await fill('UTC');
  const state = await totals(0);
  assert.is(state.to, todayOf(0));
  assert.equal(state.kept, state.truth);
});

test("payments written all through two zones' fills and closes are each counted once", async () => {
  // A database whose totals and offsets are not summed yet: every offset of both zones is filled and closed.
  await db.exec(
    `TRUNCATE revenue_totals_days, revenue_totals_months, revenue_totals_to, revenue_offset_days, revenue_offsets`,
  );
  const f = new OffsetFill({ db, sliceDays: 1 });
  f.keep('Asia/Kolkata');
  f.keep('Europe/Berlin');
  let n = 0;
  const writer = (async () => {
    while (n < 150) {
      n += 1;
      const at = T0 - DAY + ((n * 7_919_000 * 13) % (42 * DAY));
      if (n % 3 === 0)
        await db.transaction(async (tx) => {
          await pay(tx, 1 + (n % ROUTERS), at, 10n ** 20n + BigInt(n));
          await pay(tx, 1 + ((n + 1) % ROUTERS), at + DAY, BigInt(n));
        });
      else await db.transaction((tx) => pay(tx, 1 + (n % ROUTERS), at, BigInt(n)));
    }
  })();
  await Promise.all([f.idle(), writer]);
  await f.close();
  for (const m of [0, 60, 120, 330]) {
    const { kept, truth, to } = await totals(m);
    assert.is(to, todayOf(m), `offset ${m}`);
    assert.equal(kept, truth, `offset ${m}`);
  }
});

test("the Revenue page's tables and chart read from the totals are the ones read from the routers' days", async () => {
  const to = todayOf(0);
  const from = new Date(T0 - 10 * DAY).toISOString().slice(0, 10);
  const end = new Date(Date.parse(`${to}T00:00:00Z`) + DAY).toISOString().slice(0, 10);
  for (const zone of ['UTC', 'Europe/Berlin', 'Asia/Kolkata']) {
    await fill(zone);
    const period = { from, to: end, zone };
    const read = async () => {
      const pages = [];
      for (const by of ['router', 'method'] as const) {
        const p = await store.revenuePage(db, period, by, { revenue: ALL, router: ALL, method: ALL });
        pages.push({ ...p, chart: revenueSeries(p.chart, daysBetween(from, end)) });
      }
      return pages;
    };
    const withTotals = await read();
    // The same page with no totals held: every day read from the routers' days.
    const saved = await db.query('SELECT minutes, days_to FROM revenue_totals_to');
    await db.exec(`UPDATE revenue_totals_to SET days_to = '-infinity'`);
    const without = await read();
    for (const s of saved)
      await db.query('UPDATE revenue_totals_to SET days_to = $2 WHERE minutes = $1', [s['minutes'], s['days_to']]);
    for (const [i, by] of ['router', 'method'].entries())
      for (const part of ['detail', 'perRouter', 'perMethod', 'filling'] as const)
        assert.equal(withTotals[i]![part], without[i]![part], `${zone} per ${by}: ${part}`);
    for (const [i, by] of ['router', 'method'].entries())
      assert.equal([...withTotals[i]!.chart], [...without[i]!.chart], `${zone} per ${by}: chart`);
    // More routers than the chart draws: the rest is one series, `others`.
    assert.ok([...withTotals[0]!.chart.values()].some((series) => series.some((x) => x.name === '(others)')));
    assert.ok(withTotals[0]!.perRouter.rows.length > 0);
  }
});

test.run();
