// The fleet bench's ledger part (bench/fleet.ts, `--skip real,capacity,year` runs only it): the Routers page's gap
// query and the ledger's retention on a year of `routers` routers, made with generate_series in a real PostgreSQL 15:
// per router a year of spans (a hole of 1–3 usage reports once a day: a reboot), the newest `rows` per-message rows
// (a day is 43,200: a usage report every 2 s) of which the last 30 are above spans_to (the minute not yet in spans).
// Times: the gaps read as the view did before spans (a window over every row of the ledger) and as fleet_gaps reads
// them now, the Routers page's whole query (dashboard/store.ts routers()), then a retention pass pruning half of the
// rows (received 36 days ago), and the bytes per span.
import { loadavg } from 'node:os';
import { retentionPass } from '../../src/fleet/collector/index.ts';
import { routers as routersPage } from '../../src/fleet/dashboard/store.ts';

const FIRST_PAGE = { page: 1, size: 200, offset: 0 };
import type { Db } from '../../src/fleet/db/index.ts';

const load = () => loadavg()[0]!.toFixed(1);
const DAY_REPORTS = 43_200;

/** The gaps as the view read them before spans: every row of the ledger through a window. */
const ROW_GAPS = `
SELECT router_id, count(*) AS gaps, sum(seq - prev_seq - 1) AS missing FROM (
  SELECT router_id, seq, coalesce(lag(seq) OVER w, 0) AS prev_seq
  FROM messages WINDOW w AS (PARTITION BY router_id ORDER BY seq)
) g WHERE seq > prev_seq + 1 GROUP BY router_id`;

const SPAN_GAPS = 'SELECT router, count(*) AS gaps, sum(missing) AS missing FROM fleet_gaps GROUP BY router';

async function timed<T>(runs: number, fn: () => Promise<T>): Promise<{ p50: number; min: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(runs / 2)]!, min: times[0]!, max: times[runs - 1]! };
}

const fmt = (t: { p50: number; min: number; max: number }) =>
  `p50 ${t.p50.toFixed(1)} ms (min ${t.min.toFixed(1)}, max ${t.max.toFixed(1)})`;

export async function ledgerBench(db: Db, routers: number, rows: number): Promise<void> {
  const t0 = Date.now();
  // Day d of router r covers numbers [d * 43,203 + 1, d * 43,203 + 43,200]: a hole of 3 before each day but the first
  // (1–3 in spirit; 3 keeps the arithmetic plain). The last day's newest `rows` are rows of messages.
  const span = DAY_REPORTS + 3;
  await db.exec(`
    INSERT INTO routers (name) SELECT 'r' || lpad(i::text, 4, '0') FROM generate_series(1, ${routers}) i;
    INSERT INTO message_spans (router_id, first_seq, last_seq, first_at, last_at, first_prev_session_seq)
    SELECT r.id, d * ${span} + 1, d * ${span} + ${DAY_REPORTS}, now() - (365 - d) * interval '1 day',
      now() - (364 - d) * interval '1 day', 0
    FROM routers r, generate_series(0, 364) d;
    INSERT INTO messages (router_id, seq, kind, at, prev_session_seq, received_at)
    SELECT r.id, s, 1, now() - (364 * ${span} + ${DAY_REPORTS} - s)::float8 * interval '2 seconds', 0,
      now() - (364 * ${span} + ${DAY_REPORTS} - s)::float8 * interval '2 seconds'
    FROM routers r, generate_series(364 * ${span} + ${DAY_REPORTS} - ${rows} + 1, 364 * ${span} + ${DAY_REPORTS}) s;
    UPDATE routers SET spans_to = 364 * ${span} + ${DAY_REPORTS} - 30, max_seq = 364 * ${span} + ${DAY_REPORTS};
    -- The last 30 are not in spans yet: the last span ends before them.
    UPDATE message_spans SET last_seq = 364 * ${span} + ${DAY_REPORTS} - 30 WHERE first_seq = 364 * ${span} + 1;`);
  await db.exec('VACUUM ANALYZE');
  const [n] = await db.query<{ spans: string; rows: string }>(
    'SELECT (SELECT count(*) FROM message_spans)::text AS spans, (SELECT count(*) FROM messages)::text AS rows',
  );
  console.log(
    `  ledger      ${routers} routers x a year: ${n!.spans} spans, ${n!.rows} ledger rows made in ` +
      `${((Date.now() - t0) / 1000).toFixed(1)} s; load ${load()}`,
  );
  const before = await db.query(ROW_GAPS);
  const after = await db.query(SPAN_GAPS);
  console.log(
    `              gaps over the rows: ${before.length} routers with holes (the rows' window sees only their own ` +
      `day); over the spans: ${after.length} routers, ${after.reduce((a, r) => a + Number(r['gaps']), 0)} holes`,
  );
  const routersQuery = () => routersPage(db, FIRST_PAGE);
  const rowWindow = await timed(5, () => db.query(ROW_GAPS));
  console.log(`              gaps, a window over every row (before): ${fmt(rowWindow)}`);
  const spans = await timed(15, () => db.query(SPAN_GAPS));
  console.log(`              gaps, fleet_gaps (spans + rows above spans_to): ${fmt(spans)}`);
  console.log(`              the Routers page's query: ${fmt(await timed(15, routersQuery))}; load ${load()}`);
  const spanBytes = Number(
    (await db.query<{ n: string }>("SELECT pg_total_relation_size('message_spans')::text AS n"))[0]!.n,
  );
  console.log(`              message_spans: ${(spanBytes / Number(n!.spans)).toFixed(0)} B per span with its index`);
  // Half of every router's rows came 36 days ago: past the default retention of 35 days.
  await db.query(
    `UPDATE messages SET received_at = now() - interval '36 days'
     WHERE seq <= 364 * ${span} + ${DAY_REPORTS} - ${Math.floor(rows / 2)}`,
  );
  const t1 = Date.now();
  const pass = await retentionPass(db, { retentionMs: 35 * 86_400_000, settleMs: 0 });
  const s = (Date.now() - t1) / 1000;
  console.log(
    `              retention pass: ${pass.spanned} rows into spans, ${pass.pruned} pruned in ${s.toFixed(1)} s ` +
      `(${(pass.pruned / s).toFixed(0)} rows/s); load ${load()}`,
  );
  console.log(`              gaps after it: ${fmt(await timed(15, () => db.query(SPAN_GAPS)))}; load ${load()}`);
}
