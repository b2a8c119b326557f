/**
 * New limits for a live session, computed apart from the state they apply to: a RADIUS CoA's totals (setLimits), and
 * the deadline a time session gets when its gate opens (startClock). The SessionManager writes and applies them.
 */
import { SluiceError } from '../errors.ts';
import { MAX_ALLOTMENT_BYTES, MAX_ALLOTMENT_SECONDS } from './grant.ts';
import { remaining, type Session } from './model.ts';

export interface LimitsChange {
  seconds?: bigint;
  bytes?: bigint;
}

/**
 * The allotment and deadline after `change`, totals from the session's start: `seconds` is a time session's allotment
 * (its deadline moves with it) or a data session's hard deadline; `bytes` is a data session's allotment (a time
 * session has none: ERR_SESSION_METRIC_MISMATCH).
 */
export function limitsAfter(session: Session, change: LimitsChange): { allotment: bigint; expiresAt: number | null } {
  if (change.bytes !== undefined && session.metric !== 'bytes') {
    throw new SluiceError(
      'ERR_SESSION_METRIC_MISMATCH',
      `session ${session.id} is a time session: it has no byte limit to set`,
    );
  }
  const check = (v: bigint | undefined, max: bigint, what: string): void => {
    if (v !== undefined && (v < 0n || v > max))
      throw new SluiceError('ERR_INVALID_AMOUNT', `${what} must be between 0 and ${max}`);
  };
  check(change.seconds, MAX_ALLOTMENT_SECONDS, 'seconds');
  check(change.bytes, MAX_ALLOTMENT_BYTES, 'bytes');
  const start = session.startedAt ?? session.createdAt;
  let allotment = session.allotment;
  let expiresAt = session.expiresAt;
  if (change.seconds !== undefined) {
    expiresAt = start + Number(change.seconds) * 1000;
    if (session.metric === 'seconds') allotment = change.seconds;
  }
  if (change.bytes !== undefined) allotment = change.bytes;
  return { allotment, expiresAt };
}

/**
 * A time session's deadline once its gate opened at `at`: moved by the time the gate took, rounded up to a whole
 * second (so `expires_at` is the real end, never before it). Null when there is nothing to move: the gate opened at
 * the sale, or the session is a recovered one whose clock was already moved.
 */
export function deadlineFromOpening(session: Session, at: number): number | null {
  const { startedAt, expiresAt } = session;
  if (startedAt === null || expiresAt === null) return null;
  // A recovered session whose clock was already moved keeps it: its start is no longer the purchase (the record
  // carries it since it is journaled), or, from a journal written before that, its deadline is past start + allotment.
  if (startedAt !== session.createdAt || expiresAt !== startedAt + Number(session.allotment) * 1000 || at <= startedAt)
    return null;
  return Math.ceil((expiresAt + (at - startedAt)) / 1000) * 1000;
}

/**
 * The allotment and deadline after `amount` (the session's metric) is taken off what is left at `now`: never more than
 * is left (`taken` says how much). A time session's deadline comes forward by the seconds taken.
 */
export function limitsAfterCharge(
  session: Session,
  amount: bigint,
  now: number,
): { allotment: bigint; expiresAt: number | null; taken: bigint } {
  const left = remaining(session, now);
  const taken = amount < left ? amount : left;
  const expiresAt =
    session.metric === 'seconds' && session.expiresAt !== null
      ? session.expiresAt - Number(taken) * 1000
      : session.expiresAt;
  return { allotment: session.allotment - taken, expiresAt, taken };
}
