/**
 * The session state machine. Legal transitions:
 *   PENDING → ACTIVE                      (the purchase is on flash)
 *   ACTIVE  → EXPIRED                     (time-limit, data-limit)
 *   ACTIVE | PENDING → TERMINATED         (admin, disconnect, pc-logout, device-limit, portal-lost)
 * Anything else throws ERR_SESSION_STATE. Functions return a new object; the input is not touched.
 */
import { SluiceError } from '../errors.ts';
import { END_CAUSES, LIMIT_CAUSES, TERMINATE_CAUSES, copySession } from './model.ts';
import type { EndCause, LimitCause, Session, SessionState, TerminateCause } from './model.ts';

function illegal(session: Session, to: SessionState, detail = ''): SluiceError {
  return new SluiceError(
    'ERR_SESSION_STATE',
    `session ${session.id} cannot go from ${session.state} to ${to}${detail}`,
    {
      details: { id: session.id, from: session.state, to },
    },
  );
}

export function isLimitCause(cause: EndCause): cause is LimitCause {
  return (LIMIT_CAUSES as readonly string[]).includes(cause);
}

export function isEndCause(value: unknown): value is EndCause {
  return typeof value === 'string' && (END_CAUSES as readonly string[]).includes(value);
}

/** PENDING → ACTIVE. `startedAt` and `expiresAt` are fixed when the purchase is made, not here. */
export function activate(session: Session): Session {
  if (session.state !== 'PENDING') throw illegal(session, 'ACTIVE');
  const next = copySession(session);
  next.state = 'ACTIVE';
  return next;
}

function ended(session: Session, state: 'EXPIRED' | 'TERMINATED', cause: EndCause, now: number): Session {
  const next = copySession(session);
  next.state = state;
  next.endCause = cause;
  next.endedAt = now;
  return next;
}

/** ACTIVE → EXPIRED for a limit cause. */
export function expire(session: Session, cause: LimitCause, now: number): Session {
  if (!isLimitCause(cause)) throw illegal(session, 'EXPIRED', ` (cause ${String(cause)} is not a limit)`);
  if (session.state !== 'ACTIVE') throw illegal(session, 'EXPIRED');
  return ended(session, 'EXPIRED', cause, now);
}

/** ACTIVE | PENDING → TERMINATED for a non-limit cause. */
export function terminate(session: Session, cause: TerminateCause, now: number): Session {
  if (isLimitCause(cause as EndCause)) throw illegal(session, 'TERMINATED', ` (cause ${cause} is a limit)`);
  if (!(TERMINATE_CAUSES as readonly string[]).includes(cause))
    throw illegal(session, 'TERMINATED', ` (unknown cause ${String(cause)})`);
  if (session.state !== 'ACTIVE' && session.state !== 'PENDING') throw illegal(session, 'TERMINATED');
  return ended(session, 'TERMINATED', cause, now);
}

/** The one way to end: picks expire or terminate from the cause. A limit on a PENDING session is illegal. */
export function endSession(session: Session, cause: EndCause, now: number): Session {
  return isLimitCause(cause) ? expire(session, cause, now) : terminate(session, cause, now);
}
