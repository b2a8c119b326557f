/**
 * A Grant is what the merchant hands the session manager once a payment is authorized: who, which metric, how much.
 * Validated here as the last gate before anything is sold, whatever the caller checked before.
 */
import { SluiceError } from '../errors.ts';
import { normalizeMac } from './model.ts';
import type { Metric, PaymentRef } from './model.ts';

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
}

export interface ValidGrant {
  mac: string; ip: string | null; user: string | null; plan: string | null;
  metric: Metric; allotment: bigint; payment: PaymentRef; idempotencyKey?: string;
  /** Data sessions: the hard deadline, or null. */
  deadline: number | null;
}

/** 100 years: keeps `expiresAt` (ms) far inside Number.MAX_SAFE_INTEGER, even after many top-ups. */
export const MAX_ALLOTMENT_SECONDS = 100n * 366n * 24n * 3600n;
/** 2^80 bytes (a billion PiB): past anything sellable, and keeps counters well inside the journal's bounds. */
export const MAX_ALLOTMENT_BYTES = 1n << 80n;

function bad(message: string): SluiceError {
  return new SluiceError('ERR_INVALID_GRANT', message);
}

function optionalText(value: unknown, name: string, max = 253): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > max) throw bad(`${name} must be a string of at most ${max} characters`);
  return value;
}

export function validateGrant(grant: Grant): ValidGrant {
  if (typeof grant !== 'object' || grant === null) throw bad('grant must be an object');
  const mac = normalizeMac(grant.mac);
  if (grant.metric !== 'bytes' && grant.metric !== 'seconds') throw bad(`metric must be bytes or seconds, not ${String(grant.metric)}`);
  const max = grant.metric === 'seconds' ? MAX_ALLOTMENT_SECONDS : MAX_ALLOTMENT_BYTES;
  if (typeof grant.allotment !== 'bigint' || grant.allotment <= 0n || grant.allotment > max) {
    throw new SluiceError('ERR_INVALID_AMOUNT', `allotment must be a positive number of ${grant.metric} up to ${max}`);
  }
  const p = grant.payment as Partial<PaymentRef> | undefined;
  if (!p || typeof p.method !== 'string' || p.method === '' || typeof p.reference !== 'string' || p.reference === ''
    || typeof p.amount !== 'bigint' || p.amount < 0n || typeof p.asset !== 'string' || typeof p.at !== 'number' || !Number.isSafeInteger(p.at)
    || (p.steps !== undefined && typeof p.steps !== 'bigint')) {
    throw bad('payment must carry method, reference, amount (bigint >= 0), asset and at');
  }
  const payment: PaymentRef = { method: p.method, reference: p.reference, amount: p.amount, asset: p.asset, at: p.at };
  if (p.steps !== undefined) payment.steps = p.steps;
  const out: ValidGrant = {
    mac, ip: optionalText(grant.ip, 'ip', 45), user: optionalText(grant.user, 'user'), plan: optionalText(grant.plan, 'plan', 64),
    metric: grant.metric, allotment: grant.allotment, payment, deadline: null,
  };
  if (grant.expiresAt !== undefined && grant.expiresAt !== null) {
    if (grant.metric !== 'bytes') throw bad('a deadline (expiresAt) is for data sessions; a time session ends by its allotment');
    if (!Number.isSafeInteger(grant.expiresAt) || grant.expiresAt <= 0 || grant.expiresAt > Date.UTC(9999, 0)) throw bad('expiresAt must be a time in ms since the epoch');
    out.deadline = grant.expiresAt;
  }
  const key = optionalText(grant.idempotencyKey, 'idempotencyKey', 200);
  if (key !== null) out.idempotencyKey = key;
  return out;
}
