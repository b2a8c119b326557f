/**
 * The voucher rules of `batch-settlement` (pure): a payment reference and the channel it names, the ceiling the next
 * voucher must sign (what binds a purchase), the payment requirements a router offers, and the refusals a
 * purchase answers with (the spec's corrective 402 among them). x402-batch.ts applies them.
 */
import { SluiceError } from '../../errors.ts';
import type { BatchSettlementConfig } from '../../config/index.ts';
import { BATCH_SETTLEMENT_SCHEME, knownTokenDomain } from '../../x402/index.ts';
import type { ChannelRecord } from './batch-channels.ts';

/**
 * The payment reference of one voucher: the channel and the ceiling it signed. Unique per channel, because every
 * voucher accepted signs a ceiling above all the channel's earlier ones (`nextCeiling`). (Older references end in
 * `:<purchase number>`; they are only compared whole, and their channel is the first field.)
 */
export function batchReference(channelId: string, ceiling: bigint): string {
  return `${channelId.toLowerCase()}:${ceiling}`;
}

/** The channel a payment reference belongs to. */
export function channelOfReference(reference: string): string {
  return reference.split(':')[0] ?? '';
}

/**
 * The ceiling the next voucher on a channel must sign for a purchase of `price` (what binds a purchase).
 * While a session is open: a top-up, the open ceiling + the price. Otherwise charged + price, the spec's rule, but
 * always above the last ceiling signed on the channel (`signedMax`, which therefore only rises): after a session
 * that used less than its ceiling, charged + price can equal a ceiling the customer signed before (in the extreme, a
 * session that used nothing: the very same voucher, its signature deterministic), and that voucher is readable by
 * anyone (an HTTP header on open WiFi, the router's claim on chain). A voucher at or below the last ceiling is
 * therefore never a new purchase, whoever sends it. `baseline`: where a channel sluice has no record of starts (the
 * spec's server-state-loss rule: what is claimed on chain).
 */
export function nextCeiling(r: ChannelRecord | undefined, price: bigint, baseline = 0n): bigint {
  if (!r) return baseline + price;
  if (r.open) return r.signedMax + price;
  const raised = r.charged + price;
  return raised > r.signedMax ? raised : r.signedMax + 1n;
}

/**
 * The spec's corrective answer: the state the client needs to re-sync (it verifies our copy of its own signature,
 * checks `chargedCumulativeAmount` lies between the chain's claim and that voucher, and signs base + price).
 * `base`: the amount the next voucher builds on, `expected` − the price: for a purchase that is not the charge
 * itself when the floor of `nextCeiling` applies (at most the last ceiling, so the client's check passes); for a
 * refund it is the charge (`expected`).
 */
export function cumulativeMismatch(
  r: ChannelRecord | undefined,
  expected: bigint,
  got: bigint,
  base = expected,
): SluiceError {
  return new SluiceError(
    'ERR_BATCH_CUMULATIVE_MISMATCH',
    `voucher maxClaimableAmount ${got} is not the channel's next ceiling ${expected}`,
    {
      details: {
        reason: 'invalid_batch_settlement_evm_cumulative_amount_mismatch',
        expected: expected.toString(),
        ...(r && {
          channelState: {
            channelId: r.channelId,
            balance: r.balance.toString(),
            totalClaimed: r.totalClaimed.toString(),
            withdrawRequestedAt: r.withdrawRequestedAt,
            refundNonce: r.refundNonce.toString(),
            chargedCumulativeAmount: base.toString(),
          },
          voucherState: { signedMaxClaimable: r.signedMax.toString(), signature: r.signature },
        }),
      },
    },
  );
}

/**
 * The payment requirements a router of `config` offers for `price` of `asset` (what a 402 would carry, and /verify
 * takes). The token's EIP-712 domain: sluice's table, else `token_name`/`token_version`, else what the payload accepted
 * (the facilitator checks the deposit's signature under it, and the token refuses a wrong one on chain).
 */
export function batchRequirements(
  c: BatchSettlementConfig,
  asset: string,
  price: bigint,
  accepted?: Record<string, unknown>,
): Record<string, unknown> {
  const extra = (accepted?.extra ?? {}) as { name?: unknown; version?: unknown };
  const domain =
    knownTokenDomain(c.network, asset) ??
    (c.tokenName !== ''
      ? { name: c.tokenName, version: c.tokenVersion }
      : { name: String(extra.name ?? ''), version: String(extra.version ?? '') });
  return {
    scheme: BATCH_SETTLEMENT_SCHEME,
    network: c.network,
    amount: price.toString(),
    asset,
    payTo: c.receiver,
    maxTimeoutSeconds: 3600,
    extra: {
      receiverAuthorizer: c.receiverAuthorizer,
      withdrawDelay: c.withdrawDelay,
      name: domain.name,
      version: domain.version,
    },
  };
}

export function busy(channelId: string): SluiceError {
  return new SluiceError(
    'ERR_BATCH_CHANNEL_BUSY',
    `channel ${channelId} is paying for a session already; one at a time`,
    { details: { reason: 'invalid_batch_settlement_evm_channel_busy' } },
  );
}

export function rejected(reason: string, message: string): SluiceError {
  return new SluiceError('ERR_BATCH_VERIFY_REJECTED', `batch-settlement facilitator refused: ${reason}: ${message}`, {
    details: { reason },
  });
}

/** The method's refusal of a voucher or deposit on a channel being withdrawn from. */
export function withdrawing(channelId: string, at: number): SluiceError {
  return new SluiceError(
    'ERR_BATCH_CHANNEL_WITHDRAWING',
    `channel ${channelId} has a timed withdrawal under way (since ${at}); no voucher is accepted on it`,
    { details: { withdrawRequestedAt: at } },
  );
}
