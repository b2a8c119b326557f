/**
 * The dashboard's reads, from the fleet_* views (docs/fleet.md) only: what Grafana or Metabase would read too. Every
 * figure comes back as text or a number of ms, whichever driver runs (pg or PGlite): exact amounts stay decimal text.
 */
import type { Sql } from '../db/index.ts';
import type { AuditRow, GapRow, RevenueRow, RouterRow, SessionRow } from './views.ts';

const ms = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::float8`;

export async function routers(db: Sql): Promise<RouterRow[]> {
  return db.query<RouterRow>(
    `SELECT r.router, r.online, r.status_reason, ${ms('r.last_message_at')} AS last_message_ms,
       ${ms('r.last_report_at')} AS last_report_ms, r.last_seq::text AS last_seq, r.version,
       r.uptime_s::text AS uptime_s,
       r.health, r.reported_dropped::text AS reported_dropped, r.reported_expired::text AS reported_expired,
       coalesce(l.sessions, 0)::text AS sessions, coalesce(l.clients, 0)::text AS clients,
       coalesce(g.missing, 0)::text AS missing, coalesce(g.missing_usage, 0)::text AS missing_usage,
       coalesce(g.missing_session, 0)::text AS missing_session
     FROM fleet_routers r
     LEFT JOIN fleet_live l ON l.router = r.router
     LEFT JOIN (
       SELECT router, sum(missing) FILTER (WHERE kind <> 'usage') AS missing,
         sum(missing) FILTER (WHERE kind = 'usage') AS missing_usage,
         sum(missing) FILTER (WHERE kind = 'session') AS missing_session
       FROM fleet_gaps GROUP BY router
     ) g ON g.router = r.router
     ORDER BY r.router`,
  );
}

export async function router(db: Sql, name: string): Promise<RouterRow | null> {
  return (await routers(db)).find((r) => r.router === name) ?? null;
}

/** Revenue rows of the UTC days from `from` up to and not including `to` (YYYY-MM-DD). */
export async function revenue(db: Sql, from: string, to: string): Promise<RevenueRow[]> {
  return db.query<RevenueRow>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, router, method, asset, sum(payments)::text AS payments,
       sum(amount)::text AS amount
     FROM fleet_revenue_daily WHERE day >= $1::date AND day < $2::date
     GROUP BY day, router, method, asset ORDER BY day, router, method, asset`,
    [from, to],
  );
}

export async function liveSessions(db: Sql, routerName: string): Promise<SessionRow[]> {
  return db.query<SessionRow>(
    `SELECT id, mac, ip, user_name, plan, metric, state, used::text AS used, allotment::text AS allotment,
       remaining::text AS remaining, ${ms('started_at')} AS started_ms, ${ms('expires_at')} AS expires_ms,
       ${ms('updated_at')} AS updated_ms
     FROM fleet_sessions WHERE router = $1 AND live ORDER BY started_at, id`,
    [routerName],
  );
}

export async function gaps(db: Sql, routerName: string | null): Promise<GapRow[]> {
  return db.query<GapRow>(
    `SELECT router, from_seq::text AS from_seq, to_seq::text AS to_seq, missing::text AS missing, kind,
       ${ms('after_at')} AS after_ms, ${ms('before_at')} AS before_ms
     FROM fleet_gaps WHERE $1::text IS NULL OR router = $1 ORDER BY router, from_seq`,
    [routerName],
  );
}

export async function audit(db: Sql, routerName: string | null, limit = 200): Promise<AuditRow[]> {
  return db.query<AuditRow>(
    `SELECT id::text AS id, request_id, ${ms('at')} AS at_ms, actor, router, command, args, ok,
       ${ms('answered_at')} AS answered_ms,
       reply
     FROM fleet_audit WHERE $1::text IS NULL OR router = $1 ORDER BY at DESC, id DESC LIMIT $2`,
    [routerName, limit],
  );
}
