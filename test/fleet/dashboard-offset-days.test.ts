// tier: peers; needs initdb
/**
 * The days of an offset from UTC (migrations 12 and 13: revenue_offset_days), on a real PostgreSQL 15: an offset the
 * dashboard keeps is filled a slice at a time from the quarters of the payments stored before, and kept by the trigger
 * for the ones after; payments go on being stored while the slices run, the ones of a day a slice is filling wait for
 * that slice only, and every payment is counted once: by the trigger or by a slice, whatever the interleaving.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db, type Sql } from '../../src/fleet/db/index.ts';
import { OffsetFill, zoneOffsets } from '../../src/fleet/dashboard/offset-fill.ts';
import { Postgres } from '../peers/postgres.ts';
import { lastAnalyzed } from './dashboard-days.ts';
import { until } from '../helpers/until.ts';

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

/** Offset m's fill to its end, one slice of `days` days per call; how many slices it took. */
async function fillAll(m: number, days = 1): Promise<number> {
  let slices = 0;
  for (;;) {
    const [row] = await db.query<{ from: string }>('SELECT revenue_offset_fill($1, $2)::text AS from', [m, days]);
    if (row!.from === '-infinity') return slices;
    slices += 1;
  }
}

const waiting = async (): Promise<boolean> =>
  (await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'`)).length > 0;

test('an offset kept is filled in slices from the payments before, kept by the trigger for those after', async () => {
  assert.equal((await days(330)).kept, []);
  const [first] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(330) AS kept');
  assert.is(first!.kept, true);
  // Listed, not filled yet: the trigger counts nothing below the fill's reach, which is nothing yet.
  await pay(db, T0 + 3 * 86_400_000, 5n);
  assert.equal((await days(330)).kept, []);
  const [state] = await db.query<{ complete_from: string | null }>(
    'SELECT complete_from::text FROM fleet_revenue_offsets WHERE minutes = 330',
  );
  assert.is(state!.complete_from, 'infinity');
  assert.ok((await fillAll(330)) > 1, 'more than one slice');
  let { kept, truth } = await days(330);
  assert.ok(truth.length >= 3);
  assert.equal(kept, truth);
  await payments(db, T0 + 86_400_000 * 2, 200);
  ({ kept, truth } = await days(330));
  assert.equal(kept, truth);
  const [again] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(330) AS kept');
  assert.is(again!.kept, false);
  assert.is(await fillAll(330), 0);
  assert.equal((await days(330)).kept, truth);
  // UTC's days are the collector's own roll-up: no offset 0 of their own.
  const [zero] = await db.query<{ kept: boolean }>('SELECT revenue_offset_keep(0) AS kept');
  assert.is(zero!.kept, false);
});

test('stored while a slice is open: a payment of a later day at once, of its days after it; once', async () => {
  await db.query('SELECT revenue_offset_keep(-300)');
  await db.query('SELECT revenue_offset_fill(-300, 1)');
  // The next slice, held open: the newest day below the first slice's.
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  let from = '';
  const slice = db.transaction(async (tx) => {
    [{ from }] = (await tx.query('SELECT revenue_offset_fill(-300, 1)::text AS from')) as [{ from: string }];
    await held;
  });
  await until(async () => from !== '', 60_000, 'the slice begun, its day known', 10);
  // A payment of today (above every slice) is stored while the slice is open: it does not wait for it.
  await pay(db, T0 + 5 * 86_400_000, 17n);
  // One of a day the open slice fills waits for that slice, then is counted by the trigger (the slice did not see it).
  let stored = false;
  const inSlice = pay(db, Date.parse(`${from}T12:00:00Z`), 19n).then(() => (stored = true));
  await until(waiting, 60_000, 'a statement waiting on a lock', 10);
  assert.is(stored, false);
  release();
  await Promise.all([slice, inSlice]);
  await fillAll(-300);
  const { kept, truth } = await days(-300);
  assert.equal(kept, truth);
});

test('a payment transaction open when an offset is listed, or when a slice begins, is counted once', async () => {
  // Open when listed: the listing waits for it (the payments' SHARE lock, for the instant of one row).
  let release: () => void = () => undefined;
  let held = new Promise<void>((r) => (release = r));
  const open = db.transaction(async (tx) => {
    await pay(tx, T0 + 3_600_000, 11n);
    await held;
  });
  await until(
    async () => (await db.query(`SELECT 1 FROM pg_locks WHERE relation = 'payments'::regclass`)).length > 0,
    60_000,
    'the open transaction holding its lock on payments',
    10,
  );
  const keep = db.query('SELECT revenue_offset_keep(60)');
  await until(waiting, 60_000, 'a statement waiting on a lock', 10);
  release();
  await Promise.all([open, keep]);
  // Open when a slice begins, its payment of a day below the fill's reach: the slice waits for it, then sums it.
  await db.query('SELECT revenue_offset_fill(60, 1)');
  held = new Promise<void>((r) => (release = r));
  const below = db.transaction(async (tx) => {
    await pay(tx, T0 + 7_200_000, 13n);
    await held;
  });
  await until(
    async () =>
      (await db.query(`SELECT 1 FROM pg_locks WHERE relation = 'revenue_offsets'::regclass AND mode = 'RowShareLock'`))
        .length > 0,
    60_000,
    'the slice holding its row of revenue_offsets',
    10,
  );
  let filled = false;
  const fill = fillAll(60).then(() => (filled = true));
  await until(waiting, 60_000, 'a statement waiting on a lock', 10);
  assert.is(filled, false);
  release();
  await Promise.all([below, fill]);
  const { kept, truth } = await days(60);
  assert.equal(kept, truth);
});

test("payments written all through a zone's background fill are each counted once", async () => {
  // Asia/Kathmandu: +05:45 only (and +05:30 before 1986: none of these payments).
  assert.equal(await zoneOffsets(db, 'Asia/Kathmandu'), [345]);
  const fill = new OffsetFill({ db, sliceDays: 1 });
  fill.keep('Asia/Kathmandu');
  // Of every day, in transactions of one and of several, while the slices run.
  let n = 0;
  const writer = (async () => {
    while (n < 120) {
      n += 1;
      const at = T0 - 86_400_000 + ((n * 7_919_000) % (7 * 86_400_000));
      if (n % 3 === 0)
        await db.transaction(async (tx) => {
          await pay(tx, at, 10n ** 20n + BigInt(n));
          await pay(tx, at + 86_400_000, BigInt(n));
        });
      else await pay(db, at, BigInt(n));
    }
  })();
  await Promise.all([fill.idle(), writer]);
  await fill.close();
  const [state] = await db.query<{ complete_from: string | null }>(
    'SELECT complete_from::text FROM fleet_revenue_offsets WHERE minutes = 345',
  );
  assert.is(state!.complete_from, null);
  const { kept, truth } = await days(345);
  assert.equal(kept, truth);
});

test("a zone's fill leaves the planner's statistics of what it wrote fresh, not waiting for autovacuum", async () => {
  const analyzed = () => lastAnalyzed(db);
  const before = await analyzed();
  const fill = new OffsetFill({ db, sliceDays: 2 });
  fill.keep('Asia/Tokyo'); // +09:00, not kept by the tests before
  assert.equal(await fill.idle(), []);
  await fill.close();
  // The statistics reach pg_stat_user_tables when the analyzing backend reports them: at most a second later.
  let after = await analyzed();
  for (let i = 0; i < 50 && after.some((r, k) => r.at === null || r.at === before[k]!.at); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await analyzed();
  }
  assert.equal(
    after.map((r) => r.relname),
    ['revenue_offset_days', 'revenue_offsets', 'revenue_totals_days', 'revenue_totals_months'],
  );
  for (const [k, r] of after.entries())
    assert.ok(r.at !== null && r.at !== before[k]!.at, `${r.relname} analyzed by the fill: ${r.at}`);
});

test('a zone that keeps failing holds neither the others nor idle(): they are filled while it is retried', async () => {
  const log: string[] = [];
  const fill = new OffsetFill({ db, sliceDays: 3, log: (m, f) => void log.push(`${m} ${JSON.stringify(f)}`) });
  fill.keep('Not/A_Zone'); // PostgreSQL refuses it at every try
  fill.keep('America/St_Johns'); // -03:30 and -02:30
  const filled = async () =>
    (
      await db.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM fleet_revenue_offsets WHERE minutes IN (-210, -150) AND complete_from IS NULL`,
      )
    )[0]!.n === '2';
  // idle(): nothing in flight, the failing zone waiting out its retry, named.
  assert.equal(await fill.idle(), ['Not/A_Zone']);
  await fill.close();
  assert.ok(await filled(), `St_Johns filled behind a failing zone: ${log.join('; ')}`);
  assert.ok(
    log.some((l) => l.includes('Not/A_Zone')),
    'the failing zone was tried and logged',
  );
  for (const m of [-210, -150]) {
    const { kept, truth } = await days(m);
    assert.equal(kept, truth);
  }
});

test('an ANALYZE that failed is tried again at the next pass, and the UTC totals alone are analyzed', async () => {
  // The fleet's UTC totals from scratch (a fleet whose days have passed since): the fill sums them again.
  await db.exec(
    'DELETE FROM revenue_totals_days WHERE minutes = 0; DELETE FROM revenue_totals_months WHERE minutes = 0; ' +
      'DELETE FROM revenue_totals_to WHERE minutes = 0',
  );
  const analyzed = () => lastAnalyzed(db);
  const before = await analyzed();
  let refused = 0;
  // The database refuses the first ANALYZE (a lock not had in time); everything else goes to it.
  const flaky = new Proxy(db, {
    get(target, key) {
      if (key === 'exec')
        return async (text: string) => {
          if (text.startsWith('ANALYZE') && refused++ === 0) throw new Error('canceling statement due to lock timeout');
          return target.exec(text);
        };
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const fill = new OffsetFill({ db: flaky, sliceDays: 2 });
  fill.keep('UTC');
  // The retry comes after RETRY_MS (5 s); the bound only keeps a fill that never retries from hanging the file.
  for (let i = 0; i < 300 && ((await fill.idle()).length > 0 || refused < 2); i++)
    await new Promise((r) => setTimeout(r, 100));
  await fill.close();
  assert.is(refused, 2, 'tried again after the refusal');
  let after = await analyzed();
  for (let i = 0; i < 50 && after.some((r, k) => r.at === null || r.at === before[k]!.at); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await analyzed();
  }
  for (const [k, r] of after.entries())
    assert.ok(r.at !== null && r.at !== before[k]!.at, `${r.relname} analyzed on the retry: ${r.at}`);
});

test.run();
