/**
 * The values of roaming's commands and payments (docs/roaming.md), pure: a handover's payment reference, and the
 * checks of the fleet's command arguments (ubus gives numbers as decimal text).
 */
import { SluiceError } from '../errors.ts';
import type { Session } from '../sessions/index.ts';

/** Payment reference of a session a handover opened: `<venue>/<lease id>#<epoch>/<from router>`. */
const REFERENCE = /^([A-Za-z0-9._-]+)\/([A-Za-z0-9._-]+\/[0-9a-f]{16})#(\d+)\/([A-Za-z0-9._-]+)$/;

/** Where a session opened by a handover came from, from its payment (null: it was sold here). */
export function arrivalOf(session: Session): { venue: string; lease: string; epoch: number; from: string } | null {
  const p = session.payments[0];
  const m = p?.method === 'venue' ? REFERENCE.exec(p.reference) : null;
  return m === null ? null : { venue: m[1]!, lease: m[2]!, epoch: Number(m[3]), from: m[4]! };
}

/**
 * The venue session a session is a part of, as the fleet names its lease (`<router sold at>/<session id there>`): the
 * lease it arrived with, or this router's own sale. The same at every router the session moves through.
 */
export function venueSessionOf(routerId: string, session: Session): string {
  return arrivalOf(session)?.lease ?? `${routerId}/${session.id}`;
}

export const text = (v: unknown, name: string): string => {
  if (typeof v !== 'string' || v === '' || v.length > 200)
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a string`, { details: { argument: name } });
  return v;
};
export const count = (v: unknown, name: string): bigint => {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^(0|[1-9][0-9]{0,30})$/.test(s))
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a whole number`, { details: { argument: name } });
  return BigInt(s);
};
/** A positive whole number given as a number or decimal text (ubus args arrive as text), else null. */
export const optNumber = (v: unknown): number | null => {
  const n = typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : null;
};

/**
 * A release's reply: the session's final figures here (what the fleet moves on, capped to its lease), with the overlap
 * charges taken here (`charges`: their moves, which the fleet settles with this move and sends none of on;
 * `charge_amounts`: move → what each took in the session's metric).
 */
export function releaseFigures(
  s: Session,
  o: { venue: string; to: string; charged: readonly { move: number; taken: bigint | null }[]; now: number },
): Record<string, unknown> {
  const used = BigInt(Math.floor(s.used));
  const left = s.allotment > used ? s.allotment - used : 0n;
  return {
    venue: o.venue,
    to: o.to,
    session: s.id,
    metric: s.metric,
    allotment: s.allotment.toString(),
    used: used.toString(),
    remaining: left.toString(),
    bytes: String(s.bytes),
    expires_at: s.metric === 'bytes' ? s.expiresAt : null,
    rate_down: s.rates?.downBps ?? null,
    rate_up: s.rates?.upBps ?? null,
    devices: s.maxDevices ?? 1,
    user: s.user,
    plan: s.plan,
    at: s.endedAt ?? o.now,
    charges: o.charged.map((c) => c.move),
    charge_amounts: Object.fromEntries(o.charged.flatMap((c) => (c.taken === null ? [] : [[c.move, String(c.taken)]]))),
  };
}
