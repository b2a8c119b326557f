/**
 * The Revenue page's reads (docs/fleet.md, "Time zone"): the period's rows per day of the operator's zone, router,
 * method and asset, made once per page and grouped in the same statement into the page's tables and chart, so a year
 * is read once and not once per widget. Amounts stay numeric in SQL and decimal text here: exact.
 */
import type { Sql } from '../db/index.ts';
import type { PageAsk } from './paging.ts';
import type { ChartRow, RevenueRow, TotalRow } from './views.ts';
import { offsetsOf } from './zone.ts';

/** Days from `from` up to and not including `to` (YYYY-MM-DD), in the time zone `zone`. */
export interface Period {
  from: string;
  to: string;
  zone: string;
}

export const CHART_ASSETS = 6;
export const CHART_SERIES = 8;

/** The SQL of the period's day rows (day, router, method, asset, payments, amount) over $1 from, $2 to, $3 zone, $4. */
interface DaySource {
  sql: string;
  /** $4: the offsets (minutes east of UTC) whose days the rows read. */
  minutes: number[];
  /** Those of them not complete yet over the period (some days read from the quarters). */
  filling: number[];
}

/** UTC's days: the collector's daily roll-up. */
const UTC_DAYS = `SELECT day, router, method, asset, payments, amount FROM fleet_revenue_daily
  WHERE day >= $1::date AND day < $2::date AND $3::text = 'UTC' AND $4::int[] IS NOT NULL`;

/** Any zone's days from its payments, each on its day there: a zone whose offset is no whole quarter hour. */
const PAYMENT_DAYS = `SELECT (at AT TIME ZONE $3::text)::date AS day, router, method, asset, count(*) AS payments,
    sum(amount) AS amount
  FROM fleet_payments WHERE at >= ${zoneStart('$1')} AND at < ${zoneStart('$2')} AND $4::int[] IS NOT NULL
  GROUP BY 1, router, method, asset`;

/** The instant the day $n (YYYY-MM-DD) begins in the zone $3. */
export function zoneStart(day: string): string {
  return `(${day}::date::timestamp AT TIME ZONE $3::text)`;
}

/**
 * Each day of the period in the zone $3: its midnight s, the next day's n, the offset of s (minutes east: the zone's
 * clock at s less UTC's) whose day is [s, s + 24 h), and whether that offset's day is kept (UTC's always; another's
 * from its fill's complete_from on, migration 13). A kept day is its offset's row o, and on a day the clock changes
 * [s, n) is that day corrected by [s + 24 h, n) (a day of 25 hours) or less [n, s + 24 h) (of 23): the window w, read
 * from the quarters. A day not kept yet is all window: its quarters [s, n).
 */
const ZONE_DAYS = `z AS (
    SELECT x.day, x.s, x.n, x.minutes, x.minutes = 0 OR coalesce(x.day >= k.complete_from, false) AS kept
    FROM (SELECT day, s, n, extract(epoch FROM day::timestamp - (s AT TIME ZONE 'UTC'))::int / 60 AS minutes
      FROM (SELECT d::date AS day, d::date::timestamp AT TIME ZONE $3::text AS s,
          (d::date + 1)::timestamp AT TIME ZONE $3::text AS n
        FROM generate_series($1::date, $2::date - 1, interval '1 day') d) y) x
    LEFT JOIN revenue_offsets k ON k.minutes = x.minutes),
  w AS (
    SELECT day, least(s + interval '24 hours', n) AS a, greatest(s + interval '24 hours', n) AS b,
      CASE WHEN n > s + interval '24 hours' THEN 1 ELSE -1 END AS sign
    FROM z WHERE kept AND n <> s + interval '24 hours'
    UNION ALL
    SELECT day, s, n, 1 FROM z WHERE NOT kept),
  o AS (
    SELECT o.day, o.router, o.method, o.asset, o.payments, o.amount
    FROM fleet_revenue_offset_daily o JOIN z ON z.day = o.day AND z.minutes = o.minutes AND z.kept
    WHERE o.minutes = ANY ($4::int[]) AND o.day >= $1::date AND o.day < $2::date)`;

/**
 * A zone whose offsets are whole quarter hours (every zone in use now): each day is the row of its offset's day
 * (fleet_revenue_offset_daily, kept for the offsets the zones take) and, on a day its clock changes or one its
 * offset's fill has not reached, the window w's quarters. A group none of whose payments fell in the zone's day sums
 * to 0 payments, and is no row.
 */
const OFFSET_DAYS = `WITH ${ZONE_DAYS}
  SELECT day, router, method, asset, payments, amount FROM o WHERE day NOT IN (SELECT day FROM w)
  UNION ALL
  SELECT day, router, method, asset, sum(payments), sum(amount) FROM (
    SELECT day, router, method, asset, payments, amount FROM o WHERE day IN (SELECT day FROM w)
    UNION ALL
    SELECT w.day, q.router, q.method, q.asset, w.sign * q.payments, w.sign * q.amount
    FROM w JOIN fleet_revenue_quarterly q ON q.quarter >= w.a AND q.quarter < w.b) c
  GROUP BY day, router, method, asset HAVING sum(payments) > 0`;

/**
 * Where the period's days come from: in UTC the collector's daily roll-up; in a zone of quarter-hour offsets, the
 * offsets' daily roll-ups where kept and the quarters where not yet (`filling`: the offsets whose fill has not
 * reached the period's first day, for the page to say so and have them filled, offset-fill.ts); in any other zone,
 * the payments. All sum the same payments.
 */
async function daySource(db: Sql, { from, to, zone }: Period): Promise<DaySource> {
  if (zone === 'UTC') return { sql: UTC_DAYS, minutes: [0], filling: [] };
  if (!offsetsOf(15, zone, from, to)) return { sql: PAYMENT_DAYS, minutes: [], filling: [] };
  // The database's own zone rules, not Intl's, say which offsets the days take.
  const rows = await db.query<{ seconds: string; kept: boolean }>(
    `SELECT x.seconds::text AS seconds, x.seconds = 0 OR coalesce(k.complete_from <= $1::date, false) AS kept
     FROM (SELECT DISTINCT extract(epoch FROM d::date::timestamp - ((d::date::timestamp AT TIME ZONE $3::text)
         AT TIME ZONE 'UTC'))::int AS seconds
       FROM generate_series($1::date, $2::date - 1, interval '1 day') d) x
     LEFT JOIN revenue_offsets k ON k.minutes * 60 = x.seconds`,
    [from, to, zone],
  );
  const seconds = rows.map((r) => Number(r.seconds));
  if (!seconds.every((s) => Number.isInteger(s) && s % 900 === 0))
    return { sql: PAYMENT_DAYS, minutes: [], filling: [] };
  const filling = rows.filter((r) => !r.kept).map((r) => Number(r.seconds) / 60);
  return { sql: OFFSET_DAYS, minutes: seconds.map((s) => s / 60), filling };
}

export interface RevenueAsks {
  revenue: PageAsk;
  router: PageAsk;
  method: PageAsk;
}

export interface RevenuePage {
  detail: { rows: RevenueRow[]; total: string };
  perRouter: { rows: TotalRow[]; total: string };
  perMethod: { rows: TotalRow[]; total: string };
  chart: ChartRow[];
  /** The offsets (minutes east of UTC) whose fill has not reached the period yet: read from the quarters meanwhile. */
  filling: number[];
}

/**
 * The period's day rows d, made once; s their sums per router, method and asset, t those per router and asset (set
 * 1) and per method and asset (set 2); the chart's bars in a second pass over d. What the charts draw is bounded
 *    whatever the routers sent: the
 * CHART_ASSETS assets paid most often, and per asset the CHART_SERIES routers (or methods) that took the most, the
 * rest summed as one series `others`: ranked first from the totals.
 */
const PAGE = (source: string, by: 'router' | 'method'): string => `
  WITH d AS MATERIALIZED (${source}),
  s AS MATERIALIZED (
    SELECT router, method, asset, sum(payments) AS payments, sum(amount) AS amount, count(*) AS rows
    FROM d GROUP BY router, method, asset),
  t AS MATERIALIZED (
    SELECT grouping(router, method) AS set, router, method, asset, sum(payments) AS payments, sum(amount) AS amount
    FROM s GROUP BY GROUPING SETS ((router, asset), (method, asset))),
  assets AS (SELECT asset FROM t WHERE set = 2 GROUP BY asset ORDER BY sum(payments) DESC, asset
    LIMIT ${CHART_ASSETS}),
  ranked AS (
    SELECT ${by} AS key, asset, row_number() OVER (PARTITION BY asset ORDER BY amount DESC, ${by}) AS n
    FROM t WHERE set = ${by === 'router' ? 1 : 2} AND asset IN (SELECT asset FROM assets)),
  bars AS (
    SELECT d.day, d.asset, CASE WHEN r.n <= ${CHART_SERIES} THEN r.key END AS key, sum(d.amount) AS amount,
      r.n > ${CHART_SERIES} AS others
    FROM d JOIN ranked r ON r.key = d.${by} AND r.asset = d.asset
    GROUP BY d.day, d.asset, 3, 5)
  SELECT
    (SELECT coalesce(json_agg(x ORDER BY x.day, x.router, x.method, x.asset), '[]') FROM (
      SELECT to_char(day, 'YYYY-MM-DD') AS day, router, method, asset, payments::text AS payments,
        amount::text AS amount
      FROM (SELECT * FROM d ORDER BY day, router, method, asset LIMIT $5 OFFSET $6) p) x) AS detail,
    (SELECT coalesce(sum(rows), 0)::text FROM s) AS detail_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key), '[]') FROM (
      SELECT router AS key, asset, payments::text AS payments, amount::text AS amount
      FROM t WHERE set = 1 ORDER BY t.asset, t.router LIMIT $7 OFFSET $8) x) AS per_router,
    (SELECT count(*)::text FROM t WHERE set = 1) AS per_router_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key), '[]') FROM (
      SELECT method AS key, asset, payments::text AS payments, amount::text AS amount
      FROM t WHERE set = 2 ORDER BY t.asset, t.method LIMIT $9 OFFSET $10) x) AS per_method,
    (SELECT count(*)::text FROM t WHERE set = 2) AS per_method_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key, x.day), '[]') FROM (
      SELECT to_char(day, 'YYYY-MM-DD') AS day, asset, key, amount::text AS amount, others FROM bars) x) AS chart`;

/** The Revenue page's tables and chart for the period, in one statement over its day rows. */
export async function revenuePage(
  db: Sql,
  period: Period,
  by: 'router' | 'method',
  asks: RevenueAsks,
): Promise<RevenuePage> {
  const source = await daySource(db, period);
  const [row] = await db.query<{
    detail: RevenueRow[];
    detail_total: string;
    per_router: TotalRow[];
    per_router_total: string;
    per_method: TotalRow[];
    per_method_total: string;
    chart: ChartRow[];
  }>(PAGE(source.sql, by), [
    period.from,
    period.to,
    period.zone,
    source.minutes,
    asks.revenue.size,
    asks.revenue.offset,
    asks.router.size,
    asks.router.offset,
    asks.method.size,
    asks.method.offset,
  ]);
  return {
    detail: { rows: row!.detail, total: row!.detail_total },
    perRouter: { rows: row!.per_router, total: row!.per_router_total },
    perMethod: { rows: row!.per_method, total: row!.per_method_total },
    chart: row!.chart,
    filling: source.filling,
  };
}
