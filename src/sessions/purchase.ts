/**
 * The rules of a purchase, apart from the state they are checked against: the replay keys a draft claims, the bounds
 * of a top-up, which of a user's devices make room under max_devices_per_user, the new session's first state, and a
 * top-up's change to a session with what undoes it if its record is not written. The SessionManager decides with
 * these and applies them; nothing here writes the store or tells anyone.
 */
import { SluiceError } from '../errors.ts';
import { MAX_ALLOTMENT_BYTES, MAX_ALLOTMENT_SECONDS } from './grant.ts';
import type { GrantClient, GrantDraft, ValidGrant } from './grant.ts';
import { addPayment, paymentKeys, UNLIMITED } from './model.ts';
import type { Metric, Session, SessionRates } from './model.ts';

/** The keys a purchase claims before its payment: its payment reference, if known, and its idempotency key. */
export function draftKeys(draft: GrantDraft, client: GrantClient): string[] {
  const keys: string[] = [];
  if (draft.payment) keys.push(...paymentKeys(draft.payment));
  if (client.idempotencyKey !== undefined) keys.push(`idem:${client.idempotencyKey}`);
  return keys;
}

/** A draft's allotment, when it names one, is what a grant may carry (validateGrant checks it again). */
export function assertDraftAllotment(draft: GrantDraft): void {
  if (draft.allotment === undefined) return;
  const max = draft.metric === 'bytes' ? MAX_ALLOTMENT_BYTES : MAX_ALLOTMENT_SECONDS;
  if (draft.allotment <= 0n || draft.allotment > max)
    throw new SluiceError('ERR_INVALID_AMOUNT', `allotment must be a positive number up to ${max}`);
}

export function replayed(key: string): SluiceError {
  return new SluiceError('ERR_PAYMENT_REPLAYED', `payment already applied (${key.replace(/^(ref|idem):/, '')})`, {
    details: { key },
  });
}

/** A top-up buys more of the session's own metric, and never past the largest allotment. */
export function assertTopUpFits(existing: Session, metric: Metric, add: bigint, mac: string): void {
  if (existing.metric !== metric) {
    throw new SluiceError(
      'ERR_SESSION_METRIC_MISMATCH',
      `${mac} has an active ${existing.metric === 'seconds' ? 'time' : 'data'} session; cannot top it up ` +
        `with ${metric}`,
      { details: { id: existing.id, metric: existing.metric, requested: metric } },
    );
  }
  const max = existing.metric === 'seconds' ? MAX_ALLOTMENT_SECONDS : MAX_ALLOTMENT_BYTES;
  if (existing.allotment + add > max) {
    throw new SluiceError(
      'ERR_INVALID_AMOUNT',
      `top-up would take the session past the largest allotment (${max} ${existing.metric})`,
    );
  }
}

/** The user's sessions on other devices to end so that a new one fits under `maxDevices` (0: no limit): the oldest. */
export function devicesToEnd(others: Iterable<Session>, maxDevices: number): Session[] {
  if (maxDevices <= 0) return [];
  const oldestFirst = [...others].sort((a, b) => a.createdAt - b.createdAt);
  return oldestFirst.slice(0, Math.max(0, oldestFirst.length - maxDevices + 1));
}

/**
 * A new session as it is installed while its purchase is written: PENDING, its time clock running from the sale, its
 * speed tier the grant's own or else `planRates` (the plan's at the sale; none: not limited).
 */
export function newSession(g: ValidGrant, id: string, now: number, planRates: SessionRates | null = null): Session {
  const rates = g.rates ?? planRates ?? UNLIMITED;
  return {
    id,
    mac: g.mac,
    ip: g.ip,
    user: g.user,
    plan: g.plan,
    metric: g.metric,
    allotment: g.allotment,
    used: 0,
    bytes: 0,
    createdAt: now,
    startedAt: now,
    expiresAt: g.metric === 'seconds' ? now + Number(g.allotment) * 1000 : g.deadline,
    endedAt: null,
    state: 'PENDING',
    endCause: null,
    payments: [{ ...g.payment }],
    ...(g.maxDevices > 1 && { maxDevices: g.maxDevices, devices: [] }),
    rates: { downBps: rates.downBps, upBps: rates.upBps },
  };
}

/** A session's payment bookkeeping before a top-up, to put back if the top-up's record is not written. */
export interface PaymentsBefore {
  list: Session['payments'];
  count: number | undefined;
  paid: bigint | undefined;
}

/** Adds a top-up to a live session: its allotment, a time session's deadline, its payment. */
export function addTopUp(session: Session, g: ValidGrant): PaymentsBefore {
  session.allotment += g.allotment;
  // A data session's deadline (a voucher's Session-Timeout) stays where it is: bytes do not buy time.
  if (session.expiresAt !== null && session.metric === 'seconds') session.expiresAt += Number(g.allotment) * 1000;
  const before = { list: session.payments.slice(), count: session.paymentCount, paid: session.paidTotal };
  addPayment(session, g.payment);
  return before;
}

/** Takes a top-up back from `current`, the session's object now: its allotment and deadline, and its payments if it is
 *  still the object the top-up went to. */
export function undoTopUp(current: Session, toppedUp: Session, g: ValidGrant, before: PaymentsBefore): void {
  current.allotment -= g.allotment;
  if (current.expiresAt !== null && current.metric === 'seconds') current.expiresAt -= Number(g.allotment) * 1000;
  if (current !== toppedUp) return;
  current.payments = before.list;
  if (before.count === undefined) delete current.paymentCount;
  else current.paymentCount = before.count;
  if (before.paid === undefined) delete current.paidTotal;
  else current.paidTotal = before.paid;
}
