/**
 * Payment method `batch-settlement`: x402's batch-settlement scheme with sluice as the spec's server
 * (docs/batch-settlement.md). A purchase is one paid request: the customer's voucher raises the channel's signed
 * ceiling by the quote's price (maxClaimableAmount = charged + price, the spec's cumulative rule), the session is
 * granted the quote's allotment (so the gate can never run past what the ceiling covers), and when the session ends
 * sluice charges what the meter counted — the metered steps × price per step, never above the ceiling. The unused
 * part is never claimed: it stays in the customer's channel for the next session or comes back by refund
 * (x402-batch-settler.ts claims, settles and refunds).
 *
 * Order, each step refusing before the next can move money:
 *   parse → the channel is ours (config hash, receiver, receiverAuthorizer, token = plan asset, withdrawDelay) →
 *   the voucher's signature (payerAuthorizer: ECDSA low-s here; a payer-signed one: the facilitator's /verify) →
 *   cumulative = charged + price → precheck announces `channelId:ceiling` (a replayed voucher is refused by the
 *   merchant) → authorize: /verify (a deposit: then /settle, which moves the customer's money into their own channel,
 *   not to the router) → the voucher and the open charge on flash → granted.
 */
import { privateKeyToAccount } from 'viem/accounts';
import { SluiceError } from '../errors.ts';
import type { BatchSettlementConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import { systemClock, type Clock } from '../time.ts';
import { meteredSteps, type BatchChannelStore, type ChannelRecord } from '../escrow/index.ts';
import {
  BATCH_SETTLEMENT_SCHEME, BatchFacilitatorClient, checkChannel, knownTokenDomain, parseBatchPayment, verifyVoucher,
  type Address, type BatchPayment, type ChannelSnapshot, type Hex,
} from '../x402/index.ts';
import type { PaymentContext, PaymentMethod, PaymentRef } from './types.ts';

export const BATCH_METHOD_NAME = 'batch-settlement';

export type { BatchSettlementConfig };

/** A voucher of an EOA payerAuthorizer is checked locally (no /verify) while the mirrored channel is younger than this. */
export const MIRROR_FRESH_MS = 30_000;

/** Deposit transactions kept for PAYMENT-RESPONSE (each is read by the answer of the request that made it). */
const MAX_REMEMBERED_DEPOSITS = 64;

export interface BatchMethodOptions {
  store: BatchChannelStore;
  /** 0x private key of receiverAuthorizer when sluice signs claims and refunds itself; absent: the facilitator signs (delegated). */
  authorizerKey?: Hex;
  /** Overrides MIRROR_FRESH_MS (tests: 0, always /verify). */
  mirrorFreshMs?: number;
  log?: Log;
  fetch?: typeof fetch;
  timeoutMs?: number;
  clock?: Clock;
  /** A charge was written: the settler batches its claim. */
  onCharged?: (record: ChannelRecord) => void;
}

/** The payment reference of one voucher: the channel and the ceiling it signed (each voucher buys one session). */
export function batchReference(channelId: string, ceiling: bigint): string {
  return `${channelId.toLowerCase()}:${ceiling}`;
}

function cumulativeMismatch(r: ChannelRecord | undefined, expected: bigint, got: bigint): SluiceError {
  // The spec's corrective answer: the state the client needs to re-sync (it verifies our copy of its own signature).
  return new SluiceError('ERR_BATCH_CUMULATIVE_MISMATCH',
    `voucher maxClaimableAmount ${got} is not chargedCumulativeAmount + price = ${expected}`,
    { details: { reason: 'invalid_batch_settlement_evm_cumulative_amount_mismatch', expected: expected.toString(),
      ...(r && { channelState: { channelId: r.channelId, balance: r.balance.toString(), totalClaimed: r.totalClaimed.toString(),
        withdrawRequestedAt: r.withdrawRequestedAt, refundNonce: r.refundNonce.toString(), chargedCumulativeAmount: r.charged.toString() },
      voucherState: { signedMaxClaimable: r.signedMax.toString(), signature: r.signature } }) } });
}

interface Checked { payment: BatchPayment; local: 'valid' | 'needs-facilitator' }

export class BatchSettlementMethod implements PaymentMethod {
  readonly name = BATCH_METHOD_NAME;
  readonly adminOnly = false;
  private client: BatchFacilitatorClient;
  private readonly checked = new WeakMap<PaymentContext, Promise<Checked>>();
  /** Channels a purchase is working on: the spec serializes per channel. */
  private readonly busy = new Set<string>();
  /** Deposit transactions by payment reference, for the LAN endpoint's PAYMENT-RESPONSE (recent ones only). */
  private readonly deposits = new Map<string, string>();
  private readonly clock: Clock;

  constructor(private config: BatchSettlementConfig, private readonly options: BatchMethodOptions) {
    this.clock = options.clock ?? systemClock;
    this.client = this.clientFor(config);
    if (options.authorizerKey && privateKeyToAccount(options.authorizerKey).address.toLowerCase() !== config.receiverAuthorizer.toLowerCase()) {
      throw new SluiceError('ERR_CONFIG_INVALID', 'batch-settlement authorizer key is not the receiverAuthorizer\'s');
    }
  }

  private clientFor(config: BatchSettlementConfig): BatchFacilitatorClient {
    return new BatchFacilitatorClient({ url: config.facilitatorUrl, timeoutMs: this.options.timeoutMs ?? config.timeoutMs, ...(this.options.fetch && { fetch: this.options.fetch }) });
  }

  get facilitator(): BatchFacilitatorClient { return this.client; }
  get settings(): BatchSettlementConfig { return this.config; }
  get authorizerKey(): Hex | undefined { return this.options.authorizerKey; }

  /** A reload: facilitator, addresses, delay and refund policy apply to the next purchase and pass. */
  reconfigure(config: BatchSettlementConfig): void {
    this.config = config;
    this.client = this.clientFor(config);
  }

  /**
   * The payment requirements this router offers for `price` of `asset` (what a 402 would carry, and /verify takes).
   * The token's EIP-712 domain: sluice's table, else `token_name`/`token_version`, else what the payload accepted
   * (the facilitator checks the deposit's signature under it, and the token refuses a wrong one on chain).
   */
  requirements(asset: string, price: bigint, accepted?: Record<string, unknown>): Record<string, unknown> {
    const c = this.config;
    const extra = (accepted?.extra ?? {}) as { name?: unknown; version?: unknown };
    const domain = knownTokenDomain(c.network, asset)
      ?? (c.tokenName !== '' ? { name: c.tokenName, version: c.tokenVersion } : { name: String(extra.name ?? ''), version: String(extra.version ?? '') });
    return {
      scheme: BATCH_SETTLEMENT_SCHEME, network: c.network, amount: price.toString(), asset, payTo: c.receiver, maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: c.receiverAuthorizer, withdrawDelay: c.withdrawDelay, name: domain.name, version: domain.version },
    };
  }

  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const { payment } = await this.verified(ctx);
    return { reference: batchReference(payment.voucher.channelId, payment.voucher.maxClaimableAmount) };
  }

  private verified(ctx: PaymentContext): Promise<Checked> {
    let pending = this.checked.get(ctx);
    if (!pending) {
      pending = this.check(ctx);
      this.checked.set(ctx, pending);
    }
    return pending;
  }

  private async check(ctx: PaymentContext): Promise<Checked> {
    const c = this.config;
    const payment = parseBatchPayment(ctx.request.payment?.payload);
    if (payment.network !== c.network) throw new SluiceError('ERR_X402_NETWORK_MISMATCH', `network ${payment.network} is not ${c.network}`);
    checkChannel(payment, { chainId: c.chainId, receiver: c.receiver as Address, receiverAuthorizer: c.receiverAuthorizer as Address,
      token: ctx.quote.asset as Address, withdrawDelay: c.withdrawDelay });
    const local = await verifyVoucher(payment.config, payment.voucher, c.chainId);
    const r = this.options.store.get(payment.voucher.channelId);
    if (r?.open) throw busy(r.channelId);
    // A channel sluice has no record of starts from what is claimed on chain (the spec's server-state-loss baseline):
    // checked again in authorize, once /verify has said what that is.
    const expected = (r?.charged ?? 0n) + ctx.quote.price;
    if (r && payment.voucher.maxClaimableAmount !== expected) throw cumulativeMismatch(r, expected, payment.voucher.maxClaimableAmount);
    return { payment, local };
  }

  async authorize(ctx: PaymentContext): Promise<PaymentRef> {
    const { payment, local } = await this.verified(ctx);
    const id = payment.voucher.channelId;
    const ceiling = payment.voucher.maxClaimableAmount;
    if (this.busy.has(id)) throw busy(id);
    this.busy.add(id);
    try {
      const known = this.options.store.get(id);
      if (known?.open) throw busy(id);
      const request = { paymentPayload: payment.raw,
        paymentRequirements: this.requirements(ctx.quote.asset, ctx.quote.price, payment.raw.accepted as Record<string, unknown>) };
      let snapshot: ChannelSnapshot;
      const fresh = known && local === 'valid' && payment.depositAmount === null && known.withdrawRequestedAt === 0
        && this.clock.now() - known.syncedAt <= (this.options.mirrorFreshMs ?? MIRROR_FRESH_MS) && ceiling <= known.balance;
      if (fresh) {
        snapshot = { balance: known.balance, totalClaimed: known.totalClaimed, withdrawRequestedAt: 0, refundNonce: known.refundNonce };
      } else if (payment.type === 'deposit') {
        const landed = await this.deposit(payment, request);
        snapshot = landed.snapshot;
        if (landed.transaction) this.rememberDeposit(batchReference(id, ceiling), landed.transaction);
      } else {
        const v = await this.client.verify(request);
        if (!v.ok) throw rejected(v.reason, v.message);
        snapshot = v.snapshot;
      }
      const base = known?.charged ?? snapshot.totalClaimed;
      if (ceiling !== base + ctx.quote.price) throw cumulativeMismatch(known, base + ctx.quote.price, ceiling);
      if (ceiling > snapshot.balance) {
        throw new SluiceError('ERR_BATCH_VOUCHER_INVALID', `voucher ceiling ${ceiling} exceeds the channel balance ${snapshot.balance}`,
          { details: { reason: 'invalid_batch_settlement_evm_cumulative_exceeds_balance' } });
      }
      const reference = batchReference(id, ceiling);
      const now = this.clock.now();
      const record: ChannelRecord = {
        channelId: id, network: this.config.network, chainId: this.config.chainId, config: { ...payment.config },
        charged: base, signedMax: ceiling, signature: payment.voucher.signature,
        balance: snapshot.balance, totalClaimed: snapshot.totalClaimed, withdrawRequestedAt: snapshot.withdrawRequestedAt,
        refundNonce: snapshot.refundNonce, syncedAt: fresh ? known.syncedAt : now, lastRequestAt: now,
        open: { reference, base, pricePerStep: ctx.quote.pricePerStep, stepSize: ctx.quote.stepSize, mac: ctx.request.mac, at: ctx.now },
      };
      // The voucher and the open charge on flash before the session is granted: a crash after this leaves a voucher
      // sluice can claim for whatever the session used, never a session nothing pays for.
      await this.options.store.put(record);
      return { method: this.name, reference, amount: ctx.quote.price, asset: ctx.quote.asset, at: ctx.now, steps: ctx.quote.steps };
    } finally {
      this.busy.delete(id);
    }
  }

  /**
   * A deposit: /verify then /settle (the facilitator submits it; the money goes into the customer's channel). A
   * deposit whose earlier settle landed (a lost answer, a crash) cannot land twice (its ERC-3009 nonce is spent): if
   * /settle says no, the same voucher is verified as a plain voucher, which holds exactly when the money is there.
   */
  private async deposit(payment: BatchPayment, request: { paymentPayload: Record<string, unknown>; paymentRequirements: Record<string, unknown> }): Promise<{ snapshot: ChannelSnapshot; transaction?: string }> {
    const v = await this.client.verify(request);
    if (v.ok) {
      const s = await this.client.settle(request);
      if (s.status === 'settled') {
        return { snapshot: s.snapshot ?? { ...v.snapshot, balance: v.snapshot.balance + (payment.depositAmount ?? 0n) }, transaction: s.transaction };
      }
      this.options.log?.warn('batch-settlement deposit not confirmed; asking the channel', { channel: payment.voucher.channelId,
        reason: s.status === 'failed' ? s.reason : s.message });
    }
    const asVoucher = { ...payment.raw, payload: { type: 'voucher', channelConfig: (payment.raw.payload as Record<string, unknown>).channelConfig,
      voucher: (payment.raw.payload as Record<string, unknown>).voucher } };
    const again = await this.client.verify({ ...request, paymentPayload: asVoucher });
    if (again.ok) return { snapshot: again.snapshot };
    if (!v.ok) throw rejected(v.reason, v.message);
    throw new SluiceError('ERR_BATCH_DEPOSIT_PENDING', 'the deposit is not in the channel (yet): send the same payload again to ask',
      { details: { reason: again.reason } });
  }

  private rememberDeposit(reference: string, transaction: string): void {
    this.deposits.set(reference, transaction);
    // Only the answer to the request being served needs it: a bound keeps a flood of deposits from growing the map.
    for (const key of this.deposits.keys()) {
      if (this.deposits.size <= MAX_REMEMBERED_DEPOSITS) break;
      this.deposits.delete(key);
    }
  }

  /**
   * The spec's settle response for the voucher paid by `reference` (the LAN endpoint's PAYMENT-RESPONSE), or null
   * when sluice has no such channel. `chargedAmount` is "0" and `chargedCumulativeAmount` is what was charged before
   * this session: sluice charges at the session's end what the meter counted (never above the ceiling), not the
   * ceiling at once as @x402/evm's server does. A returning client whose local state lags (it cannot know the metered
   * charge) gets the spec's corrective 402 (cumulative mismatch with channelState and voucherState) and re-syncs.
   */
  settlementOf(reference: string): Record<string, unknown> | null {
    const id = reference.split(':')[0] ?? '';
    const r = this.options.store.get(id);
    if (!r) return null;
    const charged = r.open?.reference === reference ? r.open.base : r.charged;
    return {
      success: true, payer: r.config.payer.toLowerCase(), transaction: this.deposits.get(reference) ?? '', network: r.network, amount: '',
      extra: {
        channelState: { channelId: r.channelId, balance: r.balance.toString(), totalClaimed: r.totalClaimed.toString(),
          withdrawRequestedAt: r.withdrawRequestedAt, refundNonce: r.refundNonce.toString(), chargedCumulativeAmount: charged.toString() },
        chargedAmount: '0',
      },
    };
  }

  /** The session could not be granted: the open charge goes (the voucher stays: it is the channel's latest). */
  async release(ref: PaymentRef): Promise<void> {
    const id = ref.reference.split(':')[0] ?? '';
    const r = this.options.store.get(id);
    if (!r?.open || r.open.reference !== ref.reference) return;
    delete r.open;
    await this.options.store.put(r);
  }

  /**
   * The session paid by `reference` ended having used `used` (bytes or seconds): charges the metered steps (at most
   * the ceiling) and closes the charge, once: a second call, or one for a charge already closed, charges nothing.
   * Returns the amount charged by this call.
   */
  async charge(reference: string, used: bigint): Promise<bigint> {
    const id = reference.split(':')[0] ?? '';
    const r = this.options.store.get(id);
    if (!r?.open || r.open.reference !== reference) return 0n;
    const open = r.open;
    const room = r.signedMax - open.base;
    const steps = meteredSteps(used, open.stepSize, room / (open.pricePerStep === 0n ? 1n : open.pricePerStep));
    let price = steps * open.pricePerStep;
    if (price > room) price = room;
    r.charged = open.base + price;
    delete r.open;
    r.idleSince = this.clock.now();
    await this.options.store.put(r);
    this.options.log?.info('batch-settlement session charged', { channel: id, price: price.toString(), ceiling: (room).toString(), steps: steps.toString() });
    try { this.options.onCharged?.(r); } catch { /* the settler's failure is its own */ }
    return price;
  }

  /** Open charges (for the start's reconcile: a charge whose session ended while sluice was down). */
  openCharges(): Array<{ reference: string; channelId: string }> {
    return this.options.store.list().flatMap((r) => (r.open ? [{ reference: r.open.reference, channelId: r.channelId }] : []));
  }
}

function busy(channelId: string): SluiceError {
  return new SluiceError('ERR_BATCH_CHANNEL_BUSY', `channel ${channelId} is paying for a session already; one at a time`,
    { details: { reason: 'invalid_batch_settlement_evm_channel_busy' } });
}

function rejected(reason: string, message: string): SluiceError {
  return new SluiceError('ERR_BATCH_VERIFY_REJECTED', `batch-settlement facilitator refused: ${reason}: ${message}`, { details: { reason } });
}
