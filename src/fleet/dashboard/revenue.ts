/**
 * The Revenue page's reads (docs/fleet.md, "Time zone"): the period's rows per day of the operator's zone, router,
 * method and asset, grouped in one statement into the page's tables and chart. The days and months the fleet's totals
 * hold (migration 14) are read from them, so a year reads a row per day and method, and per month and router, and the
 * routers' own days only for the days the totals do not hold, the page of days shown, and the chart's few routers.
 * Amounts stay numeric in SQL and decimal text here: exact.
 */
import type { Sql } from '../db/index.ts';
import type { PageAsk } from './paging.ts';
import type { ChartRow, RevenueRow, TotalRow } from './views.ts';
import { CHART_DAILY_MAX } from './charts.ts';
import { offsetsOf } from './zone.ts';

/** Days from `from` up to and not including `to` (YYYY-MM-DD), in the time zone `zone`. */
export interface Period {
  from: string;
  to: string;
  zone: string;
}

export const CHART_ASSETS = 6;
export const CHART_SERIES = 8;

/**
 * Where the period's rows come from, over $1 from, $2 to, $3 zone, $4 the offsets (minutes east of UTC) its days
 * take: `with` defines zc, each day of the period (day; its offset `minutes`; `summed`: the fleet's totals hold it;
 * `covered`: its month's rows of the totals are read for it), and mo, the months of the totals read; `rows` is the
 * routers' day rows (day, router, method, asset, payments, amount) of the days of a CTE like zc, of the routers
 * `router` (a condition on a column name) allows.
 */
interface DaySource {
  with: string;
  rows: (days: string, router: (column: string) => string) => string;
  minutes: number[];
  /** Those of them not complete yet over the period (some days read from the quarters). */
  filling: number[];
}

const ANY_ROUTER = (): string => 'true';

/** The instant the day $n (YYYY-MM-DD) begins in the zone $3. */
export function zoneStart(day: string): string {
  return `(${day}::date::timestamp AT TIME ZONE $3::text)`;
}

/**
 * Each day of the period in the zone $3: its midnight s, the next day's n, the offset of s (minutes east: the zone's
 * clock at s less UTC's) whose day is [s, s + 24 h), whether that offset's day is kept (UTC's always; another's from
 * its fill's complete_from on, migration 13), and whether the fleet's totals hold it (a kept day of 24 hours before
 * its offset's days_to, migration 14). A month of an offset is read from the totals' month rows (mo) when at least
 * half of the days those hold (the ones before days_to) are days of the period the totals hold, less the routers' rows
 * of its other days (cd, comp: the days of the other offset in a month the clock changes, a clock change's own day,
 * the days of a partial month outside the period), so no month reads more than half of its days per router.
 */
const ZONE_DAYS = `z AS (
    SELECT x.day, x.s, x.n, x.minutes, x.minutes = 0 OR coalesce(x.day >= k.complete_from, false) AS kept,
      (x.minutes = 0 OR coalesce(x.day >= k.complete_from, false)) AND x.n = x.s + interval '24 hours'
        AND x.day < coalesce(t.days_to, '-infinity') AS summed
    FROM (SELECT day, s, n, extract(epoch FROM day::timestamp - (s AT TIME ZONE 'UTC'))::int / 60 AS minutes
      FROM (SELECT d::date AS day, d::date::timestamp AT TIME ZONE $3::text AS s,
          (d::date + 1)::timestamp AT TIME ZONE $3::text AS n
        FROM generate_series($1::date, $2::date - 1, interval '1 day') d) y) x
    LEFT JOIN revenue_offsets k ON k.minutes = x.minutes
    LEFT JOIN fleet_revenue_totals_to t ON t.minutes = x.minutes),
  mo AS (
    SELECT z.minutes, date_trunc('month', z.day)::date AS month, min(t.days_to) AS days_to
    FROM z JOIN fleet_revenue_totals_to t ON t.minutes = z.minutes
    WHERE z.summed
    GROUP BY 1, 2
    HAVING 2 * count(*) >= least((date_trunc('month', min(z.day)) + interval '1 month')::date, min(t.days_to))
      - date_trunc('month', min(z.day))::date),
  zc AS MATERIALIZED (
    SELECT z.*, z.summed AND mo.month IS NOT NULL AS covered
    FROM z LEFT JOIN mo ON mo.minutes = z.minutes AND mo.month = date_trunc('month', z.day)::date),
  cd AS MATERIALIZED (
    SELECT mo.minutes, mo.month, e::date AS day
    FROM mo, generate_series(mo.month, least((mo.month + interval '1 month')::date, mo.days_to) - 1, interval '1 day') e
    WHERE NOT EXISTS (SELECT 1 FROM zc WHERE zc.day = e::date AND zc.minutes = mo.minutes AND zc.covered)),
  comp AS MATERIALIZED (
    SELECT cd.month, o.router, o.asset, o.payments, o.amount
    FROM fleet_revenue_offset_daily o JOIN cd ON cd.minutes = o.minutes AND cd.day = o.day
    WHERE o.day = ANY (ARRAY(SELECT day FROM cd)) AND o.minutes = ANY (ARRAY(SELECT minutes FROM cd))),`;

/** UTC's days: the collector's daily roll-up. */
const UTC_DAYS: Omit<DaySource, 'filling'> = {
  with: ZONE_DAYS,
  rows: (days, router) => `SELECT v.day, v.router, v.method, v.asset, v.payments, v.amount
    FROM fleet_revenue_daily v JOIN ${days} z ON z.day = v.day
    WHERE v.day = ANY (ARRAY(SELECT day FROM ${days})) AND ${router('v.router')}`,
  minutes: [0],
};

/** Any zone's days from its payments, each on its day there: a zone whose offset is no whole quarter hour. */
const PAYMENT_DAYS: DaySource = {
  with: `zc AS (SELECT d::date AS day, 0 AS minutes, false AS summed, false AS covered
    FROM generate_series($1::date, $2::date - 1, interval '1 day') d),
  mo AS (SELECT 0 AS minutes, NULL::date AS month WHERE false),
  comp AS (SELECT NULL::date AS month, ''::text AS router, ''::text AS asset, 0::bigint AS payments,
    0::numeric AS amount WHERE false),`,
  rows: (days, router) => `SELECT (at AT TIME ZONE $3::text)::date AS day, router, method, asset, count(*) AS payments,
      sum(amount) AS amount
    FROM fleet_payments
    WHERE at >= ${zoneStart('$1')} AND at < ${zoneStart('$2')} AND $4::int[] IS NOT NULL AND ${router('router')}
      AND (at AT TIME ZONE $3::text)::date IN (SELECT day FROM ${days})
    GROUP BY 1, router, method, asset`,
  minutes: [],
  filling: [],
};

/**
 * A zone whose offsets are whole quarter hours (every zone in use now): each day is the row of its offset's day
 * (fleet_revenue_offset_daily, kept for the offsets the zones take) and, on a day its clock changes ([s, n) is that
 * day corrected by [s + 24 h, n), a day of 25 hours, or less [n, s + 24 h), of 23) or one its offset's fill has not
 * reached (all of [s, n)), the window w's quarters. A group none of whose payments fell in the zone's day sums to 0
 * payments, and is no row.
 */
const OFFSET_ROWS = (days: string, router: (column: string) => string): string => `(
  WITH w AS (
    SELECT day, least(s + interval '24 hours', n) AS a, greatest(s + interval '24 hours', n) AS b,
      CASE WHEN n > s + interval '24 hours' THEN 1 ELSE -1 END AS sign
    FROM ${days} WHERE kept AND n <> s + interval '24 hours'
    UNION ALL
    SELECT day, s, n, 1 FROM ${days} WHERE NOT kept),
  o AS (
    SELECT o.day, o.router, o.method, o.asset, o.payments, o.amount
    FROM fleet_revenue_offset_daily o JOIN ${days} z ON z.day = o.day AND z.minutes = o.minutes AND z.kept
    WHERE o.minutes = ANY ($4::int[]) AND o.day = ANY (ARRAY(SELECT day FROM ${days} WHERE kept))
      AND ${router('o.router')}),
  -- The windows' quarters found by their time, then by router (not the other way round: a year of quarters).
  q AS MATERIALIZED (
    SELECT w.day, q.router, q.method, q.asset, w.sign * q.payments AS payments, w.sign * q.amount AS amount
    FROM w JOIN fleet_revenue_quarterly q ON q.quarter >= w.a AND q.quarter < w.b)
  SELECT day, router, method, asset, payments, amount FROM o WHERE day NOT IN (SELECT day FROM w)
  UNION ALL
  SELECT day, router, method, asset, sum(payments), sum(amount) FROM (
    SELECT day, router, method, asset, payments, amount FROM o WHERE day IN (SELECT day FROM w)
    UNION ALL
    SELECT day, router, method, asset, payments, amount FROM q WHERE ${router('q.router')}) c
  GROUP BY day, router, method, asset HAVING sum(payments) > 0)`;

/**
 * Where the period's days come from: in UTC the collector's daily roll-up; in a zone of quarter-hour offsets, the
 * offsets' daily roll-ups where kept and the quarters where not yet (`filling`: the offsets whose fill has not
 * reached the period's first day, for the page to say so and have them filled, offset-fill.ts); in any other zone,
 * the payments. All sum the same payments.
 */
async function daySource(db: Sql, { from, to, zone }: Period): Promise<DaySource> {
  if (zone === 'UTC') return { ...UTC_DAYS, filling: [] };
  if (!offsetsOf(15, zone, from, to)) return PAYMENT_DAYS;
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
  if (!seconds.every((s) => Number.isInteger(s) && s % 900 === 0)) return PAYMENT_DAYS;
  const filling = rows.filter((r) => !r.kept).map((r) => Number(r.seconds) / 60);
  return { with: ZONE_DAYS, rows: OFFSET_ROWS, minutes: seconds.map((s) => s / 60), filling };
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
 * d: the routers' day rows of the days not covered by the totals' months; f: per day, method and asset over the
 * routers (the totals' rows of the days they hold, d's sums of the others; `rows`: the routers' day rows each sums);
 * sm: per month, router and asset (the months' rows less comp, and d), s: per router and asset (sm); m: per method
 * and asset (f). The page of days shown is read from the routers' rows of only the days it spans (found from f's rows
 * per day). What the charts draw is bounded whatever the routers sent: the CHART_ASSETS assets paid most often, and
 * per asset the CHART_SERIES routers (or methods) that took the most, the rest summed as one series `others`: ranked
 * first from the totals. Per method the bars are f's days (or months); per router, the routers' own days of the few
 * drawn (or their months, sm), and `others` f's day (or month) less theirs. A chart of months (a period of more than
 * CHART_DAILY_MAX days) reads no router's day beyond d's: a year per day was 365 bars a pixel wide each, ~9,000 day
 * rows of the drawn routers read and ~10,000 bars drawn.
 */
const PAGE = (source: DaySource, by: 'router' | 'method', monthly: boolean): string => `
  WITH ${source.with}
  rest AS MATERIALIZED (SELECT * FROM zc WHERE NOT covered),
  d AS MATERIALIZED (${source.rows('rest', ANY_ROUTER)}),
  f AS MATERIALIZED (
    SELECT t.day, t.method, t.asset, t.payments, t.amount, t.rows
    FROM fleet_revenue_daily_totals t JOIN zc ON zc.day = t.day AND zc.minutes = t.minutes AND zc.summed
    WHERE t.minutes = ANY ($4::int[]) AND t.day >= $1::date AND t.day < $2::date
    UNION ALL
    SELECT day, method, asset, sum(payments), sum(amount), count(*) FROM d
    WHERE day IN (SELECT day FROM zc WHERE NOT summed) GROUP BY day, method, asset),
  sm AS MATERIALIZED (
    SELECT month, router, asset, sum(payments) AS payments, sum(amount) AS amount FROM (
      SELECT greatest(t.month, $1::date) AS month, t.router, t.asset, t.payments, t.amount
      FROM fleet_revenue_monthly_totals t JOIN mo ON mo.minutes = t.minutes AND mo.month = t.month
      UNION ALL
      SELECT greatest(month, $1::date), router, asset, -payments, -amount FROM comp
      UNION ALL
      SELECT greatest(date_trunc('month', day)::date, $1::date), router, asset, payments, amount FROM d) x
    GROUP BY month, router, asset
    HAVING sum(payments) <> 0),
  s AS MATERIALIZED (
    SELECT router, asset, sum(payments) AS payments, sum(amount) AS amount FROM sm GROUP BY router, asset),
  m AS MATERIALIZED (
    SELECT method, asset, sum(payments) AS payments, sum(amount) AS amount FROM f GROUP BY method, asset),
  assets AS (SELECT asset FROM m GROUP BY asset ORDER BY sum(payments) DESC, asset LIMIT ${CHART_ASSETS}),
  ranked AS MATERIALIZED (
    SELECT ${by} AS key, asset, row_number() OVER (PARTITION BY asset ORDER BY amount DESC, ${by}) AS n
    FROM ${by === 'router' ? 's' : 'm'} WHERE asset IN (SELECT asset FROM assets)),
  ${by === 'method' ? METHOD_BARS(monthly) : monthly ? ROUTER_MONTH_BARS : ROUTER_BARS(source)},
  per_day AS (SELECT day, sum(rows) AS rows FROM f GROUP BY day),
  spans AS MATERIALIZED (SELECT day, rows, sum(rows) OVER (ORDER BY day) - rows AS before FROM per_day),
  shown AS MATERIALIZED (
    SELECT zc.* FROM zc JOIN spans ON spans.day = zc.day
    WHERE spans.before < $6::bigint + $5::bigint AND spans.before + spans.rows > $6::bigint)
  SELECT
    (SELECT coalesce(json_agg(x ORDER BY x.day, x.router, x.method, x.asset), '[]') FROM (
      SELECT to_char(day, 'YYYY-MM-DD') AS day, router, method, asset, payments::text AS payments,
        amount::text AS amount
      FROM (SELECT * FROM (${source.rows('shown', ANY_ROUTER)}) p ORDER BY day, router, method, asset LIMIT $5
        OFFSET $6::bigint - (SELECT coalesce(min(before), 0) FROM spans WHERE day IN (SELECT day FROM shown))) p
    ) x) AS detail,
    (SELECT coalesce(sum(rows), 0)::text FROM f) AS detail_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key), '[]') FROM (
      SELECT router AS key, asset, payments::text AS payments, amount::text AS amount
      FROM s ORDER BY s.asset, s.router LIMIT $7 OFFSET $8) x) AS per_router,
    (SELECT count(*)::text FROM s) AS per_router_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key), '[]') FROM (
      SELECT method AS key, asset, payments::text AS payments, amount::text AS amount
      FROM m ORDER BY m.asset, m.method LIMIT $9 OFFSET $10) x) AS per_method,
    (SELECT count(*)::text FROM m) AS per_method_total,
    (SELECT coalesce(json_agg(x ORDER BY x.asset, x.key, x.day), '[]') FROM (
      SELECT to_char(day, 'YYYY-MM-DD') AS day, asset, key, amount::text AS amount, others FROM bars) x) AS chart`;

/** A day's bar: the day, or its month's (from $1 on) when the chart draws months. */
const BAR = (monthly: boolean, day: string): string =>
  monthly ? `greatest(date_trunc('month', ${day})::date, $1::date)` : day;

/** Per method: f's days (or months). */
const METHOD_BARS = (monthly: boolean): string => `bars AS (
    SELECT ${BAR(monthly, 'f.day')} AS day, f.asset, CASE WHEN r.n <= ${CHART_SERIES} THEN r.key END AS key,
      sum(f.amount) AS amount, r.n > ${CHART_SERIES} AS others
    FROM f JOIN ranked r ON r.key = f.method AND r.asset = f.asset
    GROUP BY 1, f.asset, 3, 5)`;

/** Per router and month: the months of the routers drawn (sm), and per month of an asset with more, `others`. */
const ROUTER_MONTH_BARS = `drawn AS MATERIALIZED (
    SELECT sm.month AS day, sm.asset, sm.router AS key, sm.amount
    FROM sm JOIN ranked r ON r.key = sm.router AND r.asset = sm.asset AND r.n <= ${CHART_SERIES}),
  bars AS (
    SELECT day, asset, key, amount, false AS others FROM drawn
    UNION ALL
    SELECT f.day, f.asset, NULL, f.amount - coalesce(x.amount, 0), true
    FROM (SELECT ${BAR(true, 'day')} AS day, asset, sum(amount) AS amount FROM f
        WHERE asset IN (SELECT asset FROM ranked WHERE n > ${CHART_SERIES}) GROUP BY 1, asset) f
      LEFT JOIN (SELECT day, asset, sum(amount) AS amount FROM drawn GROUP BY day, asset) x
        ON x.day = f.day AND x.asset = f.asset)`;

/** Per router: the days of the routers drawn, and per day of an asset with more routers, the rest as `others`. */
const ROUTER_BARS = (source: DaySource): string => `drawn AS MATERIALIZED (
    SELECT x.day, x.asset, x.router AS key, sum(x.amount) AS amount
    FROM (${source.rows('zc', (c) => `${c} = ANY (ARRAY(SELECT key FROM ranked WHERE n <= ${CHART_SERIES}))`)}) x
    JOIN ranked r ON r.key = x.router AND r.asset = x.asset AND r.n <= ${CHART_SERIES}
    GROUP BY x.day, x.asset, x.router),
  bars AS (
    SELECT day, asset, key, amount, false AS others FROM drawn
    UNION ALL
    SELECT f.day, f.asset, NULL, f.amount - coalesce(x.amount, 0), true
    FROM (SELECT day, asset, sum(amount) AS amount FROM f
        WHERE asset IN (SELECT asset FROM ranked WHERE n > ${CHART_SERIES}) GROUP BY day, asset) f
      LEFT JOIN (SELECT day, asset, sum(amount) AS amount FROM drawn GROUP BY day, asset) x
        ON x.day = f.day AND x.asset = f.asset)`;

/** The Revenue page's tables and chart for the period, in one statement over its day rows. */
export async function revenuePage(
  db: Sql,
  period: Period,
  by: 'router' | 'method',
  asks: RevenueAsks,
): Promise<RevenuePage> {
  const source = await daySource(db, period);
  const monthly = (Date.parse(period.to) - Date.parse(period.from)) / 86_400_000 > CHART_DAILY_MAX;
  const [row] = await db.query<{
    detail: RevenueRow[];
    detail_total: string;
    per_router: TotalRow[];
    per_router_total: string;
    per_method: TotalRow[];
    per_method_total: string;
    chart: ChartRow[];
  }>(PAGE(source, by, monthly), [
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
