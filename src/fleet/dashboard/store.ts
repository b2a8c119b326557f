/**
 * The dashboard's reads, from the fleet_* views (docs/fleet.md) only: what Grafana or Metabase would read too. Every
 * figure comes back as text or a number of ms, whichever driver runs (pg or PGlite): exact amounts stay decimal text.
 */
import type { Sql } from '../db/index.ts';
import { unitsOf, type PricedAsset, type Units } from './money.ts';
import type { PageAsk } from './paging.ts';
import { revenuePage, zoneStart, type Period } from './revenue.ts';
import { offsetsOf } from './zone.ts';
import type { AuditRow, ChartRow, GapRow, HourRow, RevenueRow, RouterRow, SessionRow, TotalRow } from './views.ts';

export { CHART_ASSETS, CHART_SERIES, revenuePage, type Period } from './revenue.ts';

/** A timestamp column as ms since the epoch, a float8 whichever driver reads it. */
export const ms = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::float8`;

/** Whether a table or view is there: a database whose lease service predates it has none. */
export async function relationExists(db: Sql, name: string): Promise<boolean> {
  const [row] = await db.query<{ present: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS present', [name]);
  return row?.present === true;
}

/**
 * A page of `columns` from `source` (a FROM clause and its WHERE, over `params`) in `order`, and how many rows the
 * source holds: the count reads the same source as the rows, so the two cannot disagree (two reads at once).
 */
async function pageOf<T>(
  db: Sql,
  q: { columns: string; source: string; order: string; params: unknown[] },
  ask: PageAsk,
): Promise<{ rows: T[]; total: string }> {
  const k = q.params.length;
  const [rows, [n]] = await Promise.all([
    db.query<T>(`SELECT ${q.columns} FROM ${q.source} ORDER BY ${q.order} LIMIT $${k + 1} OFFSET $${k + 2}`, [
      ...q.params,
      ask.size,
      ask.offset,
    ]),
    db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q.source}`, q.params),
  ]);
  return { rows, total: n?.n ?? '0' };
}

/** The routers' rows: `page` picks which (a WHERE and an ORDER BY … LIMIT over fleet_routers r). */
const ROUTERS = (page: string): string => `
  SELECT r.router, r.online, r.status_reason, ${ms('r.last_message_at')} AS last_message_ms,
    ${ms('r.last_report_at')} AS last_report_ms, r.last_seq::text AS last_seq, r.version,
    r.uptime_s::text AS uptime_s,
    r.health, r.reported_dropped::text AS reported_dropped, r.reported_expired::text AS reported_expired,
    coalesce(l.sessions, 0)::text AS sessions, coalesce(l.clients, 0)::text AS clients,
    coalesce(g.missing, 0)::text AS missing, coalesce(g.missing_usage, 0)::text AS missing_usage,
    coalesce(g.missing_session, 0)::text AS missing_session
  FROM (SELECT * FROM fleet_routers r ${page}) r
  LEFT JOIN fleet_live l ON l.router = r.router
  LEFT JOIN (
    SELECT router, sum(missing) FILTER (WHERE kind <> 'usage') AS missing,
      sum(missing) FILTER (WHERE kind = 'usage') AS missing_usage,
      sum(missing) FILTER (WHERE kind = 'session') AS missing_session
    FROM fleet_gaps GROUP BY router
  ) g ON g.router = r.router
  ORDER BY r.router`;

/** A page of routers in the order of their names, and how many there are. */
export async function routers(db: Sql, ask: PageAsk): Promise<{ rows: RouterRow[]; total: string }> {
  const rows = await db.query<RouterRow>(ROUTERS('ORDER BY r.router LIMIT $1 OFFSET $2'), [ask.size, ask.offset]);
  const [n] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM fleet_routers');
  return { rows, total: n?.n ?? '0' };
}

/** Every router's row (the alerts' evaluation: the same rows the Routers page judges). */
export async function allRouters(db: Sql): Promise<RouterRow[]> {
  return db.query<RouterRow>(ROUTERS(''));
}

export async function router(db: Sql, name: string): Promise<RouterRow | null> {
  const [row] = await db.query<RouterRow>(ROUTERS('WHERE r.router = $1'), [name]);
  return row ?? null;
}

/** The period's payments as (at, router, method, asset, amount, payments): whole UTC hours or quarters where exact. */
const paid = ({ from, to, zone }: Period): string =>
  offsetsOf(60, zone, from, to)
    ? 'SELECT hour AS at, router, method, asset, amount, payments FROM fleet_revenue_hourly'
    : offsetsOf(15, zone, from, to)
      ? 'SELECT quarter AS at, router, method, asset, amount, payments FROM fleet_revenue_quarterly'
      : 'SELECT at, router, method, asset, amount, 1 AS payments FROM fleet_payments';

/** A page of the revenue per day, router, method and asset, and how many rows there are. */
export async function revenue(db: Sql, period: Period, ask: PageAsk): Promise<{ rows: RevenueRow[]; total: string }> {
  return (await revenuePage(db, period, 'router', { revenue: ask, router: ask, method: ask })).detail;
}

/** A page of the period's totals per router (or method) and asset, summed in SQL (numeric: exact). */
export async function revenueTotals(
  db: Sql,
  period: Period,
  by: 'router' | 'method',
  ask: PageAsk,
): Promise<{ rows: TotalRow[]; total: string }> {
  const page = await revenuePage(db, period, by, { revenue: ask, router: ask, method: ask });
  return by === 'router' ? page.perRouter : page.perMethod;
}

/** What the charts draw (revenue.ts revenuePage): per day, asset and router (or method), the rest as `others`. */
export async function revenueChart(db: Sql, period: Period, by: 'router' | 'method'): Promise<ChartRow[]> {
  const none = { page: 1, size: 0, offset: 0 };
  return (await revenuePage(db, period, by, { revenue: none, router: none, method: none })).chart;
}

/**
 * A page of one day's revenue per hour of the zone and asset: every hour the day has there (23 or 25 on the days its
 * clock changes), an hour without payments as one row of no asset. `from` and `to` are the day and the next.
 */
export async function revenueHours(
  db: Sql,
  { from, to, zone }: Period,
  ask: PageAsk,
): Promise<{ rows: HourRow[]; total: string }> {
  // The zone's hours as the payments' are truncated to them: after a clock change of half an hour
  // (Australia/Lord_Howe) its hours start on UTC's half hours, which a series of whole hours from midnight misses.
  const hours = `(SELECT DISTINCT date_trunc('hour', t, $3::text) AS hour
      FROM generate_series(${zoneStart('$1')}, ${zoneStart('$2')} - interval '1 second', interval '15 minutes') t) h
    LEFT JOIN (SELECT date_trunc('hour', at, $3::text) AS hour, asset, sum(payments) AS payments,
        sum(amount) AS amount
      FROM (${paid({ from, to, zone })}) p WHERE at >= ${zoneStart('$1')} AND at < ${zoneStart('$2')}
      GROUP BY 1, asset) p
    ON p.hour = h.hour`;
  const columns = `${ms('h.hour')} AS hour_ms, coalesce(p.asset, '') AS asset,
    coalesce(p.payments, 0)::text AS payments, coalesce(p.amount, 0)::text AS amount`;
  return pageOf(db, { columns, source: hours, order: 'h.hour, asset', params: [from, to, zone] }, ask);
}

/** A page of a router's live sessions, oldest first, and how many it has. */
export async function liveSessions(
  db: Sql,
  routerName: string,
  ask: PageAsk,
): Promise<{ rows: SessionRow[]; total: string }> {
  const columns = `id, mac, ip, user_name, plan, metric, state, used::text AS used, allotment::text AS allotment,
    remaining::text AS remaining, ${ms('started_at')} AS started_ms, ${ms('expires_at')} AS expires_ms,
    ${ms('updated_at')} AS updated_ms`;
  const source = 'fleet_sessions WHERE router = $1 AND live';
  return pageOf(db, { columns, source, order: 'started_at, id', params: [routerName] }, ask);
}

/** A page of the holes in one router's series (or every router's), in the order of their numbers. */
export async function gaps(
  db: Sql,
  routerName: string | null,
  ask: PageAsk,
): Promise<{ rows: GapRow[]; total: string }> {
  const columns = `router, from_seq::text AS from_seq, to_seq::text AS to_seq, missing::text AS missing, kind,
    ${ms('after_at')} AS after_ms, ${ms('before_at')} AS before_ms`;
  const source = 'fleet_gaps WHERE $1::text IS NULL OR router = $1';
  return pageOf(db, { columns, source, order: 'router, from_seq', params: [routerName] }, ask);
}

const AUDIT_COLUMNS = `id::text AS id, request_id, ${ms('at')} AS at_ms, actor, router, command, args, ok,
  ${ms('answered_at')} AS answered_ms, reply`;

/** A page of the actions on one router (or every router), newest first. */
export async function audit(
  db: Sql,
  routerName: string | null,
  ask: PageAsk,
): Promise<{ rows: AuditRow[]; total: string }> {
  const source = 'fleet_audit WHERE $1::text IS NULL OR router = $1';
  return pageOf(db, { columns: AUDIT_COLUMNS, source, order: 'at DESC, id DESC', params: [routerName] }, ask);
}

/** One action by its request id (the answer an admin is shown after acting). */
export async function action(db: Sql, requestId: string): Promise<AuditRow | null> {
  const [row] = await db.query<AuditRow>(`SELECT ${AUDIT_COLUMNS} FROM fleet_audit WHERE request_id = $1`, [requestId]);
  return row ?? null;
}

/** The units of the assets the routers price (their status `pricing`: asset, currency, decimals per plan). */
export async function units(db: Sql): Promise<Units> {
  const plans = await db.query<PricedAsset>(
    `SELECT DISTINCT coalesce(p ->> 'asset', '') AS asset, p ->> 'currency' AS currency, p ->> 'decimals' AS decimals
     FROM fleet_routers r
     CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(r.pricing) WHEN 'array' THEN r.pricing ELSE '[]' END) p
     WHERE jsonb_typeof(p) = 'object'`,
  );
  return unitsOf(plans);
}
