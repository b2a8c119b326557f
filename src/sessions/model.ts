/**
 * The session record sluice sells and enforces. Pure data plus helpers: no I/O, no clock (callers pass `now`).
 * Units: `allotment` and `used` are in the session's metric (bytes or seconds); times are ms since the epoch.
 */
import { randomBytes } from 'node:crypto';
export { normalizeMac } from '../mac.ts';
import type { Metric } from '../config/index.ts';

export type { Metric };
export type SessionState = 'PENDING' | 'ACTIVE' | 'EXPIRED' | 'TERMINATED';
export const SESSION_STATES: readonly SessionState[] = ['PENDING', 'ACTIVE', 'EXPIRED', 'TERMINATED'];
/** `time-limit` and `data-limit` make a session EXPIRED; every other cause makes it TERMINATED. */
export type LimitCause = 'time-limit' | 'data-limit';
/** `moved`: handed to another router of the venue (docs/roaming.md); what was left goes on there. */
export type TerminateCause = 'admin' | 'disconnect' | 'pc-logout' | 'device-limit' | 'portal-lost' | 'moved';
export type EndCause = LimitCause | TerminateCause;

export const LIMIT_CAUSES: readonly LimitCause[] = ['time-limit', 'data-limit'];
export const TERMINATE_CAUSES: readonly TerminateCause[] = [
  'admin',
  'disconnect',
  'pc-logout',
  'device-limit',
  'portal-lost',
  'moved',
];
export const END_CAUSES: readonly EndCause[] = [...LIMIT_CAUSES, ...TERMINATE_CAUSES];

/** One payment applied to a session (the purchase or a top-up). `amount` is in the asset's smallest unit. */
export interface PaymentRef {
  method: string;
  /** Unique per payment within its method (escrow session id, voucher serial, grant id). */
  reference: string;
  amount: bigint;
  asset: string;
  steps?: bigint;
  at: number;
}

/**
 * The portal counter reading that a checkpointed `used` already includes (opaque to sessions: the meter's token hash
 * and byte counters). After a crash the meter continues billing from it when the portal's epoch is unchanged, so the
 * bytes that passed while sluice was down are billed, not forgiven.
 */
export interface MeterMark {
  token: number;
  down: number;
  up: number;
}

export interface Session {
  /** 16 lowercase hex characters. */
  id: string;
  /** Lowercase, colon-separated. */
  mac: string;
  ip: string | null;
  user: string | null;
  plan: string | null;
  metric: Metric;
  /** Bytes or seconds bought so far (grows with top-ups). */
  allotment: bigint;
  /**
   * In the metric's unit: bytes metered for data sessions; for time sessions seconds elapsed, derived from the clock.
   * A plain number, like `bytes`: exact below 2^53 (9 PB, far past any session), and billing a tick adds to it in place
   * instead of allocating a bigint per client (at 100k clients those made the main thread's scavenges). Counters
   * saturate at MAX_COUNTER rather than lose exactness silently (see addCounter).
   */
  used: number;
  /** Bytes metered whatever the metric (upstream accounting wants octets for time sessions too). */
  bytes: number;
  createdAt: number;
  startedAt: number | null;
  /**
   * Time sessions: startedAt + allotment seconds (top-ups extend it). Data sessions: null, or a hard deadline that ends
   * the session as `time-limit` whatever is left (a RADIUS voucher with both a byte limit and a Session-Timeout).
   */
  expiresAt: number | null;
  endedAt: number | null;
  state: SessionState;
  endCause: EndCause | null;
  /**
   * The first payment (a voucher's, which upstream accounting looks up) and the most recent ones: at most
   * KEPT_PAYMENTS. A session topped up thousands of times used to carry (and journal, and reply with) every one.
   */
  payments: PaymentRef[];
  /** Totals over every payment, including those no longer in `payments`; absent = `payments` is all of them. */
  paymentCount?: number;
  paidTotal?: bigint;
  /** Set by usage checkpoints (see MeterMark); absent until the first one. */
  meterMark?: MeterMark;
  /**
   * Several devices per purchase (a plan's `devices`): how many devices may share this session's one allotment,
   * absent = 1 (the buyer's alone). `devices` are the MACs that joined besides `mac`, in join order; the meter bills
   * every device's bytes to this one session, the gate follows each.
   */
  maxDevices?: number;
  devices?: string[];
  /**
   * The speed tier in force for this session: its plan's at the sale, a RADIUS voucher's Accept's, or what a live
   * change (ubus `change`, CoA-Request) set since; journaled, so a restart re-limits its gate with them. Absent only
   * while a session journaled before rates were is being recovered: the manager gives it its plan's
   * (SessionManager.recover).
   */
  rates?: SessionRates;
}

/**
 * A session's speed tier in bits per second, each direction null when not limited that way (the shape of the portal's
 * ClientRates, which sessions does not import).
 */
export interface SessionRates {
  downBps: number | null;
  upBps: number | null;
}

export const UNLIMITED: Readonly<SessionRates> = Object.freeze({ downBps: null, upBps: null });

/**
 * Whether `r` is a SessionRates: each direction null or a positive whole number of bit/s (the range is the caller's).
 */
export function isSessionRates(r: unknown): r is SessionRates {
  if (typeof r !== 'object' || r === null) return false;
  const ok = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v > 0);
  const o = r as Record<string, unknown>;
  return ok(o['downBps']) && ok(o['upBps']);
}

/** The most devices one purchase may cover (a plan's `devices`). */
export const MAX_DEVICES = 16;

/** Every MAC this session pays for: the buyer's, then the joined ones. */
export function devicesOf(session: Pick<Session, 'mac' | 'devices'>): string[] {
  return session.devices === undefined ? [session.mac] : [session.mac, ...session.devices];
}

/**
 * The largest value a usage counter holds (2^53 - 1): beyond it a number is no longer exact, so counters stop there.
 */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** `counter + add`, saturating at MAX_COUNTER (both non-negative safe integers). */
export function addCounter(counter: number, add: number): number {
  const sum = counter + add;
  return sum <= MAX_COUNTER ? sum : MAX_COUNTER;
}

/** A counter from a stored decimal (the journal keeps bigints as strings): exact below 2^53, MAX_COUNTER above. */
export function counterFromBigint(v: bigint): number {
  return v <= BigInt(MAX_COUNTER) ? Number(v) : MAX_COUNTER;
}

/** How many payments a session keeps in `payments`: the first plus the last KEPT_PAYMENTS - 1. */
export const KEPT_PAYMENTS = 6;

/** Adds a top-up's payment: totals grow, the list keeps the first and the most recent ones. */
export function addPayment(session: Session, payment: PaymentRef): void {
  session.paymentCount = (session.paymentCount ?? session.payments.length) + 1;
  session.paidTotal = (session.paidTotal ?? session.payments.reduce((sum, p) => sum + p.amount, 0n)) + payment.amount;
  session.payments.push({ ...payment });
  if (session.payments.length > KEPT_PAYMENTS) session.payments.splice(1, session.payments.length - KEPT_PAYMENTS);
}

/** Every payment's count and sum, whether or not still listed. */
export function paymentTotals(session: Session): { count: number; paid: bigint } {
  return {
    count: session.paymentCount ?? session.payments.length,
    paid: session.paidTotal ?? session.payments.reduce((sum, p) => sum + p.amount, 0n),
  };
}

export function isLive(session: Pick<Session, 'state'>): boolean {
  return session.state === 'ACTIVE' || session.state === 'PENDING';
}

export function newSessionId(): string {
  return randomBytes(8).toString('hex');
}

/** Seconds of a time session consumed at `now` (never negative, never past the allotment). */
function elapsedSeconds(session: Session, now: number): number {
  if (session.startedAt === null) return 0;
  const until = session.endedAt ?? now;
  const seconds = Math.max(0, Math.floor((until - session.startedAt) / 1000));
  // A time allotment is at most MAX_ALLOTMENT_SECONDS (100 years), so Number() of it is exact.
  return seconds > session.allotment ? Number(session.allotment) : seconds;
}

/** `used` in the metric's unit at `now`: stored bytes for data sessions, clock-derived seconds for time sessions. */
export function usedAt(session: Session, now: number): number {
  return session.metric === 'seconds' ? elapsedSeconds(session, now) : session.used;
}

/** What is left at `now`, in the metric's unit; 0 once spent or ended. */
export function remaining(session: Session, now: number): bigint {
  if (session.state === 'EXPIRED' || session.state === 'TERMINATED') return 0n;
  if (session.metric === 'seconds') {
    if (session.expiresAt === null) return session.allotment;
    const ms = session.expiresAt - now;
    // Rounded up so a session shows "1 s left" rather than 0 while it is still open.
    return ms <= 0 ? 0n : BigInt(Math.ceil(ms / 1000));
  }
  // The allotment may be past 2^53 (MAX_ALLOTMENT_BYTES is 2^80): bigint arithmetic keeps what is left exact.
  if (session.used >= session.allotment) return 0n;
  const left = session.allotment - BigInt(session.used);
  return left > 0n ? left : 0n;
}

/**
 * remaining() as a number for the per-tick paths (the meter's cut prediction, usage reports): no bigint allocated.
 * Exact while the allotment is below 2^53; above, clamped to MAX_COUNTER (that much is never used up anyway).
 */
export function remainingNumber(session: Session, now: number): number {
  if (session.state === 'EXPIRED' || session.state === 'TERMINATED') return 0;
  if (session.metric === 'seconds') {
    if (session.expiresAt === null) return Number(session.allotment);
    const ms = session.expiresAt - now;
    return ms <= 0 ? 0 : Math.ceil(ms / 1000);
  }
  // Compared as numbers (a number/bigint comparison is a slow path): rounding only matters past 2^53, where `used`
  // (at most MAX_COUNTER) is below the rounded allotment anyway.
  const allotment = Number(session.allotment);
  if (session.used >= allotment) return 0;
  return allotment > MAX_COUNTER ? MAX_COUNTER : allotment - session.used;
}

/** Whether the session has consumed its allotment at `now` (and which limit). */
export function limitReached(session: Session, now: number): LimitCause | null {
  if (session.metric === 'seconds') return session.expiresAt !== null && session.expiresAt <= now ? 'time-limit' : null;
  if (session.used >= session.allotment) return 'data-limit';
  return session.expiresAt !== null && session.expiresAt <= now ? 'time-limit' : null;
}

export function copySession(session: Session): Session {
  const copy: Session = { ...session, payments: session.payments.map((p) => ({ ...p })) };
  if (session.devices) copy.devices = [...session.devices];
  if (session.meterMark) copy.meterMark = { ...session.meterMark };
  if (session.rates) copy.rates = { ...session.rates };
  return copy;
}

/** A copy with `used` brought up to `now` for time sessions: what callers outside the manager see. */
export function viewSession(session: Session, now: number): Session {
  const view = copySession(session);
  view.used = usedAt(session, now);
  return view;
}

/**
 * Keys under which a payment is remembered to refuse replays: the method's reference and the caller's idempotency key.
 */
export function paymentKeys(payment: Pick<PaymentRef, 'method' | 'reference'>, idempotencyKey?: string): string[] {
  const keys = [`ref:${payment.method}:${payment.reference}`];
  if (idempotencyKey !== undefined && idempotencyKey !== '') keys.push(`idem:${idempotencyKey}`);
  return keys;
}
