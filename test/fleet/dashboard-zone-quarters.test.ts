// tier: peers; needs initdb
/**
 * Revenue in every zone from the roll-ups, on a real PostgreSQL 15: the days, totals, chart and hours the dashboard
 * reads in UTC, Europe/Berlin, Asia/Kolkata (+05:30), Asia/Kathmandu (+05:45), and zones whose clocks change at
 * midnight or by half an hour (America/Havana, America/Santiago, Australia/Lord_Howe, Pacific/Chatham,
 * America/St_Johns) equal what the payments themselves sum to on those days, to the smallest unit, including payments
 * at the very instants a day or a quarter begins; the quarter-hour roll-up of payments stored before its migration is
 * filled from them, and the trigger keeps it for the ones after.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import * as store from '../../src/fleet/dashboard/store.ts';
import { OffsetFill } from '../../src/fleet/dashboard/offset-fill.ts';
import { Postgres } from '../peers/postgres.ts';

const ALL = { page: 1, size: 100_000, offset: 0 };
const FROM = '2026-03-01';
const TO = '2026-04-15';
const ZONES = [
  'UTC',
  'Etc/UTC',
  'Europe/Berlin',
  'Europe/London',
  'America/New_York',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'America/Havana',
  'America/Santiago',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/St_Johns',
  'Pacific/Kiritimati',
  'Pacific/Marquesas',
];

let pg: Postgres;
let db: Db;
let seq = 0;

/** A payment stored as the collector stores one (collector/store.ts): its row (the triggers' roll-ups), its day's. */
async function pay(router: number, atMs: number, amount: bigint, method: string, asset: string): Promise<void> {
  const at = new Date(atMs).toISOString();
  seq += 1;
  await db.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES ($1, $2, $3, 'started', $4, $3, $5::numeric, $6, $7::timestamptz)`,
    [router, seq, `s${seq}`, method, amount.toString(), asset, at],
  );
  await db.query(
    `INSERT INTO revenue_days AS d (router_id, day, method, asset, amount, payments)
     VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, $3, $4, $5::numeric, 1)
     ON CONFLICT (router_id, day, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
       payments = d.payments + 1`,
    [router, at, method, asset, amount.toString()],
  );
}

/** A small deterministic generator: the same payments on every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

const METHODS: Array<[string, string]> = [
  ['x402', 'USDC'],
  ['cashu', 'sat'],
  ['voucher', ''],
];

async function payments(count: number, rnd: () => number): Promise<void> {
  const start = Date.parse(`${FROM}T00:00:00Z`) - 86_400_000;
  const span = Date.parse(`${TO}T00:00:00Z`) + 86_400_000 - start;
  for (let i = 0; i < count; i++) {
    const [method, asset] = METHODS[Math.floor(rnd() * 3)]!;
    // Amounts past any float's precision, and vouchers of no price.
    const amount = method === 'voucher' ? 0n : 10n ** 24n + BigInt(Math.floor(rnd() * 1e9));
    await pay(1 + Math.floor(rnd() * 3), start + Math.floor(rnd() * span), amount, method, asset);
  }
}

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(
    db,
    FLEET_MIGRATIONS.filter((m) => m.version < 11),
  );
  await db.exec(`INSERT INTO routers (id, name) VALUES (1, 'cafe-a'), (2, 'cafe-b'), (3, 'cafe-c')`);
  const rnd = random(66);
  await payments(300, rnd);
  await migrate(db, FLEET_MIGRATIONS);
  await payments(1200, rnd);
  // At every instant a day begins in each zone, and the millisecond before and after it; at quarters' edges.
  for (const zone of ZONES) {
    const starts = await db.query<{ ms: number }>(
      `SELECT (extract(epoch FROM d::date::timestamp AT TIME ZONE $3::text) * 1000)::float8 AS ms
       FROM generate_series($1::date, $2::date, interval '1 day') d`,
      [FROM, TO, zone],
    );
    for (const [i, { ms }] of starts.entries())
      if (i % 3 === 0) for (const d of [-1, 0, 1]) await pay(1 + (i % 3), ms + d, 7n, 'x402', 'USDC');
  }
  for (const minute of [0, 15, 30, 45]) {
    const ms = Date.parse(`2026-03-29T18:${minute.toString().padStart(2, '0')}:00Z`);
    await pay(2, ms, 3n, 'cashu', 'sat');
    await pay(2, ms - 1, 5n, 'cashu', 'sat');
  }
});

test.after(async () => {
  await db?.close();
  await pg?.close();
});

/** What the payments themselves sum to per day of `zone`: the truth the roll-ups must equal. */
const truth = (zone: string) =>
  db.query<Record<string, string>>(
    `SELECT to_char((at AT TIME ZONE $3::text)::date, 'YYYY-MM-DD') AS day, router, method, asset,
       count(*)::text AS payments, sum(amount)::text AS amount
     FROM fleet_payments
     WHERE at >= $1::date::timestamp AT TIME ZONE $3::text AND at < $2::date::timestamp AT TIME ZONE $3::text
     GROUP BY 1, router, method, asset ORDER BY 1, router, method, asset`,
    [FROM, TO, zone],
  );

test('the quarter-hour roll-up holds every payment, those before its migration too', async () => {
  const [rolled] = await db.query<{ n: string; amount: string }>(
    'SELECT sum(payments)::text AS n, sum(amount)::text AS amount FROM fleet_revenue_quarterly',
  );
  const [paid] = await db.query<{ n: string; amount: string }>(
    'SELECT count(*)::text AS n, sum(amount)::text AS amount FROM fleet_payments',
  );
  assert.equal(rolled, paid);
  const misplaced = await db.query(
    `SELECT 1 FROM fleet_payments p WHERE NOT EXISTS (SELECT 1 FROM fleet_revenue_quarterly q
       WHERE q.router = p.router AND q.method = p.method AND q.asset = p.asset
         AND p.at >= q.quarter AND p.at < q.quarter + interval '15 minutes')`,
  );
  assert.is(misplaced.length, 0);
});

for (const [zone, filled] of [...ZONES.map((z) => [z, false] as const), ...ZONES.map((z) => [z, true] as const)])
  test(`${zone}, ${filled ? 'filled' : 'not filled'}: each day, total, bar and hour is the payments' sum`, async () => {
    if (filled) {
      const fill = new OffsetFill({ db, sliceDays: 3 });
      fill.keep(zone);
      await fill.idle();
      await fill.close();
    }
    const period = { from: FROM, to: TO, zone };
    const page = await store.revenuePage(db, period, 'router', { revenue: ALL, router: ALL, method: ALL });
    // Every zone here but UTC's own takes an offset other than 0 in the period: read from the quarters until filled.
    assert.is(page.filling.length > 0, !filled && zone !== 'UTC' && zone !== 'Etc/UTC');
    const expected = await truth(zone);
    assert.ok(expected.length > 100, `${expected.length} rows`);
    const days = await store.revenue(db, period, ALL);
    assert.equal(days.rows, expected);
    assert.is(days.total, String(expected.length));
    for (const by of ['router', 'method'] as const) {
      const sums = new Map<string, [bigint, bigint]>();
      for (const r of expected) {
        const k = `${r[by]}|${r['asset']}`;
        const [n, a] = sums.get(k) ?? [0n, 0n];
        sums.set(k, [n + BigInt(r['payments']!), a + BigInt(r['amount']!)]);
      }
      const totals = await store.revenueTotals(db, period, by, ALL);
      assert.equal(
        new Map(totals.rows.map((t) => [`${t.key}|${t.asset}`, [BigInt(t.payments), BigInt(t.amount)]])),
        sums,
        by,
      );
    }
    const chart = await store.revenueChart(db, period, 'method');
    const bars = new Map(chart.map((c) => [`${c.day}|${c.key}|${c.asset}`, c.amount]));
    const perMethod = new Map<string, bigint>();
    for (const r of expected) {
      const k = `${r['day']}|${r['method']}|${r['asset']}`;
      perMethod.set(k, (perMethod.get(k) ?? 0n) + BigInt(r['amount']!));
    }
    assert.equal(bars, new Map([...perMethod].map(([k, v]) => [k, v.toString()])));
    // The hours of a day a clock changes in many of these zones.
    for (const day of ['2026-03-08', '2026-03-29', '2026-04-05']) {
      const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
      const hours = await store.revenueHours(db, { from: day, to: next, zone }, ALL);
      const raw = await db.query<{ hour_ms: number; asset: string; payments: string; amount: string }>(
        `SELECT (extract(epoch FROM date_trunc('hour', at, $3::text)) * 1000)::float8 AS hour_ms, asset,
           count(*)::text AS payments, sum(amount)::text AS amount
         FROM fleet_payments
         WHERE at >= $1::date::timestamp AT TIME ZONE $3::text AND at < $2::date::timestamp AT TIME ZONE $3::text
         GROUP BY 1, 2 ORDER BY 1, 2`,
        [day, next, zone],
      );
      assert.equal(
        hours.rows.filter((h) => h.asset !== '' || h.payments !== '0'),
        raw,
        `${zone} ${day}`,
      );
    }
  });

test.run();
