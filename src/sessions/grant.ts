/**
 * A Grant is what the merchant hands the session manager once a payment is authorized: who, which metric, how much
 * (a GrantDraft is what is known of it before the payment). Validated here as the last gate before anything is sold,
 * whatever the caller checked before.
 */
import { isIP } from 'node:net';
import { SluiceError } from '../errors.ts';
import { assertClientMac } from '../mac.ts';
import { isSessionRates, MAX_DEVICES, normalizeMac } from './model.ts';
import type { Metric, PaymentRef, SessionRates } from './model.ts';

export interface Grant {
  mac: string;
  ip?: string | null;
  user?: string | null;
  plan?: string | null;
  metric: Metric;
  /** Bytes or seconds. */
  allotment: bigint;
  payment: PaymentRef;
  /** The caller's retry key: a second purchase with the same key is refused (ERR_PAYMENT_REPLAYED). */
  idempotencyKey?: string;
  /** Data sessions only: a hard deadline (ms since the epoch) at which the session ends as `time-limit`. */
  expiresAt?: number | null;
  /** How many devices may share the allotment (the plan's `devices`); absent = 1. */
  devices?: number;
  /** The session's own speed tier (a RADIUS voucher's Accept); absent or null: its plan's, if any. */
  rates?: SessionRates | null;
  /**
   * Only adds to the MAC's live session (ubus `extend`): with none, or a spent one, it is refused
   * (ERR_SESSION_NOT_FOUND) instead of starting a session, so an extension can never become free access.
   */
  liveOnly?: boolean;
}

export interface ValidGrant {
  mac: string;
  ip: string | null;
  user: string | null;
  plan: string | null;
  metric: Metric;
  allotment: bigint;
  payment: PaymentRef;
  idempotencyKey?: string;
  /** Data sessions: the hard deadline, or null. */
  deadline: number | null;
  /** 1 … MAX_DEVICES. */
  maxDevices: number;
  /** The grant's own rates; null: the plan's (the manager looks them up). */
  rates: SessionRates | null;
}

/** What is known of a purchase before its payment: who, and (unless the payment method decides) what it buys. */
export interface GrantDraft extends Pick<Grant, 'mac' | 'ip' | 'user' | 'plan' | 'idempotencyKey'> {
  metric?: Metric;
  allotment?: bigint;
  /** The payment's reference, when known before it is collected. */
  payment?: Pick<PaymentRef, 'method' | 'reference'>;
}

/** 100 years: keeps `expiresAt` (ms) far inside Number.MAX_SAFE_INTEGER, even after many top-ups. */
export const MAX_ALLOTMENT_SECONDS = 100n * 366n * 24n * 3600n;
/** 2^80 bytes (a billion PiB): past anything sellable, and keeps counters well inside the journal's bounds. */
export const MAX_ALLOTMENT_BYTES = 1n << 80n;

function bad(message: string): SluiceError {
  return new SluiceError('ERR_INVALID_GRANT', message);
}

/** Caller-supplied text: refused as an argument (the caller's mistake), not as a malformed grant (a bug). */
function clientText(value: unknown, name: string, max: number): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > max) {
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a string of at most ${max} characters`, {
      details: { argument: name },
    });
  }
  return value;
}

/** The longest idempotency key kept (it is journaled with the purchase and remembered for the retention time). */
export const MAX_IDEMPOTENCY_KEY = 200;

/** Who a grant is for and its retry key: everything about a grant that is known before any payment. */
export interface GrantClient {
  mac: string;
  ip: string | null;
  user: string | null;
  plan: string | null;
  idempotencyKey?: string;
}

/**
 * The client half of validateGrant, usable before a payment: a unicast MAC, `ip` an IPv4 or IPv6 address, `user` and
 * `plan` bounded, `idempotencyKey` a string of at most 200 characters (anything else is refused, never ignored: an
 * ignored key is a second charge on retry).
 */
export function validateClient(grant: Pick<Grant, 'mac' | 'ip' | 'user' | 'plan' | 'idempotencyKey'>): GrantClient {
  const mac = normalizeMac(grant.mac);
  assertClientMac(mac);
  const ip = clientText(grant.ip, 'ip', 45);
  if (ip !== null && isIP(ip) === 0)
    throw new SluiceError('ERR_INVALID_ARGUMENT', `ip is not an IPv4 or IPv6 address: ${JSON.stringify(ip)}`, {
      details: { argument: 'ip' },
    });
  const out: GrantClient = {
    mac,
    ip,
    user: clientText(grant.user, 'user', 253),
    plan: clientText(grant.plan, 'plan', 64),
  };
  const key = grant.idempotencyKey as unknown;
  if (key !== undefined && key !== null && key !== '') {
    if (typeof key !== 'string' || key.length > MAX_IDEMPOTENCY_KEY) {
      throw new SluiceError(
        'ERR_INVALID_ARGUMENT',
        `idempotency_key must be a string of at most ${MAX_IDEMPOTENCY_KEY} characters`,
        { details: { argument: 'idempotency_key' } },
      );
    }
    out.idempotencyKey = key;
  }
  return out;
}

export function validateGrant(grant: Grant): ValidGrant {
  if (typeof grant !== 'object' || grant === null) throw bad('grant must be an object');
  const client = validateClient(grant);
  const mac = client.mac;
  if (grant.metric !== 'bytes' && grant.metric !== 'seconds')
    throw bad(`metric must be bytes or seconds, not ${String(grant.metric)}`);
  const max = grant.metric === 'seconds' ? MAX_ALLOTMENT_SECONDS : MAX_ALLOTMENT_BYTES;
  if (typeof grant.allotment !== 'bigint' || grant.allotment <= 0n || grant.allotment > max) {
    throw new SluiceError('ERR_INVALID_AMOUNT', `allotment must be a positive number of ${grant.metric} up to ${max}`);
  }
  const p = grant.payment as Partial<PaymentRef> | undefined;
  if (
    !p ||
    typeof p.method !== 'string' ||
    p.method === '' ||
    typeof p.reference !== 'string' ||
    p.reference === '' ||
    typeof p.amount !== 'bigint' ||
    p.amount < 0n ||
    typeof p.asset !== 'string' ||
    typeof p.at !== 'number' ||
    !Number.isSafeInteger(p.at) ||
    (p.steps !== undefined && typeof p.steps !== 'bigint')
  ) {
    throw bad('payment must carry method, reference, amount (bigint >= 0), asset and at');
  }
  const payment: PaymentRef = { method: p.method, reference: p.reference, amount: p.amount, asset: p.asset, at: p.at };
  if (p.steps !== undefined) payment.steps = p.steps;
  const out: ValidGrant = {
    mac,
    ip: client.ip,
    user: client.user,
    plan: client.plan,
    metric: grant.metric,
    allotment: grant.allotment,
    payment,
    deadline: null,
    maxDevices: 1,
    rates: null,
  };
  if (grant.rates !== undefined && grant.rates !== null) {
    if (!isSessionRates(grant.rates))
      throw bad('rates must be null or positive whole bits per second for each direction');
    out.rates = { downBps: grant.rates.downBps, upBps: grant.rates.upBps };
  }
  if (grant.devices !== undefined) {
    if (!Number.isSafeInteger(grant.devices) || grant.devices < 1 || grant.devices > MAX_DEVICES)
      throw bad(`devices must be 1 to ${MAX_DEVICES}`);
    out.maxDevices = grant.devices;
  }
  if (grant.expiresAt !== undefined && grant.expiresAt !== null) {
    if (grant.metric !== 'bytes')
      throw bad('a deadline (expiresAt) is for data sessions; a time session ends by its allotment');
    if (!Number.isSafeInteger(grant.expiresAt) || grant.expiresAt <= 0 || grant.expiresAt > Date.UTC(9999, 0))
      throw bad('expiresAt must be a time in ms since the epoch');
    out.deadline = grant.expiresAt;
  }
  if (client.idempotencyKey !== undefined) out.idempotencyKey = client.idempotencyKey;
  return out;
}
