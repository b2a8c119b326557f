/**
 * The facilitator's `batch-settlement` answers: the standard /verify and /settle, read for what this scheme adds, the
 * onchain channel snapshot (`extra` of a verify, `extra.channelState` of a settle) and the settled `amount`. A verify
 * without an answer is an error (nothing moved); a settle without one is `unknown` (it may have landed: the caller
 * asks again, and the contract's cumulative claims and refund nonce make a second try harmless).
 */
import { SluiceError } from '../errors.ts';
import { refusalOf } from './facilitator.ts';
import { jsonClient, type JsonClientOptions } from './http-json.ts';

/** The contract's view of a channel, as the facilitator reports it. */
export interface ChannelSnapshot {
  balance: bigint;
  totalClaimed: bigint;
  /** Unix seconds when the payer started a timed withdrawal; 0 if none. */
  withdrawRequestedAt: number;
  refundNonce: bigint;
}

export type BatchVerifyOutcome =
  { ok: true; snapshot: ChannelSnapshot } | { ok: false; reason: string; message: string };
export type BatchSettleOutcome =
  | { status: 'settled'; transaction: string; amount: bigint | null; snapshot: ChannelSnapshot | null }
  | { status: 'failed'; reason: string; message: string }
  | { status: 'unknown'; message: string };

export interface BatchFacilitatorRequest {
  paymentPayload: Record<string, unknown>;
  paymentRequirements: Record<string, unknown>;
}

const UINT = /^(0|[1-9][0-9]{0,77})$/;

/** A snapshot of garbage is no snapshot: every field must be there and be a number. */
export function snapshotOf(v: unknown): ChannelSnapshot | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const big = (x: unknown): bigint | null =>
    typeof x === 'string' && UINT.test(x)
      ? BigInt(x)
      : typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
        ? BigInt(x)
        : null;
  const balance = big(r.balance);
  const totalClaimed = big(r.totalClaimed);
  const refundNonce = big(r.refundNonce);
  const withdraw = big(r.withdrawRequestedAt);
  if (balance === null || totalClaimed === null || refundNonce === null || withdraw === null) return null;
  return { balance, totalClaimed, refundNonce, withdrawRequestedAt: Number(withdraw) };
}

export class BatchFacilitatorClient {
  private readonly call: ReturnType<typeof jsonClient>;

  constructor(options: JsonClientOptions) {
    this.call = jsonClient(options);
  }

  async verify(request: BatchFacilitatorRequest): Promise<BatchVerifyOutcome> {
    const a = await this.call('POST', '/verify', { x402Version: 2, ...request });
    if (a.kind === 'none') throw unavailable('verify', a.message);
    if (a.status >= 500) throw unavailable('verify', `HTTP ${a.status}: ${refusalOf(a.body, a.status).message}`);
    if (a.status === 200 && a.body.isValid === true) {
      const snapshot = snapshotOf(a.body.extra);
      if (!snapshot) throw unavailable('verify', 'a valid answer without the channel snapshot');
      return { ok: true, snapshot };
    }
    if (a.status === 200 && a.body.isValid !== false) throw unavailable('verify', 'answer has no isValid');
    return { ok: false, ...refusalOf(a.body, a.status) };
  }

  async settle(request: BatchFacilitatorRequest): Promise<BatchSettleOutcome> {
    const a = await this.call('POST', '/settle', { x402Version: 2, ...request });
    if (a.kind === 'none') return { status: 'unknown', message: a.message };
    if (a.status >= 500)
      return { status: 'unknown', message: `HTTP ${a.status}: ${refusalOf(a.body, a.status).message}` };
    if (a.status === 200 && a.body.success === true) {
      const transaction = typeof a.body.transaction === 'string' ? a.body.transaction : '';
      if (!/^0x[0-9a-fA-F]{64}$/.test(transaction))
        return { status: 'unknown', message: 'success without a transaction' };
      const amount = typeof a.body.amount === 'string' && UINT.test(a.body.amount) ? BigInt(a.body.amount) : null;
      const extra = a.body.extra;
      const snapshot =
        typeof extra === 'object' && extra !== null
          ? snapshotOf((extra as Record<string, unknown>).channelState)
          : null;
      return { status: 'settled', transaction, amount, snapshot };
    }
    if (a.status === 200 && a.body.success !== false)
      return { status: 'unknown', message: 'answer has no success field' };
    return { status: 'failed', ...refusalOf(a.body, a.status) };
  }
}

function unavailable(what: string, message: string): SluiceError {
  return new SluiceError('ERR_X402_FACILITATOR_UNAVAILABLE', `batch-settlement facilitator ${what}: ${message}`);
}
