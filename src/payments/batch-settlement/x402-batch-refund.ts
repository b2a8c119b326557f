/**
 * The customer's side of a `batch-settlement` channel after the sessions (docs/batch-settlement.md "The channel's
 * state and the customer's refund request"): what sluice knows of a channel (for the pay page), and the customer's
 * refund request.
 *
 * The request is the spec's own client refund payload (@x402/evm's `refundChannel` builds it): a voucher at the
 * channel's charged amount. Its signature is the authentication: the channel's payerAuthorizer (ECDSA here, low-s),
 * or for a channel without one the payer (the facilitator's /verify, which covers EIP-1271 wallets). A voucher at the
 * charged amount gives the router nothing it has not charged, and replaying it can only send the customer's own
 * money back to the customer. The request goes on flash before anything else (the settler's pass does the refund,
 * and a restart or a facilitator outage only delays it); the refund nonce makes it move money once.
 */
import { SluiceError } from '../../errors.ts';
import type { BatchChannelStore, ChannelRecord } from './batch-channels.ts';
import { checkChannel, parseBatchPayment, verifyVoucher, type Address } from '../../x402/index.ts';
import type { BatchRefundPolicy } from '../../config/index.ts';
import type { Log } from '../../log.ts';
import { cumulativeMismatch } from './x402-batch-rules.ts';
import { refundSettlement } from './x402-batch-answers.ts';

/**
 * The channel as the pay page shows it: amounts as decimal strings, times in ms (refund) or unix seconds (withdrawal).
 */
export interface ChannelView {
  channel_id: string;
  network: string;
  asset: string;
  payer: string;
  payer_authorizer: string;
  charged: string;
  ceiling: string;
  balance: string;
  claimed: string;
  available: string;
  session_open: boolean;
  withdraw_requested_at: number;
  refund_policy: BatchRefundPolicy;
  refund:
    | { state: 'none' }
    | { state: 'requested'; requested_at: number; amount?: string }
    | { state: 'done'; amount: string; transaction: string; done_at: number };
}

const CHANNEL_ID = /^0x[0-9a-fA-F]{64}$/;

export function channelView(r: ChannelRecord, policy: BatchRefundPolicy): ChannelView {
  const committed = r.open ? r.signedMax : r.charged;
  const f = r.refund;
  return {
    channel_id: r.channelId,
    network: r.network,
    asset: r.config.token.toLowerCase(),
    payer: r.config.payer.toLowerCase(),
    payer_authorizer: r.config.payerAuthorizer.toLowerCase(),
    charged: r.charged.toString(),
    ceiling: r.signedMax.toString(),
    balance: r.balance.toString(),
    claimed: r.totalClaimed.toString(),
    available: (r.balance > committed ? r.balance - committed : 0n).toString(),
    session_open: r.open !== undefined,
    withdraw_requested_at: r.withdrawRequestedAt,
    refund_policy: policy,
    refund: !f
      ? { state: 'none' }
      : f.state === 'requested'
        ? {
            state: 'requested',
            requested_at: f.requestedAt,
            ...(f.amount !== undefined && { amount: f.amount.toString() }),
          }
        : { state: 'done', amount: f.amount.toString(), transaction: f.transaction, done_at: f.at },
  };
}

/** The record of a channel id from a request (ERR_INVALID_ARGUMENT, ERR_BATCH_CHANNEL_UNKNOWN). */
export function channelRecordOf(store: BatchChannelStore, id: unknown): ChannelRecord {
  if (typeof id !== 'string' || !CHANNEL_ID.test(id))
    throw new SluiceError('ERR_INVALID_ARGUMENT', 'channel must be a channel id (0x and 64 hex digits)');
  const r = store.get(id);
  if (!r)
    throw new SluiceError(
      'ERR_BATCH_CHANNEL_UNKNOWN',
      `this router has no batch-settlement channel ${id.toLowerCase()}`,
    );
  return r;
}

export interface RefundTerms {
  chainId: number;
  network: string;
  receiver: string;
  receiverAuthorizer: string;
  withdrawDelay: number;
}

/** Asks the facilitator whether a payer (not payerAuthorizer) signed the refund voucher: true when it did. */
export type PayerSignatureCheck = (raw: Record<string, unknown>, token: string) => Promise<boolean>;

/**
 * Checks the customer's refund request and writes it on flash (`refund.state` requested). Refuses, moving nothing:
 * not a refund payload, a channel not ours or unknown, a voucher not signed by the channel's payerAuthorizer or
 * payer (ERR_BATCH_REFUND_FORBIDDEN), a session open (busy), a voucher not at the charged amount (the spec's
 * corrective), nothing left (ERR_BATCH_REFUND_NO_BALANCE). A request for a refund already asked for is taken again
 * (the same state); one already done with nothing left answers the done state.
 */
export async function recordRefundRequest(
  input: unknown,
  options: {
    store: BatchChannelStore;
    terms: RefundTerms;
    /** ms */
    now: number;
    payerSigned: PayerSignatureCheck;
    /** The spec's corrective refusal of a voucher not at the amount expected. */
    corrective: (r: ChannelRecord, expected: bigint, got: bigint) => SluiceError;
  },
): Promise<ChannelRecord> {
  const { store, terms, now, payerSigned, corrective } = options;
  const p = parseBatchPayment(input, ['refund']);
  if (p.network !== terms.network)
    throw new SluiceError('ERR_X402_NETWORK_MISMATCH', `network ${p.network} is not ${terms.network}`);
  const known = channelRecordOf(store, p.voucher.channelId);
  checkChannel(p, {
    chainId: terms.chainId,
    receiver: terms.receiver as Address,
    receiverAuthorizer: terms.receiverAuthorizer as Address,
    token: known.config.token as Address,
    withdrawDelay: terms.withdrawDelay,
  });
  const forbidden = (): never => {
    throw new SluiceError(
      'ERR_BATCH_REFUND_FORBIDDEN',
      `the refund voucher is not signed by channel ${known.channelId}'s payer or payerAuthorizer`,
      { details: { reason: 'invalid_batch_settlement_evm_voucher_signature' } },
    );
  };
  // The config hashes to the id (checkChannel): its payer and payerAuthorizer are the channel's own.
  let local: 'valid' | 'needs-facilitator';
  try {
    local = await verifyVoucher(p.config, p.voucher, terms.chainId);
  } catch {
    return forbidden();
  }
  if (local === 'needs-facilitator' && !(await payerSigned(p.raw, known.config.token))) forbidden();
  const r = store.get(known.channelId) ?? known;
  if (r.open) {
    throw new SluiceError('ERR_BATCH_CHANNEL_BUSY', `channel ${r.channelId} is paying for a session: it ends first`, {
      details: { reason: 'invalid_batch_settlement_evm_channel_busy' },
    });
  }
  if (p.voucher.maxClaimableAmount !== r.charged) throw corrective(r, r.charged, p.voucher.maxClaimableAmount);
  if (r.refund?.state === 'requested') return r;
  if (r.balance <= r.charged) {
    if (r.refund?.state === 'done') return r;
    throw new SluiceError('ERR_BATCH_REFUND_NO_BALANCE', `channel ${r.channelId} has nothing left to refund`, {
      details: { reason: 'invalid_batch_settlement_evm_refund_no_balance' },
    });
  }
  const next: ChannelRecord = {
    ...r,
    refund: { state: 'requested', requestedAt: now, ...(p.refundAmount !== undefined && { amount: p.refundAmount }) },
  };
  await store.put(next);
  return next;
}

/** The answer to a customer's refund request: the channel, and the spec's settle response once the refund is done. */
export interface RefundOutcome {
  channel: ChannelView;
  settlement: Record<string, unknown> | null;
}

/**
 * The customer's refund request: on flash (recordRefundRequest), then the settler's pass (`pass`; a failure is
 * retried by its schedule); answers the channel and, when the refund is done, the spec's settle response.
 */
export async function requestRefund(
  payload: unknown,
  options: {
    store: BatchChannelStore;
    terms: RefundTerms & { refund: BatchRefundPolicy };
    now: number;
    payerSigned: PayerSignatureCheck;
    pass?: () => Promise<unknown>;
    log?: Log;
  },
): Promise<RefundOutcome> {
  const { store, terms } = options;
  const recorded = await recordRefundRequest(payload, { ...options, corrective: cumulativeMismatch });
  if (recorded.refund?.state === 'requested') {
    try {
      await options.pass?.();
    } catch (err) {
      // The request is on flash: the settler's schedule tries again.
      options.log?.warn('batch-settlement refund pass failed; will retry', {
        channel: recorded.channelId,
        reason: (err as Error).message,
      });
    }
  }
  const r = store.get(recorded.channelId) ?? recorded;
  return { channel: channelView(r, terms.refund), settlement: refundSettlement(r) };
}
