// tier: peers; needs initdb
/**
 * The Revenue page over a year (dashboard/revenue.ts) on a real PostgreSQL 15, in UTC, a zone whose clock changes
 * (Europe/Berlin: days of 23 and 25 hours, months of two offsets) and one of half an hour (Asia/Kolkata): every
 * table, the detail's count and every day of the chart equal the payments' own sums grouped by the zone's days, to the
 * smallest unit, with the fleet's totals summed (as the dashboard sums them) and then late payments of summed days
 * (the clock-change days and the edges of the period's first month among them), a payment announced twice, and a
 * retention pass over the ledger.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db, type Sql } from '../../src/fleet/db/index.ts';
import { retentionPass } from '../../src/fleet/collector/retention.ts';
import { OffsetFill } from '../../src/fleet/dashboard/offset-fill.ts';
import { revenueScreen } from '../../src/fleet/dashboard/screens.ts';
import * as store from '../../src/fleet/dashboard/store.ts';
import { chartBars } from '../../src/fleet/dashboard/charts.ts';
import { revenueSeries } from '../../src/fleet/dashboard/views.ts';
import { Postgres } from '../peers/postgres.ts';
import { ALL, DAY, METHODS } from './dashboard-days.ts';

const ROUTERS = 12;
const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Kolkata'];

let pg: Postgres;
let db: Db;
let seq = 0;
const TODAY = Math.floor(Date.now() / DAY) * DAY;
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** The page's default year: the 365 days up to and including tomorrow's UTC date (every zone's today within). */
const TO = iso(TODAY + 2 * DAY);
const FROM = iso(TODAY + 2 * DAY - 365 * DAY);

/** A payment stored as the collector stores one (collector/store.ts): a duplicate is turned away, its day kept. */
async function pay(sql: Sql, router: number, atMs: number, amount: bigint, k: number, ref?: string): Promise<void> {
  const [method, asset] = METHODS[k % 3]!;
  const at = new Date(atMs).toISOString();
  seq += 1;
  const reference = ref ?? `p${seq}`;
  const fresh = await sql.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES ($1, $2, $3, 'started', $4, $3, $5::numeric, $6, $7::timestamptz)
     ON CONFLICT (router_id, session_id, method, reference) DO NOTHING RETURNING seq`,
    [router, seq, reference, method, amount.toString(), asset, at],
  );
  if (fresh.length === 0) return;
  await sql.query(
    `INSERT INTO revenue_days AS d (router_id, day, method, asset, amount, payments)
     VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, $3, $4, $5::numeric, 1)
     ON CONFLICT (router_id, day, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
       payments = d.payments + 1`,
    [router, at, method, asset, amount.toString()],
  );
}

/** Instants around the zones' midnights and clock changes in the period: each side of each edge. */
function edges(): number[] {
  const out: number[] = [];
  for (const y of [2025, 2026, 2027])
    for (const [mo, d] of [
      [3, 30],
      [10, 26],
      [3, 29],
      [10, 25],
      [3, 28],
      [10, 31],
    ] as const) {
      const base = Date.UTC(y, mo - 1, d);
      // Berlin's clock change at 01:00 UTC, its midnights at 22:00 / 23:00 UTC, Kolkata's at 18:30 UTC.
      for (const at of [1, 0, -1, -2, -5.5, 21, 22, 23])
        for (const s of [-1_000, 0, 1_000]) out.push(base + at * 3_600_000 + s);
    }
  return out.filter((t) => t >= TODAY - 366 * DAY && t < TODAY);
}

async function fill(): Promise<void> {
  const f = new OffsetFill({ db, sliceDays: 40 });
  for (const z of ZONES) f.keep(z);
  await f.idle();
  await f.close();
}

/** The payments' own sums of the period in the zone: per day, router, method, asset. */
async function truth(zone: string, from: string, to: string) {
  return db.query<{ day: string; router: string; method: string; asset: string; payments: string; amount: string }>(
    `SELECT to_char((at AT TIME ZONE $1::text)::date, 'YYYY-MM-DD') AS day, router, method, asset,
       count(*)::text AS payments, sum(amount)::text AS amount
     FROM fleet_payments
     WHERE at >= ($2::date::timestamp AT TIME ZONE $1::text) AND at < ($3::date::timestamp AT TIME ZONE $1::text)
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    [zone, from, to],
  );
}

function sums<T>(
  rows: readonly T[],
  key: (r: T) => string,
  payments: (r: T) => string | null,
  amount: (r: T) => string,
) {
  const m = new Map<string, { payments: bigint; amount: bigint }>();
  for (const r of rows) {
    const s = m.get(key(r)) ?? { payments: 0n, amount: 0n };
    s.payments += BigInt(payments(r) ?? '0');
    s.amount += BigInt(amount(r));
    m.set(key(r), s);
  }
  return [...m]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${k} ${v.payments} ${v.amount}`);
}

/** Every figure of the page equals the payments' sums. */
async function check(zone: string, from: string, to: string): Promise<void> {
  const want = await truth(zone, from, to);
  assert.ok(want.length > 100, `${zone}: ${want.length} rows`);
  // A year's chart draws a bar per month (its first from `from`): the days' sums per month.
  const bars = chartBars(from, to);
  const bar = (day: string): string => [...bars].reverse().find((b) => b <= day)!;
  for (const by of ['router', 'method'] as const) {
    const p = await store.revenuePage(db, { from, to, zone }, by, { revenue: ALL, router: ALL, method: ALL });
    const what = `${zone} ${from}..${to} per ${by}`;
    assert.equal(p.detail.rows, want, `${what}: detail`);
    assert.is(p.detail.total, String(want.length), `${what}: detail's count`);
    assert.equal(
      sums(
        p.perRouter.rows,
        (r) => `${r.key} ${r.asset}`,
        (r) => r.payments,
        (r) => r.amount,
      ),
      sums(
        want,
        (r) => `${r.router} ${r.asset}`,
        (r) => r.payments,
        (r) => r.amount,
      ),
      `${what}: per router`,
    );
    assert.equal(
      sums(
        p.perMethod.rows,
        (r) => `${r.key} ${r.asset}`,
        (r) => r.payments,
        (r) => r.amount,
      ),
      sums(
        want,
        (r) => `${r.method} ${r.asset}`,
        (r) => r.payments,
        (r) => r.amount,
      ),
      `${what}: per method`,
    );
    // The chart's series of a bar add up to its days' revenue per asset.
    const drawn: { key: string; amount: string }[] = [];
    for (const [asset, series] of revenueSeries(p.chart, bars))
      for (const s of series) s.values.forEach((v, i) => drawn.push({ key: `${bars[i]} ${asset}`, amount: String(v) }));
    assert.equal(
      sums(
        drawn,
        (r) => r.key,
        () => null,
        (r) => r.amount,
      ).filter((r) => !r.endsWith(' 0 0')),
      sums(
        want,
        (r) => `${bar(r.day)} ${r.asset}`,
        () => null,
        (r) => r.amount,
      ),
      `${what}: chart`,
    );
    if (by === 'router') {
      const series = [...revenueSeries(p.chart, bars).values()].flat();
      assert.ok(
        series.some((s) => s.name === '(others)'),
        `${what}: more routers than drawn`,
      );
    }
  }
}

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, FLEET_MIGRATIONS);
  await db.exec(
    `INSERT INTO routers (id, name) SELECT i, 'cafe-' || lpad(i::text, 2, '0') FROM generate_series(1, ${ROUTERS}) i`,
  );
  // A year and a month up to now, every 9 h 7 min and some seconds (every quarter hour of the day in turn), amounts
  // past any float's precision; and each side of the zones' midnights and clock changes.
  const start = TODAY - 400 * DAY;
  for (let i = 0; start + i * 32_833_000 < Date.now(); i++)
    await pay(db, 1 + (i % ROUTERS), start + i * 32_833_000, 10n ** 24n + BigInt(i), i + Math.floor(i / ROUTERS));
  for (const [i, t] of edges().entries()) await pay(db, 1 + ((i * 5) % ROUTERS), t, 10n ** 22n + BigInt(i), i);
});

test.after(async () => {
  await db?.close();
  await pg?.close();
});

test("a year's page in UTC, Europe/Berlin and Asia/Kolkata with the totals summed: the payments' sums", async () => {
  await fill();
  const [{ n }] = (await db.query(`SELECT count(*)::int AS n FROM revenue_totals_to WHERE days_to > $1::date`, [
    iso(TODAY - DAY),
  ])) as [{ n: number }];
  assert.is(n, 4, 'UTC, +60, +120, +330 summed');
  for (const zone of ZONES) await check(zone, FROM, TO);
});

test("late payments of summed days, a duplicate and a retention pass: still the payments' sums", async () => {
  let i = 0;
  for (const t of [...edges(), Date.parse(`${FROM}T00:30:00Z`), Date.parse(`${FROM}T23:40:00Z`), TODAY - 3 * DAY])
    await db.transaction((tx) => pay(tx, 1 + (i++ % ROUTERS), t + 7_000, 3n + BigInt(i), i));
  // Announced again after a router's restart (a new seq, the same payment): counted once.
  await pay(db, 2, TODAY - 100 * DAY, 999n, 0, 'twice');
  await pay(db, 2, TODAY - 100 * DAY, 999n, 0, 'twice');
  await retentionPass(db, { retentionMs: 0 });
  for (const zone of ZONES) await check(zone, FROM, TO);
  // A period from inside a month of two offsets to inside another.
  await check('Europe/Berlin', '2026-03-17', '2026-10-29');
  await check('Asia/Kolkata', '2026-03-17', '2026-10-29');
  // Summed again (the next close): still.
  await fill();
  for (const zone of ZONES) await check(zone, FROM, TO);
});

test("a year's chart draws a bar per month, the first from the period's first day; 92 days a bar per day", async () => {
  const screen = async (from: string, to: string): Promise<string> => {
    const zone = 'Europe/Berlin';
    const page = await revenueScreen({
      db,
      login: { user: 'owner', role: 'operator', csrf: '', zone, ownZone: zone },
      query: new URLSearchParams(`from=${from}&to=${to}`),
      now: Date.now(),
      staleAfterMs: 90_000,
      zone,
      canAct: () => false,
    });
    return page.sections.join('');
  };
  const year = await screen(FROM, TO);
  assert.match(year, /Revenue per month \(Europe\/Berlin\) and router/);
  // 365 days from FROM: the first bar from FROM, then each month's first after it (12 when FROM is one itself).
  assert.is(chartBars(FROM, TO).length, FROM.endsWith('-01') ? 12 : 13);
  assert.is(chartBars('2025-12-01', '2026-12-01').length, 12);
  assert.is(chartBars('2025-12-02', '2026-12-02').length, 13);
  assert.is(chartBars(FROM, TO)[0], FROM);
  assert.ok(year.includes(`>${FROM.slice(0, 7)}</text>`), 'the first bar labelled by its month');
  const quarter = await screen('2026-06-01', '2026-09-01');
  assert.is(chartBars('2026-06-01', '2026-09-01').length, 92);
  assert.match(quarter, /Revenue per day \(Europe\/Berlin\) and router/);
});

test.run();
