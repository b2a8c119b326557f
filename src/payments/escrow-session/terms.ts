/**
 * The `x402-session` method's terms (x402-session.ts has the method): its limits and timing, what a deposit is after
 * every local check, its options, and the syntax of the payload's `extensions.session` {type "prepaid", pricePerUnit,
 * maxUnits, duration, seller, salt}.
 */
import type { Address as ViemAddress, Hex as ViemHex } from 'viem';
import { SluiceError } from '../../errors.ts';
import type { EscrowClose, EscrowLedger, SessionTerms } from '../../escrow/index.ts';
import type { Log } from '../../log.ts';
import type { Clock, Timers } from '../../time.ts';
import type { EscrowConfig } from '../../config/index.ts';
import type { X402SessionsPort } from '../exact/options.ts';
import { evm, type Address, type ExactPayment } from '../../x402/index.ts';

export const METHOD_NAME = 'x402-session';
/** validBefore at most this far ahead (the facilitator creates the session at once). */
export const MAX_WINDOW_SECONDS = 600n;
/** A session's escrow lasts at most this long (the buyer's money is locked until then if the router vanishes). */
export const MAX_DURATION_SECONDS = 7n * 24n * 3600n;
/**
 * A receipt that advanced is submitted to /session/consume this much later (receipts arriving meanwhile ride along).
 */
export const CONSUME_DELAY_MS = 5000;
/** How often a close without an answer is tried again. */
export const CLOSE_RETRY_MS = 3000;
/** A pending purchase is dropped only this long after its authorization's validBefore (local vs chain clock). */
export const PENDING_MARGIN_SECONDS = 60n;
const UINT_TEXT = /^(0|[1-9][0-9]{0,77})$/;

/** A session deposit after every local check: what create sends and what the session records. */
export interface SessionDeposit {
  payment: ExactPayment;
  terms: SessionTerms;
  /** The escrow session id (SessionEscrow.sessionIdOf). */
  sessionId: ViemHex;
  buyer: Address;
  asset: Address;
}

export interface X402SessionOptions {
  config: EscrowConfig;
  /** Where each sold session's buyer, maxUnits and highest receipt are kept (receipts need them). */
  ledger?: EscrowLedger;
  log?: Log;
  /** Facilitator request timeout (tests shorten it). */
  timeoutMs?: number;
  /** Sessions: the resolver grants purchases whose create was confirmed late. */
  sessions?: X402SessionsPort;
  /** An escrow session was closed on chain (or found closed): what the seller got and the buyer got back. */
  onClosed?: (escrowSessionId: string, close: EscrowClose) => void;
  clock?: Clock;
  /** The one close timer; by default one that never keeps the daemon alive on its own. */
  timers?: Timers;
}

/** ERR_ESCROW_TERMS_MISMATCH with its details. */
export function mismatch(message: string, details?: Record<string, unknown>): never {
  throw new SluiceError('ERR_ESCROW_TERMS_MISMATCH', message, details ? { details } : {});
}

/** `extensions.session` of a parsed payload, syntax only. */
export function parseSessionTerms(raw: Record<string, unknown>): SessionTerms & { type: string } {
  const ext = raw.extensions;
  const s = typeof ext === 'object' && ext !== null ? (ext as Record<string, unknown>).session : undefined;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) mismatch('payload has no extensions.session');
  const r = s as Record<string, unknown>;
  const uint = (k: string): bigint => {
    const v = r[k];
    if (typeof v === 'string' && UINT_TEXT.test(v)) return BigInt(v);
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    return mismatch(`extensions.session.${k} must be a non-negative integer (decimal string)`);
  };
  if (r.type !== 'prepaid') mismatch(`extensions.session.type ${JSON.stringify(r.type)} is not "prepaid"`);
  if (typeof r.seller !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(r.seller))
    mismatch('extensions.session.seller must be an address');
  if (typeof r.salt !== 'string' || !evm().isHex(r.salt) || r.salt.length !== 66)
    mismatch('extensions.session.salt must be 32 bytes hex');
  return {
    type: 'prepaid',
    seller: (r.seller as string).toLowerCase() as ViemAddress,
    pricePerUnit: uint('pricePerUnit'),
    maxUnits: uint('maxUnits'),
    duration: uint('duration'),
    salt: (r.salt as string).toLowerCase() as ViemHex,
  };
}
