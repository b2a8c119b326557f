/**
 * The answers of `batch-settlement` in the spec's settle response shape (the LAN endpoint's PAYMENT-RESPONSE): a
 * purchase's, from the facts its request left (kept for a few recent purchases), and a done refund's.
 */
import type { ChannelRecord } from './batch-channels.ts';

/** Purchases whose PAYMENT-RESPONSE facts are kept (each is read by the answer of the request that made it). */
const MAX_REMEMBERED_ANSWERS = 64;

/** What the answer to a purchase (PAYMENT-RESPONSE) says: its deposit transaction, the amount its voucher built on. */
export interface Answer {
  transaction: string;
  base: bigint;
}

/** Recent purchases' answers by payment reference. */
export class PurchaseAnswers {
  private readonly answers = new Map<string, Answer>();

  remember(reference: string, answer: Answer): void {
    this.answers.set(reference, answer);
    // Only the answer to the request being served needs it: a bound keeps a flood of purchases from growing the map.
    for (const key of this.answers.keys()) {
      if (this.answers.size <= MAX_REMEMBERED_ANSWERS) break;
      this.answers.delete(key);
    }
  }

  get(reference: string): Answer | undefined {
    return this.answers.get(reference);
  }
}

/**
 * The spec's settle response for the voucher of channel `r` whose purchase left `answer` (undefined: not remembered).
 * `chargedAmount` is "0" and `chargedCumulativeAmount` is the amount the voucher was built on (its ceiling − its
 * price: what was charged before, or the floor of `nextCeiling`), so a spec client's own bookkeeping (its base +
 * chargedAmount) agrees and it records its deposit: sluice charges at the session's end what the meter counted, not
 * the price at once as @x402/evm's server does. A returning client whose local state lags (it cannot know the metered
 * charge) gets the spec's corrective 402 (cumulative mismatch with channelState and voucherState) and re-syncs.
 */
export function purchaseSettlement(r: ChannelRecord, answer: Answer | undefined): Record<string, unknown> {
  // Not remembered (a restart): while the session this voucher paid for is open, what was charged before it.
  const charged = answer?.base ?? (r.open ? r.open.base : r.charged);
  return {
    success: true,
    payer: r.config.payer.toLowerCase(),
    transaction: answer?.transaction ?? '',
    network: r.network,
    amount: '',
    extra: {
      channelState: {
        channelId: r.channelId,
        balance: r.balance.toString(),
        totalClaimed: r.totalClaimed.toString(),
        withdrawRequestedAt: r.withdrawRequestedAt,
        refundNonce: r.refundNonce.toString(),
        chargedCumulativeAmount: charged.toString(),
      },
      chargedAmount: '0',
    },
  };
}

/** The spec's settle response for channel `r`'s refund once it is done; null while it is not. */
export function refundSettlement(r: ChannelRecord): Record<string, unknown> | null {
  const done = r.refund?.state === 'done' ? r.refund : null;
  return !done
    ? null
    : {
        success: true,
        payer: r.config.payer.toLowerCase(),
        transaction: done.transaction,
        network: r.network,
        amount: done.amount.toString(),
        extra: {
          channelState: {
            channelId: r.channelId,
            balance: r.balance.toString(),
            totalClaimed: r.totalClaimed.toString(),
            withdrawRequestedAt: r.withdrawRequestedAt,
            refundNonce: r.refundNonce.toString(),
            chargedCumulativeAmount: r.charged.toString(),
          },
        },
      };
}
