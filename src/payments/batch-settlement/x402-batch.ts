/**
 * Payment method `batch-settlement`: x402's batch-settlement scheme with sluice as the spec's server
 * (docs/batch-settlement.md). A purchase is one paid request: the customer's voucher raises the channel's signed
 * ceiling (`nextCeiling`: charged + price, the spec's cumulative rule, and always above every ceiling signed before
 * on the channel, so a voucher pays for one purchase only), the session is granted the quote's allotment (so the gate
 * can never run past what the purchase covers), and when the session ends sluice charges what the meter counted —
 * the metered steps × price per step, never above what this purchase covers (charged before it + its price). The
 * unused part is never claimed: it stays in the customer's channel for the next session or comes back by refund
 * (x402-batch-settler.ts claims, settles and refunds).
 *
 * Order, each step refusing before the next can move money:
 *   parse → the channel is ours (config hash, receiver, receiverAuthorizer, token = plan asset, withdrawDelay) →
 *   the voucher's signature (payerAuthorizer: ECDSA low-s here; a payer-signed one: the facilitator's /verify) →
 *   cumulative = nextCeiling (a replayed voucher is below it: the corrective 402) → precheck announces
 *   `channelId:ceiling` → authorize: /verify (a deposit: the purchase's intent on flash — channel, ceiling, device,
 *   payload — then /settle, which moves the customer's money into their own channel, not to the router) → the voucher
 *   and the open charge on flash, the intent dropped in the same write → granted. While a channel's intent stands, only
 *   its device buys on the channel (x402-batch-intent.ts).
 */
import { SluiceError } from '../../errors.ts';
import type { BatchSettlementConfig } from '../../config/index.ts';
import { systemClock, type Clock } from '../../time.ts';
import type { BatchChannelStore, ChannelRecord, PurchaseIntent } from './batch-channels.ts';
import {
  BatchFacilitatorClient,
  checkChannel,
  evm,
  parseBatchPayment,
  verifyVoucher,
  type Address,
  type BatchPayment,
  type ChannelSnapshot,
  type Hex,
} from '../../x402/index.ts';
import type { Log } from '../../log.ts';
import type { PaymentContext, PaymentMethod, PaymentRef } from '../types.ts';
import { X402Purchase } from '../x402-purchase.ts';
import {
  channelRecordOf,
  channelView,
  requestRefund,
  type ChannelView,
  type RefundOutcome,
} from './x402-batch-refund.ts';

export type { RefundOutcome } from './x402-batch-refund.ts';
import { intentOf, pendingElsewhere, voucherOnly } from './x402-batch-intent.ts';
import {
  batchReference,
  batchRequirements,
  busy,
  channelOfReference,
  cumulativeMismatch,
  nextCeiling,
  rejected,
  withdrawing,
} from './x402-batch-rules.ts';
import { ChannelLocks } from './x402-batch-locks.ts';
import { acceptedRecord, sessionCharge } from './x402-batch-charges.ts';
import { IntentFate } from './x402-batch-intent-fate.ts';
import { PurchaseAnswers, purchaseSettlement } from './x402-batch-answers.ts';
import { stopController } from '../../stop-signal.ts';
import { BATCH_METHOD_NAME } from './method-name.ts';

export type { BatchSettlementConfig };

// Where importers (and tests) take it from.
export { batchReference } from './x402-batch-rules.ts';

/**
 * A voucher of an EOA payerAuthorizer is checked locally (no /verify) while the mirrored channel is younger than this.
 */
export const MIRROR_FRESH_MS = 30_000;

export interface BatchMethodOptions {
  store: BatchChannelStore;
  /**
   * 0x private key of receiverAuthorizer when sluice signs claims and refunds itself; absent: the facilitator signs
   * (delegated).
   */
  authorizerKey?: Hex;
  /** Overrides MIRROR_FRESH_MS (tests: 0, always /verify). */
  mirrorFreshMs?: number;
  log?: Log;
  timeoutMs?: number;
  clock?: Clock;
  /** A charge was written: the settler batches its claim. */
  onCharged?: (record: ChannelRecord) => void;
  /**
   * Whether a live session holds this payment reference (the sessions' view). A voucher for a channel with an open
   * charge tops that session up only when its session is live; absent: no top-ups (the channel is busy).
   */
  isLive?: (reference: string) => boolean;
  /** A customer asked for a refund (on flash): runs the settler's pass; resolves when it is over (done or not). */
  onRefundRequested?: () => Promise<unknown>;
}

type BatchRequest = { paymentPayload: Record<string, unknown>; paymentRequirements: Record<string, unknown> };
type BatchVerifyOutcome = Awaited<ReturnType<BatchFacilitatorClient['verify']>>;

/**
 * What the channel holds for a purchase: `snapshot` from the fresh mirror or /verify, or a deposit's /verify verdict
 * (`deposit`), whose /settle says the rest. `known`: the channel's record as the purchase found it, holding it.
 */
type BatchVerdict = {
  known: ChannelRecord | undefined;
  request: BatchRequest;
  fresh: boolean;
} & ({ snapshot: ChannelSnapshot; deposit?: undefined } | { deposit: BatchVerifyOutcome; snapshot?: undefined });

/** `purchase`: the channel's purchase number this voucher takes; `topUp`: it raises the open session's ceiling. */
interface Checked {
  payment: BatchPayment;
  local: 'valid' | 'needs-facilitator';
  purchase: number;
  topUp: boolean;
}

export class BatchSettlementMethod implements PaymentMethod {
  readonly name = BATCH_METHOD_NAME;
  readonly adminOnly = false;
  private client: BatchFacilitatorClient;
  /** The purchase pipeline with this scheme's steps; it holds the channel (the money steps' locks). */
  private readonly purchase: X402Purchase<Checked, BatchVerdict, BatchVerdict>;
  /** Channels a money step is working on: the spec serializes per channel. */
  private readonly locks = new ChannelLocks();
  /** Recent purchases by payment reference, for the LAN endpoint's PAYMENT-RESPONSE. */
  private readonly answers = new PurchaseAnswers();
  private readonly clock: Clock;
  /** The purchase intents standing on channels (x402-batch-intent-fate.ts). */
  private readonly intents: IntentFate;
  /**
   * Ends the facilitator exchanges in flight (purchases, the settler's claims and refunds, the watch) at close(): a
   * facilitator that holds a request must not hold the daemon's stop past procd's window. An exchange cut so is an
   * exchange without an answer, whose money state is on flash already (a deposit's intent, a charge above its claim)
   * and is asked about again at the next start.
   */
  private readonly stopping = stopController();

  constructor(
    private config: BatchSettlementConfig,
    private readonly options: BatchMethodOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.intents = new IntentFate(this, options.store, this.clock, options.log);
    this.purchase = new X402Purchase(
      {
        check: (ctx) => this.check(ctx),
        holdKey: (c) => c.payment.voucher.channelId,
        held: (c) => busy(c.payment.voucher.channelId),
        earlier: (ctx, c) => this.stillAsChecked(ctx, c),
        verify: (ctx, c) => this.verifyVoucher(ctx, c),
        record: (ctx, c, verdict) => this.recordIntent(ctx, c, verdict),
        act: (ctx, c, verdict) => this.accept(ctx, c, verdict),
      },
      this.locks,
    );
    this.client = this.clientFor(config);
    if (
      options.authorizerKey &&
      evm().privateKeyToAccount(options.authorizerKey).address.toLowerCase() !== config.receiverAuthorizer.toLowerCase()
    ) {
      throw new SluiceError('ERR_CONFIG_INVALID', "batch-settlement authorizer key is not the receiverAuthorizer's");
    }
  }

  private clientFor(config: BatchSettlementConfig): BatchFacilitatorClient {
    return new BatchFacilitatorClient({
      url: config.facilitatorUrl,
      timeoutMs: this.options.timeoutMs ?? config.timeoutMs,
      signal: this.stopping.signal,
    });
  }

  /** The daemon stops: every facilitator exchange in flight ends now (as a lost answer: see `stopping`). */
  close(): void {
    this.stopping.abort();
  }

  get isClosed(): boolean {
    return this.stopping.signal.aborted;
  }

  get facilitator(): BatchFacilitatorClient {
    return this.client;
  }
  get settings(): BatchSettlementConfig {
    return this.config;
  }
  get authorizerKey(): Hex | undefined {
    return this.options.authorizerKey;
  }

  /** A reload: facilitator, addresses, delay and refund policy apply to the next purchase and pass. */
  reconfigure(config: BatchSettlementConfig): void {
    this.config = config;
    this.client = this.clientFor(config);
  }

  /** The payment requirements this router offers for `price` of `asset` (x402-batch-rules.ts). */
  requirements(asset: string, price: bigint, accepted?: Record<string, unknown>): Record<string, unknown> {
    return batchRequirements(this.config, asset, price, accepted);
  }

  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const { payment } = await this.purchase.checked(ctx);
    return { reference: batchReference(payment.voucher.channelId, payment.voucher.maxClaimableAmount) };
  }

  /**
   * Takes the channel for a money step that must not overlap a purchase (the settler's refund): false when a
   * purchase holds it. The spec serializes per channel; a refund computed while a voucher is being accepted would
   * leave that voucher's ceiling above the balance.
   */
  lockChannel(channelId: string): boolean {
    return this.locks.lock(channelId);
  }

  unlockChannel(channelId: string): void {
    this.locks.unlock(channelId);
  }

  /** A top-up of the channel's open session: the same device, its session live, the same price per step. */
  private topsUp(r: ChannelRecord, ctx: PaymentContext): boolean {
    const open = r.open;
    return (
      open !== undefined &&
      this.options.isLive?.(open.reference) === true &&
      open.mac === ctx.request.mac &&
      open.pricePerStep === ctx.quote.pricePerStep &&
      open.stepSize === ctx.quote.stepSize
    );
  }

  private async check(ctx: PaymentContext): Promise<Checked> {
    const c = this.config;
    const payment = parseBatchPayment(ctx.request.payment?.payload);
    // A voucher binds a purchase by raising the ceiling (nextCeiling): a purchase of price 0 raises nothing.
    if (ctx.quote.price <= 0n)
      throw new SluiceError(
        'ERR_BATCH_PAYLOAD_INVALID',
        `plan ${ctx.quote.plan} costs nothing: it is not sold by batch-settlement`,
      );
    if (payment.network !== c.network)
      throw new SluiceError('ERR_X402_NETWORK_MISMATCH', `network ${payment.network} is not ${c.network}`);
    checkChannel(payment, {
      chainId: c.chainId,
      receiver: c.receiver as Address,
      receiverAuthorizer: c.receiverAuthorizer as Address,
      token: ctx.quote.asset as Address,
      withdrawDelay: c.withdrawDelay,
    });
    const local = await verifyVoucher(payment.config, payment.voucher, c.chainId);
    await this.intents.refuseIfIntendedElsewhere(payment.voucher.channelId, ctx.request.mac);
    // Checked against the channel as the money step holding it leaves it (a refund lowers the balance).
    if (!(await this.locks.free(payment.voucher.channelId.toLowerCase()))) throw busy(payment.voucher.channelId);
    const r = this.options.store.get(payment.voucher.channelId);
    const topUp = r !== undefined && this.topsUp(r, ctx);
    if (r?.open && !topUp) throw busy(r.channelId);
    // A channel sluice has no record of starts from what is claimed on chain (the spec's server-state-loss baseline):
    // checked again in authorize, once /verify has said what that is. A top-up raises the open ceiling.
    const expected = nextCeiling(r, ctx.quote.price);
    if (r && payment.voucher.maxClaimableAmount !== expected) {
      throw cumulativeMismatch(r, expected, payment.voucher.maxClaimableAmount, expected - ctx.quote.price);
    }
    return { payment, local, purchase: (r?.purchases ?? 0) + 1, topUp };
  }

  /**
   * The x402 purchase pipeline (x402-purchase.ts), holding the channel (the spec serializes per channel): the voucher
   * checked against the channel as it stands now, the facilitator's /verify (or the fresh mirror's word), a deposit's
   * intent on flash before its /settle, then the voucher and the open charge on flash.
   */
  authorize(ctx: PaymentContext): Promise<PaymentRef> {
    return this.purchase.authorize(ctx);
  }

  /** Another purchase (or a refund) went through since precheck: the voucher was checked against a state gone. */
  private async stillAsChecked(ctx: PaymentContext, { payment, purchase, topUp }: Checked): Promise<undefined> {
    const id = payment.voucher.channelId;
    const known = this.options.store.get(id);
    if ((known?.purchases ?? 0) + 1 !== purchase || (known?.open !== undefined) !== topUp) throw busy(id);
    const intent = this.options.store.intent(id);
    if (intent && intent.mac !== ctx.request.mac) throw pendingElsewhere(intent);
    return undefined;
  }

  /**
   * What the channel holds: the mirror when it is fresh and the voucher was checked here; else the facilitator's
   * /verify (a deposit's verdict is kept whatever it says: a deposit that landed before verifies as a plain voucher).
   */
  private async verifyVoucher(ctx: PaymentContext, { payment, local }: Checked): Promise<BatchVerdict> {
    const known = this.options.store.get(payment.voucher.channelId);
    const request = {
      paymentPayload: payment.raw,
      paymentRequirements: this.requirements(
        ctx.quote.asset,
        ctx.quote.price,
        payment.raw.accepted as Record<string, unknown>,
      ),
    };
    if (
      known &&
      local === 'valid' &&
      payment.depositAmount === null &&
      known.withdrawRequestedAt === 0 &&
      this.clock.now() - known.syncedAt <= (this.options.mirrorFreshMs ?? MIRROR_FRESH_MS) &&
      payment.voucher.maxClaimableAmount <= known.balance
    ) {
      const { balance, totalClaimed, refundNonce } = known;
      return { known, request, fresh: true, snapshot: { balance, totalClaimed, withdrawRequestedAt: 0, refundNonce } };
    }
    const v = await this.client.verify(request);
    if (payment.type === 'deposit') {
      // Nothing is deposited into a channel the customer is withdrawing from.
      if (v.ok && v.snapshot.withdrawRequestedAt !== 0)
        throw withdrawing(payment.voucher.channelId, v.snapshot.withdrawRequestedAt);
      return { known, request, fresh: false, deposit: v };
    }
    if (!v.ok) throw rejected(v.reason, v.message);
    return { known, request, fresh: false, snapshot: v.snapshot };
  }

  /** Durable before acting: whose deposit this is, before /settle moves the money (a kill -9 after it finds this). */
  private async recordIntent(ctx: PaymentContext, { payment }: Checked, verdict: BatchVerdict): Promise<BatchVerdict> {
    if (verdict.deposit?.ok) {
      await this.options.store.putIntent(
        intentOf(payment, {
          mac: ctx.request.mac,
          asset: ctx.quote.asset,
          price: ctx.quote.price,
          at: this.clock.now(),
        }),
      );
    }
    return verdict;
  }

  /** A deposit's /settle, then the voucher against what the channel holds, and the voucher and its charge on flash. */
  private async accept(ctx: PaymentContext, checked: Checked, verdict: BatchVerdict): Promise<PaymentRef> {
    const { payment, purchase, topUp } = checked;
    const { known, fresh } = verdict;
    const id = payment.voucher.channelId;
    let snapshot: ChannelSnapshot;
    let transaction = '';
    if (verdict.deposit) {
      const landed = await this.deposit(payment, verdict.request, verdict.deposit);
      snapshot = landed.snapshot;
      transaction = landed.transaction ?? '';
    } else snapshot = verdict.snapshot;
    if (snapshot.withdrawRequestedAt !== 0) {
      // A voucher now could not be claimed in time. Read again: a session this tops up may have ended meanwhile.
      const current = this.options.store.get(id);
      if (current)
        await this.options.store.put({
          ...current,
          withdrawRequestedAt: snapshot.withdrawRequestedAt,
          syncedAt: this.clock.now(),
        });
      throw withdrawing(id, snapshot.withdrawRequestedAt);
    }
    const { record, reference, base } = acceptedRecord({
      payment,
      known,
      snapshot,
      fresh,
      quote: ctx.quote,
      mac: ctx.request.mac,
      at: ctx.now,
      now: this.clock.now(),
      purchase,
      topUp,
      network: this.config.network,
      chainId: this.config.chainId,
    });
    // The voucher and the open charge on flash before the session is granted: a crash after this leaves a voucher
    // sluice can claim for whatever the session used, never a session nothing pays for. The channel's intent (this
    // device's: another was refused above) is this purchase: it goes in the same write.
    await this.options.store.put(record, { resolvesIntent: true });
    this.answers.remember(reference, { transaction, base });
    return {
      method: this.name,
      reference,
      amount: ctx.quote.price,
      asset: ctx.quote.asset,
      at: ctx.now,
      steps: ctx.quote.steps,
    };
  }

  /**
   * A deposit's /settle (the facilitator submits it; the money goes into the customer's channel), its intent on flash
   * already. A deposit whose earlier settle landed (a lost answer, a crash) cannot land twice (its ERC-3009 nonce is
   * spent): if /settle says no, or /verify refused it, the same voucher is verified as a plain voucher, which holds
   * exactly when the money is there.
   */
  private async deposit(
    payment: BatchPayment,
    request: BatchRequest,
    v: BatchVerifyOutcome,
  ): Promise<{ snapshot: ChannelSnapshot; transaction?: string }> {
    if (v.ok) {
      const s = await this.client.settle(request);
      if (s.status === 'settled') {
        return {
          snapshot: s.snapshot ?? { ...v.snapshot, balance: v.snapshot.balance + (payment.depositAmount ?? 0n) },
          transaction: s.transaction,
        };
      }
      this.options.log?.warn('batch-settlement deposit not confirmed; asking the channel', {
        channel: payment.voucher.channelId,
        reason: s.status === 'failed' ? s.reason : s.message,
      });
    }
    const again = await this.client.verify({ ...request, paymentPayload: voucherOnly(payment.raw) });
    if (again.ok) return { snapshot: again.snapshot };
    if (!v.ok) throw rejected(v.reason, v.message);
    throw new SluiceError(
      'ERR_BATCH_DEPOSIT_PENDING',
      'the deposit is not in the channel (yet): send the same payload again to ask',
      { details: { reason: again.reason } },
    );
  }

  /**
   * Whether an intent's money is in the channel (x402-batch-intent-fate.ts): landed, dropped, or it stands.
   */
  resolveIntent(intent: PurchaseIntent): Promise<'landed' | 'dropped' | 'pending'> {
    return this.intents.resolveIntent(intent);
  }

  /** At start: every purchase intent a crash left is asked about once (x402-batch-intent-fate.ts). */
  reconcileIntents(): Promise<void> {
    return this.intents.reconcileIntents();
  }

  /**
   * The spec's settle response for the voucher paid by `reference` (the LAN endpoint's PAYMENT-RESPONSE;
   * x402-batch-answers.ts), or null when sluice has no such channel.
   */
  settlementOf(reference: string): Record<string, unknown> | null {
    const id = channelOfReference(reference);
    const r = this.options.store.get(id);
    if (!r) return null;
    return purchaseSettlement(r, this.answers.get(reference));
  }

  /** What sluice knows of a channel (ERR_INVALID_ARGUMENT, ERR_BATCH_CHANNEL_UNKNOWN). */
  channel(id: unknown): ChannelView {
    return channelView(channelRecordOf(this.options.store, id), this.config.refund);
  }

  /**
   * The channel as the money step holding it leaves it (a refund or a purchase out; waits as a purchase does, then
   * answers what is known): the pay page sizes a top-up deposit from this balance, and a balance read while a refund
   * has landed on chain but not yet here would make the deposit too small for the ceiling it signs.
   */
  async settledChannel(id: unknown): Promise<ChannelView> {
    if (typeof id === 'string') await this.locks.free(id.toLowerCase());
    return this.channel(id);
  }

  /**
   * The customer's refund request (x402-batch-refund.ts): on flash, then the settler's pass; answers the channel and,
   * when the refund is done, the spec's settle response (the LAN endpoint's PAYMENT-RESPONSE).
   */
  requestRefund(payload: unknown): Promise<RefundOutcome> {
    return requestRefund(payload, {
      store: this.options.store,
      terms: this.config,
      now: this.clock.now(),
      // A payer-signed voucher (no payerAuthorizer; maybe a smart wallet): the facilitator verifies the signature.
      payerSigned: async (raw, token) =>
        (await this.client.verify({ paymentPayload: raw, paymentRequirements: this.requirements(token, 0n) })).ok,
      ...(this.options.onRefundRequested && { pass: this.options.onRefundRequested }),
      ...(this.options.log && { log: this.options.log }),
    });
  }

  /** The session could not be granted: the open charge goes (the voucher stays: it is the channel's latest). */
  async release(ref: PaymentRef): Promise<void> {
    const id = channelOfReference(ref.reference);
    const r = this.options.store.get(id);
    if (!r?.open || r.open.reference !== ref.reference) return;
    delete r.open;
    await this.options.store.put(r);
  }

  /**
   * The session paid by `reference` ended having used `used` (bytes or seconds): charges the metered steps (at most
   * what its purchase and top-ups paid for, never above the ceiling) and closes the charge, once: a second call, or one
   * for a charge already closed, charges nothing. Returns the amount charged by this call.
   */
  async charge(reference: string, used: bigint): Promise<bigint> {
    const id = channelOfReference(reference);
    const r = this.options.store.get(id);
    if (!r?.open || r.open.reference !== reference) return 0n;
    const { price, room, steps } = sessionCharge({ ...r, open: r.open }, used);
    r.charged = r.open.base + price;
    delete r.open;
    r.idleSince = this.clock.now();
    await this.options.store.put(r);
    this.options.log?.info('batch-settlement session charged', {
      channel: id,
      price: price.toString(),
      ceiling: room.toString(),
      steps: steps.toString(),
    });
    try {
      this.options.onCharged?.(r);
    } catch {
      /* the settler's failure is its own */
    }
    return price;
  }

  /** Open charges (for the start's reconcile: a charge whose session ended while sluice was down). */
  openCharges(): Array<{ reference: string; channelId: string }> {
    return this.options.store
      .list()
      .flatMap((r) => (r.open ? [{ reference: r.open.reference, channelId: r.channelId }] : []));
  }
}
