// tier: peers; needs initdb
/**
 * The days of an offset from UTC (migration 12: revenue_offset_days), on a real PostgreSQL 15: an offset the dashboard
 * asks to keep is filled from the quarters of the payments stored before and kept by the trigger for the ones after;
 * a payment whose transaction is open while the offset is filled, or that comes during the fill, is counted once (the
 * fill waits for the one and holds off the other); asking again changes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db, type Sql } from '../../src/fleet/db/index.ts';
import { Postgres } from '../peers/postgres.ts';

let pg: Postgres;
let db: Db;
let seq = 0;

function pay(sql: Sql, atMs: number, amount: bigint): Promise<unknown> {
  seq += 1;
  return sql.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES (1, $1, $2, 'started', 'x402', $2, $3::numeric, 'USDC', $4::timestamptz)`,
    [seq, `s${seq}`, amount.toString(), new Date(atMs).toISOString()],
  );
}

/** Payments every 7 minutes and a few seconds over three days, of amounts past any float's precision. */
async function payments(sql: Sql, start: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await pay(sql, start + i * 421_000, 10n ** 24n + BigInt(i));
}

/** The offset's days as kept, and as the payments themselves sum to. */
async function days(minutes: number): Promise<{ kept: unknown[]; truth: unknown[] }> {
  const kept = await db.query(
    `SELECT day::text, payments::text, amount::text FROM fleet_revenue_offset_daily WHERE minutes = $1 ORDER BY day`,
    [minutes],
  );
  const truth = await db.query(
    `SELECT ((at AT TIME ZONE 'UTC') + $1 * interval '1 minute')::date::text AS day, count(*)::text AS payments,
       sum(amount)::text AS amount
     FROM payments GROUP BY 1 ORDER BY 1`,
    [minutes],
  );
  return { kept, truth };
}

const T0 = Date.parse('2026-03-28T00:00:00Z');

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, FLEET_MIGRATIONS);
  await db.exec(`INSERT INTO routers (id, name) VALUES (1, 'cafe-a')`);
  await payments(db, T0, 300);
});

test.after(async () => {
  await db?.close();
  await pg?.close();
});

test('an offset asked for is filled from the payments before, kept by the trigger for the ones after', async () => {
  assert.equal((await days(330)).kept, []);
  const [first] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(330) AS kept');
  assert.is(first!.kept, true);
  let { kept, truth } = await days(330);
  assert.ok(truth.length >= 2);
  assert.equal(kept, truth);
  await payments(db, T0 + 86_400_000 * 2, 200);
  ({ kept, truth } = await days(330));
  assert.equal(kept, truth);
  const [again] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(330) AS kept');
  assert.is(again!.kept, false);
  assert.equal((await days(330)).kept, truth);
  // UTC's days are the collector's own roll-up: no offset 0 of their own.
  const [zero] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(0) AS kept');
  assert.is(zero!.kept, false);
});

test('a payment being stored while an offset is filled is counted once', async () => {
  // A payment stored in a transaction still open when the fill begins, and one stored after it began.
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const open = db.transaction(async (tx) => {
    await pay(tx, T0 + 3_600_000, 11n);
    await held;
  });
  // The transaction has stored its payment before the fill is asked for.
  while ((await db.query(`SELECT 1 FROM pg_locks WHERE relation = 'payments'::regclass AND granted`)).length === 0)
    await new Promise((r) => setTimeout(r, 10));
  let filled = false;
  const keep = db.query('SELECT revenue_offset_keep(60)').finally(() => (filled = true));
  // The fill waits for that transaction (or, were it not to, is done).
  while (
    !filled &&
    (await db.query(`SELECT 1 FROM pg_locks WHERE relation = 'payments'::regclass AND NOT granted`)).length === 0
  )
    await new Promise((r) => setTimeout(r, 10));
  const after = pay(db, T0 + 7_200_000, 13n);
  release();
  await Promise.all([open, keep, after]);
  const { kept, truth } = await days(60);
  assert.equal(kept, truth);
});

test.run();
