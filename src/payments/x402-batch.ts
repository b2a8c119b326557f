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
import type { Log } from '../log.ts';
import { systemClock, type Clock } from '../time.ts';
import { meteredSteps, type BatchChannelStore, type ChannelRecord } from '../escrow/index.ts';
import {
  BATCH_SETTLEMENT_SCHEME, BatchFacilitatorClient, checkChannel, parseBatchPayment, verifyVoucher,
  type Address, type BatchPayment, type ChannelSnapshot, type Hex,
} from '../x402/index.ts';
import type { PaymentContext, PaymentMethod, PaymentRef } from './types.ts';

export const BATCH_METHOD_NAME = 'batch-settlement';

export interface BatchSettlementConfig {
  /** CAIP-2 network and its chain id. */
  network: string;
  chainId: number;
  facilitatorUrl: string;
  /** The channel's receiver (payTo): where settled money goes. */
  receiver: Address;
  /** Signs claims and refunds: sluice's own key (authorizerKey) or the facilitator's advertised address (delegated). */
  receiverAuthorizer: Address;
  /** 0x private key of receiverAuthorizer when sluice signs itself; absent when the facilitator signs (delegated). */
  authorizerKey?: Hex;
  /** Seconds the customer's timed withdrawal waits (900 – 2 592 000): sluice must claim within it. */
  withdrawDelay: number;
  /** Token EIP-712 domain of the plan's asset (the deposit's ERC-3009 signature is under it). */
  tokenName: string;
  tokenVersion: string;
  /** When the unused balance goes back: at the end of each session, after `refundIdleMs` without a session, or never unasked. */
  refund: 'at-end' | 'idle' | 'on-request';
  refundIdleMs: number;
  /** A voucher of an EOA payerAuthorizer is checked locally if the mirrored balance is younger than this; else /verify. */
  mirrorFreshMs: number;
}

export interface BatchMethodOptions {
  store: BatchChannelStore;
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
  private readonly clock: Clock;

  constructor(private config: BatchSettlementConfig, private readonly options: BatchMethodOptions) {
    this.clock = options.clock ?? systemClock;
    this.client = new BatchFacilitatorClient({ url: config.facilitatorUrl, timeoutMs: options.timeoutMs ?? 15_000, ...(options.fetch && { fetch: options.fetch }) });
    if (config.authorizerKey && privateKeyToAccount(config.authorizerKey).address.toLowerCase() !== config.receiverAuthorizer.toLowerCase()) {
      throw new SluiceError('ERR_CONFIG_INVALID', 'batch-settlement authorizer key is not the receiverAuthorizer\'s');
    }
  }

  get facilitator(): BatchFacilitatorClient { return this.client; }
  get settings(): BatchSettlementConfig { return this.config; }

  /** The payment requirements this router offers for `price` of `asset` (what a 402 would carry, and /verify takes). */
  requirements(asset: string, price: bigint): Record<string, unknown> {
    const c = this.config;
    return {
      scheme: BATCH_SETTLEMENT_SCHEME, network: c.network, amount: price.toString(), asset, payTo: c.receiver, maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: c.receiverAuthorizer, withdrawDelay: c.withdrawDelay, name: c.tokenName, version: c.tokenVersion },
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
    checkChannel(payment, { chainId: c.chainId, receiver: c.receiver, receiverAuthorizer: c.receiverAuthorizer, token: ctx.quote.asset as Address, withdrawDelay: c.withdrawDelay });
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
      const request = { paymentPayload: payment.raw, paymentRequirements: this.requirements(ctx.quote.asset, ctx.quote.price) };
      let snapshot: ChannelSnapshot;
      const fresh = known && local === 'valid' && payment.depositAmount === null && known.withdrawRequestedAt === 0
        && this.clock.now() - known.syncedAt <= this.config.mirrorFreshMs && ceiling <= known.balance;
      if (fresh) {
        snapshot = { balance: known.balance, totalClaimed: known.totalClaimed, withdrawRequestedAt: 0, refundNonce: known.refundNonce };
      } else if (payment.type === 'deposit') {
        snapshot = await this.deposit(payment, request);
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
  private async deposit(payment: BatchPayment, request: { paymentPayload: Record<string, unknown>; paymentRequirements: Record<string, unknown> }): Promise<ChannelSnapshot> {
    const v = await this.client.verify(request);
    if (v.ok) {
      const s = await this.client.settle(request);
      if (s.status === 'settled') {
        return s.snapshot ?? { ...v.snapshot, balance: v.snapshot.balance + (payment.depositAmount ?? 0n) };
      }
      this.options.log?.warn('batch-settlement deposit not confirmed; asking the channel', { channel: payment.voucher.channelId,
        reason: s.status === 'failed' ? s.reason : s.message });
    }
    const asVoucher = { ...payment.raw, payload: { type: 'voucher', channelConfig: (payment.raw.payload as Record<string, unknown>).channelConfig,
      voucher: (payment.raw.payload as Record<string, unknown>).voucher } };
    const again = await this.client.verify({ ...request, paymentPayload: asVoucher });
    if (again.ok) return again.snapshot;
    if (!v.ok) throw rejected(v.reason, v.message);
    throw new SluiceError('ERR_BATCH_DEPOSIT_PENDING', 'the deposit is not in the channel (yet): send the same payload again to ask',
      { details: { reason: again.reason } });
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
