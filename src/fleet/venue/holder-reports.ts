/**
 * What a router says of its own sessions, as the lease service takes it (docs/roaming.md, "What the fleet trusts"): a
 * sale registers a lease (one live lease per device and venue), a report renews it and only lowers what is left, a
 * top-up raises it by what it added, an end ends it. Believed of the router's own sessions only (the holder's).
 */
import type { Sql } from '../db/index.ts';
import { ms, type Figures } from './leases.ts';

/** What became of a sale: its lease, or why none (the device's session is live at `holder` in the venue). */
export type Sale = { kind: 'registered' } | { kind: 'held-elsewhere'; holder: string };

/**
 * A session sold at `router` (not one a handover opened): its lease, held there, epoch 1, since `now` (when the fleet
 * heard of it: a router's clock orders nothing). Idempotent. Refused for a device whose venue session is live at
 * another router: one live lease per device and venue, so no sale can take over another's (decided under a lock of the
 * device's name in the venue). The seller's own older lease of the device ends: its new sale is its word about itself.
 */
export async function registerSale(
  db: { transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> },
  venue: string,
  router: string,
  sessionId: string,
  mac: string,
  f: Figures,
  now: number,
): Promise<Sale> {
  const id = `${router}/${sessionId}`;
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`venue-mac ${venue} ${mac}`]);
    const live = await tx.query<{ id: string; holder: string }>(
      `SELECT id, holder FROM venue_leases WHERE venue = $1 AND mac = $2 AND state <> 'ended' FOR UPDATE`,
      [venue, mac],
    );
    if (live.some((l) => l.id === id)) return { kind: 'registered' };
    const other = live.find((l) => l.holder !== router);
    if (other !== undefined) return { kind: 'held-elsewhere', holder: other.holder };
    if (live.length > 0)
      await tx.query(`UPDATE venue_leases SET state = 'ended', ended_at = $2 WHERE id = ANY($1::text[])`, [
        live.map((l) => l.id),
        ms(now),
      ]);
    await tx.query(
      `INSERT INTO venue_leases (id, venue, mac, state, holder, holder_session, epoch, since, metric, allotment, used,
         remaining, sold, bytes, expires_at, rate_down, rate_up, devices, user_name, plan, reported_at, renewed_at,
         holder_ttl_ms)
       VALUES ($1, $2, $3, 'held', $4, $5, 1, $6, $7, $8, $9, $10, $8, $11, $12, $13, $14, $15, $16, $17, $18, $6,
         (SELECT ttl_ms FROM venue_holders WHERE router = $4))
       ON CONFLICT (id) DO NOTHING`,
      [
        id,
        venue,
        mac,
        router,
        sessionId,
        ms(now),
        f.metric,
        f.allotment,
        f.used,
        f.remaining,
        f.bytes,
        ms(f.expiresAt),
        f.rateDown,
        f.rateUp,
        f.devices,
        f.user,
        f.plan,
        ms(Math.min(f.at, now)),
      ],
    );
    return { kind: 'registered' };
  });
}

/**
 * The holder's report of its session: newer figures, and the lease renewed. Older figures change nothing. What is left
 * only goes down (a top-up raises it: topUp()) and what was used only up: true when the report said otherwise (it
 * was capped).
 */
export async function report(
  db: Sql,
  router: string,
  sessionId: string,
  f: Pick<Figures, 'used' | 'remaining' | 'bytes' | 'at'>,
  now: number,
): Promise<boolean> {
  const rows = await db.query<{ capped: boolean }>(
    `UPDATE venue_leases SET used = greatest(used, $3), remaining = least(remaining, $4), bytes = $5, reported_at = $6,
       renewed_at = $7
     WHERE holder = $1 AND holder_session = $2 AND state IN ('held', 'releasing') AND reported_at <= $6
     RETURNING ($4::numeric > remaining OR $3::numeric < used) AS capped`,
    [router, sessionId, f.used, f.remaining, f.bytes, ms(f.at), ms(now)],
  );
  return rows[0]?.capped === true;
}

/**
 * The holder sold more of its session (a top-up: its session message with the new allotment): the lease's allotment,
 * what is left and what was sold grow by as much. A seller's word about its own sale, as the collector books its
 * payment.
 */
export async function topUp(db: Sql, router: string, sessionId: string, allotment: string): Promise<void> {
  await db.query(
    `UPDATE venue_leases SET remaining = remaining + ($3::numeric - allotment), sold = sold + ($3::numeric - allotment),
       allotment = $3::numeric
     WHERE holder = $1 AND holder_session = $2 AND state <> 'ended' AND $3::numeric > allotment`,
    [router, sessionId, allotment],
  );
}

/**
 * Anything heard from a router online renews the leases it holds, with the lease TTL its status declares (`ttlMs`:
 * how long its kernel passes their devices; null, none: the fleet's own).
 */
export async function renewHolder(db: Sql, router: string, now: number, ttlMs: number | null = null): Promise<void> {
  await db.query(
    `UPDATE venue_leases SET renewed_at = $2, holder_ttl_ms = $3 WHERE holder = $1 AND state IN ('held', 'releasing')`,
    [router, ms(now), ttlMs],
  );
  // Kept for the leases it is given before its next status; a status older than the one kept changes nothing.
  await db.query(
    `INSERT INTO venue_holders (router, ttl_ms, at) VALUES ($1, $3, $2)
     ON CONFLICT (router) DO UPDATE SET ttl_ms = EXCLUDED.ttl_ms, at = EXCLUDED.at
       WHERE venue_holders.at <= EXCLUDED.at`,
    [router, ms(now), ttlMs],
  );
}

/** The holder's session ended by itself (ran out, ended by an admin): the venue session is over. */
export async function ended(db: Sql, router: string, sessionId: string, at: number): Promise<void> {
  await db.query(
    `UPDATE venue_leases SET state = 'ended', ended_at = $3
     WHERE holder = $1 AND holder_session = $2 AND state IN ('held', 'releasing')`,
    [router, sessionId, ms(at)],
  );
}
