/**
 * A `batch-settlement` deposit purchase's intent (a payload pays for one purchase by one device, ever). The channel
 * record, with the voucher and the buyer's MAC, is written only at the grant; the deposit's /settle moves the
 * customer's money before that. A kill -9 in between would leave nothing saying whose purchase it was, and the payload
 * — a plain HTTP header on open WiFi — resent by anyone after the restart would find the money in the channel and get
 * the session. So the purchase's channel, ceiling, device and payload go on flash before /settle (BatchChannelStore
 * `putIntent`), and the write that records the voucher drops them. While an intent stands, its device alone buys on the
 * channel; another gets ERR_BATCH_CHANNEL_BUSY (HTTP 409). A restart asks whether the money landed.
 */
import { createHash } from 'node:crypto';
import { SluiceError } from '../../errors.ts';
import type { PurchaseIntent } from './batch-channels.ts';
import type { BatchPayment } from '../../x402/index.ts';

/**
 * Seconds past the deposit's deadline before an intent whose money never landed is dropped: a transaction the
 * facilitator sent just before the deadline may still be mined a little after the clock says it closed.
 */
export const INTENT_DEADLINE_MARGIN_S = 300;

/**
 * How long a landed intent waits for its device to send the payload again (a restart, then the customer's retry)
 * before its voucher is recorded without a session and the channel is free for the customer's other devices.
 */
export const INTENT_LANDED_KEEP_MS = 3_600_000;

/**
 * The same payment as a plain voucher (no deposit: it moves nothing); /verify holds it exactly when the money is there.
 */
export function voucherOnly(raw: Record<string, unknown>): Record<string, unknown> {
  const p = raw.payload as Record<string, unknown>;
  return { ...raw, payload: { type: 'voucher', channelConfig: p.channelConfig, voucher: p.voucher } };
}

/**
 * unix s until which the deposit's authorization can land: ERC-3009 validBefore or Permit2 deadline; 0 when not
 * readable.
 */
function depositDeadline(raw: Record<string, unknown>): number {
  const auth = ((raw.payload as Record<string, unknown>).deposit as Record<string, unknown> | undefined)
    ?.authorization as Record<string, unknown> | undefined;
  const erc3009 = auth?.erc3009Authorization as Record<string, unknown> | undefined;
  const permit2 = auth?.permit2Authorization as Record<string, unknown> | undefined;
  const value = erc3009?.validBefore ?? permit2?.deadline;
  const n = typeof value === 'string' && /^[0-9]{1,15}$/.test(value) ? Number(value) : 0;
  return Number.isSafeInteger(n) ? n : 0;
}

/** The intent of a deposit's purchase: the device buying, the plan's asset and price, when (ms). */
export function intentOf(
  payment: BatchPayment,
  purchase: { mac: string; asset: string; price: bigint; at: number },
): PurchaseIntent {
  const { mac, asset, price, at } = purchase;
  return {
    channelId: payment.voucher.channelId.toLowerCase(),
    ceiling: payment.voucher.maxClaimableAmount,
    signature: payment.voucher.signature,
    mac,
    payload: createHash('sha256').update(JSON.stringify(payment.raw.payload)).digest('hex'),
    voucherPayload: voucherOnly(payment.raw),
    asset,
    price,
    deadline: depositDeadline(payment.raw),
    at,
  };
}

/**
 * The deposit can no longer land (its deadline and the margin have passed): an intent whose money is not there binds
 * nothing.
 */
export function intentExpired(intent: PurchaseIntent, nowMs: number): boolean {
  return intent.deadline > 0 && nowMs / 1000 > intent.deadline + INTENT_DEADLINE_MARGIN_S;
}

export function pendingElsewhere(intent: PurchaseIntent): SluiceError {
  return new SluiceError(
    'ERR_BATCH_CHANNEL_BUSY',
    `channel ${intent.channelId} has a deposit purchase under way for another device: only that device can complete it`,
    {
      details: {
        reason: 'invalid_batch_settlement_evm_channel_busy',
        pending: 'another-device',
        ceiling: intent.ceiling.toString(),
      },
    },
  );
}
