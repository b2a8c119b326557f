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

/**
 * The old holder stopped serving (its answer to a revoke; `used`: its final figure, null when it had nothing left to
 * stop): what it served after the figures the lease moved with is the overlap, booked to the move and the lease.
 */
export async function revoked(
  db: Sql,
  leaseId: string,
  epoch: number,
  used: string | null,
): Promise<{ overlap: string; metric: string } | null> {
  const rows = await db.query<{ overlap: string; metric: string }>(
    `WITH m AS (
       UPDATE venue_moves SET revoked_at = now(), overlap = greatest(0, coalesce($3::numeric, used) - used)
       WHERE lease_id = $1 AND epoch = $2 AND revoked_at IS NULL RETURNING overlap, metric),
     l AS (UPDATE venue_leases SET overlap_bytes = overlap_bytes + m.overlap FROM m
       WHERE id = $1 AND m.metric = 'bytes')
     SELECT overlap::text, metric FROM m`,
    [leaseId, epoch, used],
  );
  return rows[0] ?? null;
}
