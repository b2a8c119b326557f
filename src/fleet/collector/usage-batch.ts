/**
 * Many usage reports in one transaction: one commit (one fsync) and two statements for the lot instead of a
 * transaction per report, with exactly the effects of storing them one by one (store.ts, USAGE_SQL). Each report
 * still takes its own row in the `messages` ledger (ON CONFLICT DO NOTHING), and only the reports whose row is new
 * change anything: their sessions' figures (those of the newest report per session), the hours' roll-ups and the
 * routers' last report. The caller acknowledges every report of the batch to the broker only after the commit.
 *
 * One statement, so one round trip and its own transaction (a busy machine makes each round trip wait for a CPU).
 * A report whose sessions new to the fleet would take its router past MAX_NEW_SESSIONS_PER_DAY (counting, in seq
 * order, the new sessions of the router's reports before it in the batch) is 'over': none of it written.
 *
 * Locks: the batch's routers' rows first, in id order (`lock`, read whole before the first insert), as every message
 * of a router locks its row first: two batches, or a batch and a session message, that share routers wait for each
 * other instead of deadlocking over the sessions' rows.
 */
import type { Db } from '../db/index.ts';
import type { Inbound } from './parse.ts';
import { MAX_NEW_SESSIONS_PER_DAY } from './bounds.ts';
import { NEW_TODAY, storeLateUsage, TODAY, type RouterIds, type Stored } from './store.ts';
import { SESSION_ROW_MERGE } from './session-merge.ts';

export type UsageMessage = Inbound & { kind: 'usage' };

const AT = (p: string): string => `to_timestamp(${p} / 1000)`;

/**
 * A session reported twice in one batch would be updated twice by one INSERT … ON CONFLICT (which PostgreSQL
 * refuses), so the reports' rows are folded per session first: the deltas summed, the figures of the newest report.
 *
 * Whether a row's session is new is one probe of the sessions' key per row (a scalar subquery: as NOT EXISTS the
 * planner hashed the whole sessions table, which keeps every session for good, into every batch), and the routers'
 * counts of new sessions are summed once, not scanned per router.
 */
const BATCH_SQL = `
WITH lock AS (
  SELECT id, spans_to, ${NEW_TODAY} AS today FROM routers WHERE id = ANY($21::int[]) ORDER BY id FOR UPDATE
), input AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::bigint[], $5::numeric[], $6::numeric[],
    $7::int[]) AS i(router_id, seq, at_ms, prev, up, down, nrows)
), raw AS (
  SELECT * FROM unnest($8::int[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
    $15::numeric[], $16::numeric[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[])
    AS u(router_id, seq, id, mac, user_name, metric, state, used, bytes, allotment, remaining, up, down)
), firsts AS (
  SELECT router_id, min(seq) AS seq FROM raw u
  WHERE (SELECT true FROM sessions x WHERE x.router_id = u.router_id AND x.id = u.id) IS NULL
  GROUP BY router_id, id
), news AS (
  SELECT i.router_id, i.seq, coalesce(f.n, 0) AS n,
    sum(coalesce(f.n, 0)) OVER (PARTITION BY i.router_id ORDER BY i.seq) AS upto
  FROM input i LEFT JOIN (SELECT router_id, seq, count(*) AS n FROM firsts GROUP BY 1, 2) f USING (router_id, seq)
), over AS (
  SELECT w.router_id, w.seq FROM news w JOIN lock l ON l.id = w.router_id WHERE w.n > 0 AND l.today + w.upto > $22
), m AS (
  INSERT INTO messages (router_id, seq, kind, at, prev_session_seq)
  SELECT i.router_id, i.seq, 1, ${AT('i.at_ms')}, i.prev FROM input i JOIN lock l ON l.id = i.router_id
  WHERE (SELECT count(*) FROM lock) > 0 AND i.seq > l.spans_to
    AND NOT EXISTS (SELECT 1 FROM over o WHERE o.router_id = i.router_id AND o.seq = i.seq)
  ON CONFLICT DO NOTHING RETURNING router_id, seq
), fresh AS (
  SELECT i.* FROM input i JOIN m USING (router_id, seq)
), rows AS (
  SELECT u.*, f.at_ms, sum(u.up) OVER w AS up_sum, sum(u.down) OVER w AS down_sum, max(u.user_name) OVER w AS any_user,
    row_number() OVER (w ORDER BY u.seq DESC) AS newest
  FROM raw u JOIN fresh f USING (router_id, seq)
  WINDOW w AS (PARTITION BY u.router_id, u.id)
), s AS (
  INSERT INTO sessions AS s (router_id, id, mac, user_name, metric, state, used, bytes, allotment, remaining,
    up_bytes, down_bytes, seq, updated_at)
  SELECT router_id, id, mac, coalesce(user_name, any_user), metric, state, used, bytes, allotment, remaining, up_sum,
    down_sum, seq, ${AT('at_ms')}
  FROM rows WHERE newest = 1
  ON CONFLICT (router_id, id) DO UPDATE SET
    ${SESSION_ROW_MERGE}
  RETURNING s.router_id, (xmax = 0) AS inserted
), h AS (
  INSERT INTO usage_hours AS h (router_id, hour, up_bytes, down_bytes, rows, reports)
  SELECT router_id, date_trunc('hour', ${AT('at_ms')} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(up), sum(down),
    sum(nrows), count(*)
  FROM fresh GROUP BY 1, 2
  ON CONFLICT (router_id, hour) DO UPDATE SET up_bytes = h.up_bytes + EXCLUDED.up_bytes,
    down_bytes = h.down_bytes + EXCLUDED.down_bytes, rows = h.rows + EXCLUDED.rows,
    reports = h.reports + EXCLUDED.reports
  RETURNING 1
), r AS (
  UPDATE routers SET max_seq = greatest(max_seq, i.seq), last_message_at = now(),
    last_report_at = greatest(last_report_at, ${AT('i.at_ms')}),
    usage_sessions = ${NEW_TODAY} + coalesce(k.n, 0), usage_sessions_day = ${TODAY}
  FROM (
    SELECT router_id, max(seq) AS seq, max(at_ms) AS at_ms FROM input x
    WHERE NOT EXISTS (SELECT 1 FROM over o WHERE o.router_id = x.router_id AND o.seq = x.seq) GROUP BY router_id
  ) i LEFT JOIN (SELECT router_id, count(*) AS n FROM s WHERE inserted GROUP BY router_id) k USING (router_id)
  WHERE routers.id = i.router_id RETURNING 1
)
SELECT router_id, seq::text AS seq, 'stored' AS outcome FROM m
UNION ALL
SELECT router_id, seq::text, 'over' FROM over
UNION ALL
SELECT i.router_id, i.seq::text, 'late' FROM input i JOIN lock l ON l.id = i.router_id WHERE i.seq <= l.spans_to`;

/**
 * Stores the usage reports in one transaction; one outcome per report, in order. A report given twice in one batch
 * (the broker sent it again before the first copy's commit) is stored once and the copy is a duplicate.
 */
export async function storeUsageBatch(db: Db, ids: RouterIds, batch: readonly UsageMessage[]): Promise<Stored[]> {
  const routerIds: number[] = [];
  for (const m of batch) routerIds.push(await ids.of(db, m.router));
  const firstOf = new Map<string, number>();
  const msg: unknown[][] = [[], [], [], [], [], [], []];
  const row: unknown[][] = Array.from({ length: 13 }, () => []);
  batch.forEach((m, i) => {
    const key = `${routerIds[i]} ${m.seq}`;
    if (firstOf.has(key)) return;
    firstOf.set(key, i);
    let up = 0n;
    let down = 0n;
    for (const r of m.rows) {
      up += BigInt(r.up);
      down += BigInt(r.down);
      const values = [routerIds[i], m.seq, r.id, r.mac, r.user, r.metric, r.state, r.used, r.bytes, r.allotment];
      values.push(r.remaining, r.up, r.down);
      values.forEach((v, k) => row[k]!.push(v));
    }
    [routerIds[i], m.seq, m.at, m.prevSessionSeq, up.toString(), down.toString(), m.rows.length].forEach((v, k) =>
      msg[k]!.push(v),
    );
  });
  const locked = [...new Set(routerIds)].sort((a, b) => a - b);
  const fresh = await db.query<{ router_id: number; seq: string; outcome: 'stored' | 'over' | 'late' }>(BATCH_SQL, [
    ...msg,
    ...row,
    locked,
    MAX_NEW_SESSIONS_PER_DAY,
  ]);
  const outcomes = (kind: string) =>
    new Set(fresh.filter((f) => f.outcome === kind).map((f) => `${f.router_id} ${f.seq}`));
  const [stored, over, late] = [outcomes('stored'), outcomes('over'), outcomes('late')];
  const out: Stored[] = [];
  for (const [i, m] of batch.entries()) {
    const key = `${routerIds[i]} ${m.seq}`;
    if (firstOf.get(key) !== i) out.push('duplicate');
    else if (over.has(key)) out.push('over');
    // Numbered at or below its router's spans_to: decided under the router's lock against its spans, one by one.
    else if (late.has(key)) out.push(await storeLateUsage(db, routerIds[i]!, m));
    else out.push(stored.has(key) ? 'stored' : 'duplicate');
  }
  return out;
}
