/**
 * A holder that was unreachable while its lease moved on (docs/roaming.md): once it is heard again, the session it may
 * still serve is revoked there, and what it served past the figures the lease moved with is booked as the overlap.
 */
import type { Sql } from '../db/index.ts';

/** A move away from `router` after its lease expired, whose session there is not yet revoked. */
export interface StaleHold {
  leaseId: string;
  epoch: number;
  session: string | null;
  mac: string;
  venue: string;
  holder: string;
}

/** What `router` may still serve although its lease moved on (it was unreachable): to revoke when it is heard. */
export async function staleHolds(db: Sql, router: string): Promise<StaleHold[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT m.lease_id, m.epoch, m.from_session, l.mac, l.venue, l.holder FROM venue_moves m
     JOIN venue_leases l ON l.id = m.lease_id
     WHERE m.from_router = $1 AND m.how = 'expired' AND m.revoked_at IS NULL`,
    [router],
  );
  return rows.map((r) => ({
    leaseId: String(r['lease_id']),
    epoch: Number(r['epoch']),
    session: (r['from_session'] as string | null) ?? null,
    mac: String(r['mac']),
    venue: String(r['venue']),
    holder: String(r['holder']),
  }));
}

/** What a revoke reply did: booked (once), answered before, or refused (`router` is not the holder revoked). */
export type Revoke =
  { kind: 'booked'; overlap: string; metric: string; capped: boolean } | { kind: 'repeat' } | { kind: 'not-sent' };

/**
 * The old holder stopped serving (`router`'s answer to a revoke of move `epoch`; `used`: its final figure, null when it
 * had nothing left to stop): what it served after the figures the lease moved with is the overlap, booked to the move
 * and the lease, once. Believed only from the router the move took the lease from, and only within what it could have
 * served: never more than was left there when it moved (a time session's, nor more than the seconds since the move).
 */
export async function revoked(
  db: Sql,
  { router, leaseId, epoch, used }: { router: string; leaseId: string; epoch: number; used: string | null },
): Promise<Revoke> {
  const [move] = await db.query<{ from_router: string; revoked: boolean }>(
    `SELECT from_router, revoked_at IS NOT NULL AS revoked FROM venue_moves
     WHERE lease_id = $1 AND epoch = $2 AND how = 'expired'`,
    [leaseId, epoch],
  );
  if (move === undefined || move.from_router !== router) return { kind: 'not-sent' };
  if (move.revoked) return { kind: 'repeat' };
  const rows = await db.query<{ overlap: string; metric: string; capped: boolean }>(
    `WITH m AS (
       UPDATE venue_moves SET revoked_at = now(), overlap = least(
         greatest(0, coalesce($3::numeric, used) - used), remaining,
         CASE WHEN metric = 'seconds' THEN ceil(extract(epoch FROM now() - at)) + 1 END)
       WHERE lease_id = $1 AND epoch = $2 AND from_router = $4 AND revoked_at IS NULL
       RETURNING overlap, metric, greatest(0, coalesce($3::numeric, used) - used) > overlap AS capped),
     l AS (UPDATE venue_leases SET overlap_bytes = overlap_bytes + m.overlap FROM m
       WHERE id = $1 AND m.metric = 'bytes')
     SELECT overlap::text, metric, capped FROM m`,
    [leaseId, epoch, used, router],
  );
  const row = rows[0];
  return row === undefined ? { kind: 'repeat' } : { kind: 'booked', ...row };
}
