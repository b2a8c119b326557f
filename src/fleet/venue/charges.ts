/**
 * The overlap charges (docs/roaming.md): what a holder served after its lease moved on (it was unreachable; booked by
 * revoked()) is taken off the session where the lease is now, in the lease's metric (bytes or seconds). A charge is
 * resent until that router answers, never abandoned: it is addressed to the holder at one epoch, and only the answer
 * of that holder (to the charge, or the `charges` its handover reply lists) settles it or sends it on to the next one,
 * so one overlap is taken once however the messages and the lease move. The router journals a charge under its key
 * (the lease and the move) before it answers, and takes nothing for a repeat.
 */
import type { Sql } from '../db/index.ts';

/** A booked overlap not yet confirmed taken, with where its lease is now. */
export interface PendingCharge {
  leaseId: string;
  /** The epoch of the move whose overlap it is. */
  move: number;
  overlap: string;
  metric: string;
  /** The lease epoch it was sent to (null: not yet sent, or sent on after that holder gave the session up). */
  chargeEpoch: number | null;
  state: string;
  holder: string;
  holderSession: string | null;
  epoch: number;
  mac: string;
  venue: string;
}

/** The charges booked and not yet settled (of one lease, or all). */
export async function pendingCharges(db: Sql, leaseId?: string): Promise<PendingCharge[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT m.lease_id, m.epoch AS move, m.overlap::text AS overlap, m.metric, m.charge_epoch, l.state, l.holder,
       l.holder_session, l.epoch, l.mac, l.venue
     FROM venue_moves m JOIN venue_leases l ON l.id = m.lease_id
     WHERE m.revoked_at IS NOT NULL AND m.overlap > 0 AND m.charged_at IS NULL AND ($1::text IS NULL OR m.lease_id = $1)
     ORDER BY m.lease_id, m.epoch`,
    [leaseId ?? null],
  );
  return rows.map((r) => ({
    leaseId: String(r['lease_id']),
    move: Number(r['move']),
    overlap: String(r['overlap']),
    metric: String(r['metric']),
    chargeEpoch: r['charge_epoch'] === null ? null : Number(r['charge_epoch']),
    state: String(r['state']),
    holder: String(r['holder']),
    holderSession: (r['holder_session'] as string | null) ?? null,
    epoch: Number(r['epoch']),
    mac: String(r['mac']),
    venue: String(r['venue']),
  }));
}

/**
 * Where a pending charge is sent now: the lease's holder, once its session is open there (or ended there: it answers
 * that nothing was left to take). Null: wait — the lease is between two routers, or it moved on since the charge was
 * sent and the router it was sent to has not yet said (in its handover reply) whether it took it.
 */
export function chargeTarget(p: PendingCharge): { holder: string; session: string; epoch: number } | null {
  if (p.chargeEpoch !== null && p.chargeEpoch !== p.epoch) return null;
  if (p.holderSession === null || (p.state !== 'held' && p.state !== 'ended')) return null;
  return { holder: p.holder, session: p.holderSession, epoch: p.epoch };
}

/** The charge is sent to the holder at `epoch` (kept until that holder answers). */
export async function addressed(db: Sql, leaseId: string, move: number, epoch: number): Promise<void> {
  await db.query(
    `UPDATE venue_moves SET charge_epoch = $3 WHERE lease_id = $1 AND epoch = $2 AND charge_epoch IS NULL`,
    [leaseId, move, epoch],
  );
}

export interface SettledBy {
  router: string;
  leaseId: string;
  move: number;
  epoch: number;
  charged: string | null;
}

/**
 * `router` answered the charge of `move` sent to the lease's holder at `epoch`: taken (`charged`: how much; null when
 * it had taken it before). Believed only from the router that held the lease at `epoch` (the move that gave it to it)
 * while the charge is still addressed there. A charge resent before its answer came is answered twice, how much and
 * "before", in either order: the figure is kept whichever comes first. False: `router` was not asked.
 */
export async function settled(db: Sql, { router, leaseId, move, epoch, charged }: SettledBy): Promise<boolean> {
  const [to] = await db.query<{ addressed: boolean }>(
    `SELECT m.charge_epoch = $3 AS addressed FROM venue_moves m JOIN venue_moves h ON h.lease_id = m.lease_id
     WHERE m.lease_id = $1 AND m.epoch = $2 AND h.epoch = $3 AND h.to_router = $4`,
    [leaseId, move, epoch, router],
  );
  if (to === undefined) return false;
  if (!to.addressed) return true;
  await db.query(
    `UPDATE venue_moves SET charged_at = COALESCE(charged_at, now()), charged = COALESCE(charged, $3::numeric)
     WHERE lease_id = $1 AND epoch = $2 AND charge_epoch = $4
       AND (charged_at IS NULL OR (charged IS NULL AND $3::numeric IS NOT NULL))`,
    [leaseId, move, charged, epoch],
  );
  return true;
}

/** A move a handover reply lists as charged there, and what it took (null: a router that does not say). */
export interface ListedCharge {
  move: number;
  amount: string | null;
}

/**
 * The holder at `epoch` gave the session up (its reply to a release or a revoke), listing the moves whose charge it
 * took: those are settled, with what each took where the reply says it; the others sent to it go to the lease's next
 * holder.
 */
export async function handedOver(
  db: Sql,
  leaseId: string,
  epoch: number,
  listed: readonly ListedCharge[],
): Promise<void> {
  await db.query(
    `UPDATE venue_moves m SET charged_at = COALESCE(m.charged_at, now()), charged = COALESCE(m.charged, c.amount)
     FROM unnest($3::int[], $4::numeric[]) AS c(move, amount)
     WHERE m.lease_id = $1 AND m.charge_epoch = $2 AND m.epoch = c.move
       AND (m.charged_at IS NULL OR (m.charged IS NULL AND c.amount IS NOT NULL))`,
    [leaseId, epoch, listed.map((c) => c.move), listed.map((c) => c.amount)],
  );
  await db.query(
    `UPDATE venue_moves SET charge_epoch = NULL WHERE lease_id = $1 AND charge_epoch = $2 AND charged_at IS NULL`,
    [leaseId, epoch],
  );
}

/**
 * Sends every charge booked and not yet settled (of one lease, or all) to where its lease is now, through `send`
 * (`venue_charge`'s arguments): after a revoke, after an open, and every sweep of the service until answered (a lost
 * command or reply, the broker or a router down, the fleet restarted).
 */
export async function sendCharges(
  db: Sql,
  leaseId: string | undefined,
  send: (router: string, args: Record<string, unknown>) => void,
): Promise<void> {
  for (const p of await pendingCharges(db, leaseId)) {
    const to = chargeTarget(p);
    if (to === null) continue;
    await addressed(db, p.leaseId, p.move, to.epoch);
    send(to.holder, {
      mac: p.mac,
      venue: p.venue,
      lease: p.leaseId,
      epoch: to.epoch,
      move: p.move,
      session: to.session,
      metric: p.metric,
      amount: p.overlap,
      // What a router of an older release reads.
      ...(p.metric === 'bytes' && { bytes: p.overlap }),
    });
  }
}

/**
 * The moves a handover reply lists as charged (`charges`: whole numbers), else none, each with what it took from
 * `charge_amounts` (move → whole amount); a router of an older release sends none: null, settled without a figure.
 */
export function listedCharges(result: Record<string, unknown> | null): ListedCharge[] {
  const v = result?.['charges'];
  const moves = Array.isArray(v) ? v.filter((n): n is number => typeof n === 'number' && Number.isSafeInteger(n)) : [];
  const a = result?.['charge_amounts'];
  const amounts = typeof a === 'object' && a !== null && !Array.isArray(a) ? (a as Record<string, unknown>) : {};
  return moves.map((move) => {
    const amount = amounts[String(move)];
    return { move, amount: typeof amount === 'string' && /^\d+$/.test(amount) ? amount : null };
  });
}
