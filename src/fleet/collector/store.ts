/**
 * Writes a checked message into the fleet database, exactly once: a usage or session message first takes its row in
 * `messages` (key: router, seq) with ON CONFLICT DO NOTHING, and only when that row is new do its effects (session
 * figures, payments, roll-ups) happen, in the same transaction. The caller acknowledges the message to the broker
 * only after this resolves, so a crash between the commit and the acknowledgement brings the message again, and its
 * row makes it a no-op.
 *
 * Several collectors may write one router's messages in any order (shared subscriptions): a session's figures are
 * those of its newest message (by seq); what only an older message carries (a `started`'s plan processed after a
 * usage report) fills what is still empty.
 */
import type { Db, Sql } from '../db/index.ts';
import { MAX_NEW_SESSIONS_PER_DAY } from './bounds.ts';
import type { Inbound, Payment, SessionBody, UsageRow } from './parse.ts';
import { SESSION_ROW_MERGE } from './session-merge.ts';
import { addRowSpan, inSpan, lockRouter } from './spans.ts';

/** 'over': refused, its new sessions beyond the router's MAX_NEW_SESSIONS_PER_DAY; nothing of it written. */
export type Stored = 'stored' | 'duplicate' | 'over';

/** Router name → id, made on first sight. */
export class RouterIds {
  private readonly ids = new Map<string, number>();

  async of(db: Sql, name: string): Promise<number> {
    const known = this.ids.get(name);
    if (known !== undefined) return known;
    const [row] = await db.query<{ id: number }>(
      'INSERT INTO routers (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id',
      [name],
    );
    const id = Number(row!.id);
    this.ids.set(name, id);
    return id;
  }
}

const AT = (p: string): string => `to_timestamp(${p}::double precision / 1000)`;

/** The database's UTC day, and the sessions a router's usage made new in it (bounds.ts MAX_NEW_SESSIONS_PER_DAY). */
export const TODAY = `(now() AT TIME ZONE 'UTC')::date`;
export const NEW_TODAY = `(CASE WHEN usage_sessions_day = ${TODAY} THEN usage_sessions ELSE 0 END)`;

/**
 * One statement (so one round trip, atomic on its own): the router's row locked, the ledger row, then, only when it
 * is new, the sessions' figures, the hour's roll-up and the router's last report. Every message of a router locks
 * the router's row first (the ledger row reads from `lock`, the rest waits for the ledger row): two of its messages
 * in flight at once (several connections, several collectors) take their locks in one order and wait for each other
 * instead of deadlocking over the sessions' rows they share.
 */
const USAGE_SQL = `
WITH lock AS (
  SELECT id, spans_to, ${NEW_TODAY} AS today FROM routers WHERE id = $1 FOR UPDATE
), fits AS (
  SELECT n, n = 0 OR (SELECT today FROM lock) + n <= $20 AS ok FROM (
    SELECT count(*)::int AS n FROM unnest($4::text[]) AS u(id)
    WHERE (SELECT true FROM sessions x WHERE x.router_id = $1 AND x.id = u.id) IS NULL
  ) f
), m AS (
  INSERT INTO messages (router_id, seq, kind, at, prev_session_seq)
  SELECT id, $2, 1, ${AT('$3')}, $18 FROM lock, fits WHERE fits.ok AND ($2::bigint > spans_to OR $19::boolean)
  ON CONFLICT DO NOTHING RETURNING seq
), s AS (
  INSERT INTO sessions AS s (router_id, id, mac, user_name, metric, state, used, bytes, allotment, remaining,
    up_bytes, down_bytes, seq, updated_at)
  SELECT $1, u.id, u.mac, u.user_name, u.metric, u.state, u.used, u.bytes, u.allotment, u.remaining, u.up, u.down,
    $2, ${AT('$3')}
  FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::numeric[], $10::numeric[],
    $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[]) AS u(id, mac, user_name, metric, state, used,
    bytes, allotment, remaining, up, down)
  WHERE EXISTS (SELECT 1 FROM m)
  ON CONFLICT (router_id, id) DO UPDATE SET
    ${SESSION_ROW_MERGE}
  RETURNING (xmax = 0) AS inserted
), h AS (
  INSERT INTO usage_hours AS h (router_id, hour, up_bytes, down_bytes, rows, reports)
  SELECT $1, date_trunc('hour', ${AT('$3')} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', $15::numeric, $16::numeric, $17, 1
  WHERE EXISTS (SELECT 1 FROM m)
  ON CONFLICT (router_id, hour) DO UPDATE SET up_bytes = h.up_bytes + EXCLUDED.up_bytes,
    down_bytes = h.down_bytes + EXCLUDED.down_bytes, rows = h.rows + EXCLUDED.rows, reports = h.reports + 1
  RETURNING 1
), r AS (
  UPDATE routers SET max_seq = greatest(max_seq, $2), last_message_at = now(),
    last_report_at = greatest(last_report_at, ${AT('$3')}),
    usage_sessions = ${NEW_TODAY} + (SELECT count(*) FROM s WHERE inserted), usage_sessions_day = ${TODAY}
  WHERE id = $1 AND (SELECT ok FROM fits) RETURNING 1
)
SELECT (SELECT count(*) FROM m)::int AS stored, (SELECT spans_to FROM lock)::text AS spans_to,
  NOT (SELECT ok FROM fits) AS over`;

/**
 * A usage report in one statement; one numbered at or below the router's spans_to is stored only with `late` (the
 * caller has found, under the router's lock, that no span holds it): otherwise it answers 'late'.
 */
async function usageStatement(
  db: Sql,
  routerId: number,
  m: Inbound & { kind: 'usage' },
  late: boolean,
): Promise<Stored | 'late'> {
  const col = <K extends keyof UsageRow>(k: K) => m.rows.map((r) => r[k]);
  let up = 0n;
  let down = 0n;
  for (const r of m.rows) {
    up += BigInt(r.up);
    down += BigInt(r.down);
  }
  const [row] = await db.query<{ stored: number; spans_to: string | null; over: boolean }>(USAGE_SQL, [
    routerId,
    m.seq,
    m.at,
    col('id'),
    col('mac'),
    col('user'),
    col('metric'),
    col('state'),
    col('used'),
    col('bytes'),
    col('allotment'),
    col('remaining'),
    col('up'),
    col('down'),
    up.toString(),
    down.toString(),
    m.rows.length,
    m.prevSessionSeq,
    late,
    MAX_NEW_SESSIONS_PER_DAY,
  ]);
  if (Number(row?.stored) === 1) return 'stored';
  if (row?.over) return 'over';
  return !late && BigInt(m.seq) <= BigInt(row?.spans_to ?? '0') ? 'late' : 'duplicate';
}

/**
 * A usage report numbered at or below its router's spans_to: a replay of a message its spans hold (a duplicate,
 * whether or not its row was pruned), or a hole filled late, stored and made a span of its own at once. In a
 * transaction that locks the router's row first, so what it reads of the spans is what every compaction committed.
 */
export async function storeLateUsage(db: Db, routerId: number, m: Inbound & { kind: 'usage' }): Promise<Stored> {
  return db.transaction(async (tx) => {
    const spansTo = await lockRouter(tx, routerId);
    if (BigInt(m.seq) > spansTo) return (await usageStatement(tx, routerId, m, false)) as Stored;
    if (await inSpan(tx, routerId, m.seq)) return 'duplicate';
    const out = await usageStatement(tx, routerId, m, true);
    if (out === 'stored') await addRowSpan(tx, routerId, m.seq);
    return out === 'late' ? 'duplicate' : out;
  });
}

async function storeUsage(db: Db, routerId: number, m: Inbound & { kind: 'usage' }): Promise<Stored> {
  const out = await usageStatement(db, routerId, m, false);
  return out === 'late' ? storeLateUsage(db, routerId, m) : out;
}

const SESSION_UPSERT = `
INSERT INTO sessions AS s (router_id, id, mac, ip, user_name, plan, metric, state, cause, allotment, used, bytes,
  remaining, started_at, expires_at, ended_at, rate_down, rate_up, seq, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, ${AT('$14')}, ${AT('$15')}, ${AT('$16')}, $17, $18,
  $19, ${AT('$20')})
ON CONFLICT (router_id, id) DO UPDATE SET
  ip = CASE WHEN EXCLUDED.seq > s.seq THEN coalesce(EXCLUDED.ip, s.ip) ELSE coalesce(s.ip, EXCLUDED.ip) END,
  plan = coalesce(s.plan, EXCLUDED.plan),
  user_name = coalesce(s.user_name, EXCLUDED.user_name),
  started_at = coalesce(s.started_at, EXCLUDED.started_at),
  mac = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.mac ELSE s.mac END,
  state = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.state ELSE s.state END,
  cause = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.cause ELSE coalesce(s.cause, EXCLUDED.cause) END,
  allotment = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.allotment ELSE s.allotment END,
  used = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.used ELSE s.used END,
  bytes = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.bytes ELSE s.bytes END,
  remaining = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.remaining ELSE s.remaining END,
  expires_at = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.expires_at ELSE s.expires_at END,
  ended_at = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.ended_at ELSE coalesce(s.ended_at, EXCLUDED.ended_at) END,
  rate_down = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.rate_down ELSE s.rate_down END,
  rate_up = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.rate_up ELSE s.rate_up END,
  updated_at = CASE WHEN EXCLUDED.seq > s.seq THEN EXCLUDED.updated_at ELSE s.updated_at END,
  seq = greatest(s.seq, EXCLUDED.seq)`;

async function upsertSession(tx: Sql, routerId: number, seq: number, at: number, s: SessionBody): Promise<void> {
  await tx.query(SESSION_UPSERT, [
    routerId,
    s.id,
    s.mac,
    s.ip,
    s.user,
    s.plan,
    s.metric,
    s.state,
    s.cause,
    s.allotment,
    s.used,
    s.bytes,
    s.remaining,
    s.startedAt,
    s.expiresAt,
    s.endedAt,
    s.rateDown,
    s.rateUp,
    seq,
    at,
  ]);
}

async function insertPayment(
  tx: Sql,
  routerId: number,
  seq: number,
  event: string,
  sessionId: string,
  p: Payment,
): Promise<void> {
  // Announced again after a router's restart (a new seq, the same payment): stored and counted once.
  const fresh = await tx.query(
    `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, ${AT('$9')})
     ON CONFLICT (router_id, session_id, method, reference) DO NOTHING RETURNING seq`,
    [routerId, seq, sessionId, event, p.method, p.reference, p.amount, p.asset, p.at],
  );
  if (fresh.length === 0) return;
  await tx.query(
    `INSERT INTO revenue_days AS d (router_id, day, method, asset, amount, payments)
     VALUES ($1, (${AT('$2')} AT TIME ZONE 'UTC')::date, $3, $4, $5::numeric, 1)
     ON CONFLICT (router_id, day, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
       payments = d.payments + 1`,
    [routerId, p.at, p.method, p.asset, p.amount],
  );
}

/**
 * A session message's writes in `tx`, which holds its router's row lock (taken first, as every message of the router
 * does: USAGE_SQL; no deadlock over its sessions' rows) and read `spansTo` from it (only a compaction, under the same
 * lock, moves it). At or below spansTo, a message its spans hold is a duplicate even once its row is pruned.
 */
export async function sessionIn(
  tx: Sql,
  routerId: number,
  m: Inbound & { kind: 'session' },
  spansTo: bigint,
): Promise<Stored> {
  const late = BigInt(m.seq) <= spansTo;
  if (late && (await inSpan(tx, routerId, m.seq))) return 'duplicate';
  const fresh = await tx.query(
    `INSERT INTO messages (router_id, seq, kind, at, prev_session_seq) VALUES ($1, $2, 2, ${AT('$3')}, $4)
     ON CONFLICT DO NOTHING RETURNING seq`,
    [routerId, m.seq, m.at, m.prevSessionSeq],
  );
  if (fresh.length === 0) return 'duplicate';
  if (late) await addRowSpan(tx, routerId, m.seq);
  if (m.session) await upsertSession(tx, routerId, m.seq, m.at, m.session);
  if (m.payment && m.session) await insertPayment(tx, routerId, m.seq, m.event, m.session.id, m.payment);
  if (m.escrow) {
    const e = m.escrow;
    await tx.query(
      `INSERT INTO escrow_closes (router_id, seq, session_id, escrow_session_id, units, transaction, seller_amount,
         buyer_refund, at)
       VALUES ($1, $2, $3, $4, $5::numeric, $6, $7::numeric, $8::numeric, ${AT('$9')})`,
      [
        routerId,
        m.seq,
        m.session?.id ?? null,
        e.sessionId,
        e.units,
        e.transaction,
        e.sellerAmount,
        e.buyerRefund,
        m.at,
      ],
    );
  }
  await tx.query(
    `UPDATE routers SET max_seq = greatest(max_seq, $2), last_message_at = now(),
       last_report_at = greatest(last_report_at, ${AT('$3')}) WHERE id = $1`,
    [routerId, m.seq, m.at],
  );
  return 'stored';
}

async function storeSession(db: Db, routerId: number, m: Inbound & { kind: 'session' }): Promise<Stored> {
  return db.transaction(async (tx) => sessionIn(tx, routerId, m, await lockRouter(tx, routerId)));
}

/**
 * A status: the router's row takes it, in the order statuses arrive (every collector subscribes to every router's
 * status, unshared, so each applies the same sequence and the last write is the newest status); a change of `online`
 * is a row of status_changes. `retained`: delivered because the collector subscribed, not because the router spoke
 * now, so "last heard" is the status's own time, not now.
 */
export async function statusIn(tx: Sql, routerId: number, m: Inbound & { kind: 'status' }, retained: boolean) {
  const [prev] = await tx.query<{ online: boolean | null }>('SELECT online FROM routers WHERE id = $1 FOR UPDATE', [
    routerId,
  ]);
  await tx.query(
    `UPDATE routers SET online = $2, status_reason = $3, status_at = ${AT('$4')}, status_seq = $5,
       version = coalesce($6, version), uptime_s = coalesce($7, uptime_s), counters = coalesce($8, counters),
       pricing = coalesce($9, pricing), queue = coalesce($10, queue), health = coalesce($11, health),
       last_message_at = CASE WHEN $12 THEN greatest(last_message_at, ${AT('$4')}) ELSE now() END
     WHERE id = $1`,
    [
      routerId,
      m.online,
      m.reason,
      m.at,
      m.seq,
      m.version,
      m.uptimeS,
      m.counters,
      m.pricing,
      m.queue,
      m.health,
      retained,
    ],
  );
  if (prev?.online !== m.online)
    await tx.query(`INSERT INTO status_changes (router_id, at, online, reason) VALUES ($1, ${AT('$2')}, $3, $4)`, [
      routerId,
      m.at,
      m.online,
      m.reason,
    ]);
}

async function storeStatus(db: Db, routerId: number, m: Inbound & { kind: 'status' }, retained: boolean) {
  await db.transaction((tx) => statusIn(tx, routerId, m, retained));
}

/** Stores one checked message; status messages have no series and answer 'stored'. */
export async function storeMessage(
  db: Db,
  ids: RouterIds,
  m: Inbound,
  options: { retained?: boolean } = {},
): Promise<Stored> {
  const routerId = await ids.of(db, m.router);
  if (m.kind === 'usage') return storeUsage(db, routerId, m);
  if (m.kind === 'session') return storeSession(db, routerId, m);
  await storeStatus(db, routerId, m, options.retained ?? false);
  return 'stored';
}

/** How long a refused message's digest is kept (a collector's broker session lasts 7 days by default). */
export const REJECT_DIGEST_DAYS = 8;

/**
 * Counts a refused message under its topic and reason, once: `digest` (of its topic and payload) is taken first, and
 * a message whose digest is there already (another collector's copy, the broker's redelivery) counts nothing.
 */
export async function storeReject(
  db: Sql,
  topic: string,
  reason: string,
  router: string | null,
  seq: number | null,
  sample: string,
  digest: Buffer,
): Promise<void> {
  await db.query(
    `WITH fresh AS (
       INSERT INTO reject_digests (digest) VALUES ($6) ON CONFLICT DO NOTHING RETURNING 1
     )
     INSERT INTO rejects AS j (topic, reason, router, count, first_at, last_at, last_seq, sample)
     SELECT $1, $2, $3, 1, now(), now(), $4, $5 WHERE EXISTS (SELECT 1 FROM fresh)
     ON CONFLICT (topic, reason) DO UPDATE SET count = j.count + 1, last_at = now(),
       last_seq = coalesce(EXCLUDED.last_seq, j.last_seq), sample = EXCLUDED.sample`,
    [topic.slice(0, 512), reason.slice(0, 200), router, seq, sample, digest],
  );
}

/** Forgets the digests of refused messages older than REJECT_DIGEST_DAYS. */
export async function pruneRejectDigests(db: Sql): Promise<number> {
  const rows = await db.query(`DELETE FROM reject_digests WHERE at < now() - $1::int * interval '1 day' RETURNING 1`, [
    REJECT_DIGEST_DAYS,
  ]);
  return rows.length;
}
