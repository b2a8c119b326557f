/**
 * What a batch-settlement purchase decides about the money, apart from what it waits on (the facilitator, the flash):
 * the channel record a voucher leaves (its ceiling checked against the cumulative rule and the balance, the open
 * charge it starts or tops up) and what a session's end charges (the metered steps, never above what its purchases
 * paid for). Pure: the method (x402-batch.ts) reads the channel, asks the facilitator and writes what these return.
 */
import { SluiceError } from '../../errors.ts';
import { meteredSteps } from '../../escrow/index.ts';
import type { BatchPayment, ChannelSnapshot } from '../../x402/index.ts';
import type { ChannelRecord } from './batch-channels.ts';
import { batchReference, cumulativeMismatch, nextCeiling } from './x402-batch-rules.ts';

/** A voucher accepted on a channel: what the purchase brings and what the channel holds now. */
export interface AcceptedVoucher {
  payment: BatchPayment;
  /** The channel's record as the purchase found it (undefined: a channel sluice has no record of). */
  known: ChannelRecord | undefined;
  snapshot: ChannelSnapshot;
  /** The snapshot is the mirror's (the record's syncedAt stands). */
  fresh: boolean;
  quote: { price: bigint; pricePerStep: bigint; stepSize: bigint };
  mac: string;
  /** The purchase's time (ms), and the clock's now. */
  at: number;
  now: number;
  /** The channel's purchase number this voucher takes; whether it raises the open session's ceiling. */
  purchase: number;
  topUp: boolean;
  network: string;
  chainId: number;
}

/**
 * The record the voucher leaves, its payment reference and the charge before it; refused (the spec's corrective
 * answer) when its ceiling is not the next one or exceeds the channel's balance.
 */
export function acceptedRecord(v: AcceptedVoucher): { record: ChannelRecord; reference: string; base: bigint } {
  const { payment, known, snapshot, quote } = v;
  const id = payment.voucher.channelId;
  const ceiling = payment.voucher.maxClaimableAmount;
  const base = known?.charged ?? snapshot.totalClaimed;
  const expected = nextCeiling(known, quote.price, snapshot.totalClaimed);
  if (ceiling !== expected) throw cumulativeMismatch(known, expected, ceiling, expected - quote.price);
  if (ceiling > snapshot.balance) {
    throw new SluiceError(
      'ERR_BATCH_VOUCHER_INVALID',
      `voucher ceiling ${ceiling} exceeds the channel balance ${snapshot.balance}`,
      { details: { reason: 'invalid_batch_settlement_evm_cumulative_exceeds_balance' } },
    );
  }
  const reference = batchReference(id, ceiling);
  // A top-up keeps the open charge (its reference, base and price) and adds its price to what the session may
  // charge; the session is charged once, at its end. The limit is the charge before it + the prices paid, not
  // the ceiling: the ceiling may stand higher (nextCeiling's floor), and that part was never bought.
  const open =
    v.topUp && known?.open
      ? { ...known.open, limit: (known.open.limit ?? known.signedMax) + quote.price }
      : {
          reference,
          base,
          limit: base + quote.price,
          pricePerStep: quote.pricePerStep,
          stepSize: quote.stepSize,
          mac: v.mac,
          at: v.at,
        };
  const record: ChannelRecord = {
    channelId: id,
    network: v.network,
    chainId: v.chainId,
    config: { ...payment.config },
    charged: base,
    signedMax: ceiling,
    signature: payment.voucher.signature,
    balance: snapshot.balance,
    totalClaimed: snapshot.totalClaimed,
    withdrawRequestedAt: snapshot.withdrawRequestedAt,
    refundNonce: snapshot.refundNonce,
    syncedAt: v.fresh && known ? known.syncedAt : v.now,
    lastRequestAt: v.now,
    open,
    purchases: v.purchase,
    // A new session takes the channel back from a refund asked for; a done one stays to be shown until then.
    ...(known?.refund?.state === 'done' && !v.topUp && { refund: known.refund }),
    ...(known?.refund && v.topUp && { refund: known.refund }),
  };
  return { record, reference, base: expected - quote.price };
}

/**
 * What the ended session of `r`'s open charge is charged for `used` (bytes or seconds): the metered steps × price
 * per step, at most what its purchase and top-ups paid for and never above the ceiling. `r` must hold an open charge.
 */
export function sessionCharge(
  r: ChannelRecord & { open: NonNullable<ChannelRecord['open']> },
  used: bigint,
): { price: bigint; room: bigint; steps: bigint } {
  const open = r.open;
  // A charge written without a limit (an older record) had its ceiling at exactly base + the prices then.
  const limit = open.limit !== undefined && open.limit < r.signedMax ? open.limit : r.signedMax;
  const room = limit - open.base;
  const steps = meteredSteps(used, open.stepSize, room / (open.pricePerStep === 0n ? 1n : open.pricePerStep));
  let price = steps * open.pricePerStep;
  if (price > room) price = room;
  return { price, room, steps };
}
