/**
 * Payment method `cashu`: the customer pays with a Cashu token (`payment.token`, cashuA… or
 * cashuB…); sluice swaps its proofs at the mint for its own (NUT-03) before the session is granted. docs/tollgate.md
 * has the flow and the crash table.
 *
 * Order, each step refusing before the next can move money:
 *   quoteFor: mint accepted, unit, decode (V4 short ids through the mint's keysets), NUT-10 locks, bounds, steps from
 *   (value − NUT-02 input fees) / price_per_step within min/max steps → precheck: the mint's keysets read now (a mint
 *   down is refused here), the reference (hash of the sorted Ys: one per set of proofs, from any device), applied or in
 *   flight, max_balance → authorize: the intent with the swap's outputs, secrets and blinding factors on flash (fsync)
 *   → /v1/swap → the new proofs on flash → the merchant grants the session.
 * Never granted on a checkstate or a DLEQ: only proofs of our own, unblinded from the mint's signatures, are payment.
 * A swap without an answer within ANSWER_WITHIN_MS is not a failure: the purchase answers ERR_CASHU_PENDING, the swap
 * goes on, and its session is granted late when it lands. Every open intent is resolved at start and every few
 * seconds while any is open (resolve-intent.ts: the crash table).
 */
import { loadCashuLib, unblindAll } from '../../cashu/index.ts';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { Config, PricingPlan, TollgateConfig } from '../../config/index.ts';
import type { Grant, PaymentRef, Session } from '../../sessions/index.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../../time.ts';
import { grantLate } from '../late-grant.ts';
import { PurchaseChecks } from '../purchase-checks.ts';
import type { PaymentContext, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from '../types.ts';
import { BalanceRoom } from './balance-room.ts';
import { cashuStats, IntentLooks, looksAgain, recordLook } from './intent-looks.ts';
import { InvoiceSlots } from './invoice-slots.ts';
import { isLightning, loggedRef, resolveQuote, type LightningPort } from './lightning.ts';
import { MintReads } from './mint-reads.ts';
import { pending, resolveOpen, swapRefusal, type SwapOutcome } from './resolve-intent.ts';
import type { SwapIntent } from './ledger-state.ts';
import { CashuStore } from './store.ts';
import {
  acceptedMint,
  paymentOf,
  pricedToken,
  satQuote,
  stepsFor,
  storedQuote,
  tokenValue,
  tollgatePlan,
  type PricedToken,
} from './token-pricing.ts';
import { stopController } from '../../stop-signal.ts';

/** A purchase answers within this (TollGate's reseller gives up at 30 s and swaps its own token back). */
export const ANSWER_WITHIN_MS = 10_000;
/** A landed swap handed to the merchant and not seen applied after this is granted late (the activation failed). */
const HANDED_OUT_GRACE_MS = 60_000;

export interface CashuSessionsPort {
  activate(grant: Grant): Promise<{ session: Session; toppedUp: boolean }>;
  isApplied(payment: Pick<PaymentRef, 'method' | 'reference'> | null): boolean;
  paymentReferences(method: string): ReadonlyMap<string, number>;
}

export interface CashuMethodOptions {
  config: Config;
  sessions: CashuSessionsPort;
  log?: Log;
  clock?: Clock;
  timers?: Timers;
  /** Opened at the daemon's start (PluginHost.atStart): the ledger's reads are synchronous. */
  atStart?: boolean;
}

export class CashuMethod implements PaymentMethod, LightningPort {
  readonly name = 'cashu';
  readonly adminOnly = false;
  readonly clock: Clock;
  private readonly timers: Timers;
  private readonly stopping = stopController();
  /** The mints' clients, keysets and keys: what a swap or an invoice waits on first. */
  readonly mints: MintReads;
  private readonly checked = new PurchaseChecks<PricedToken>();
  /** References whose swap or resolution runs now (the resolver leaves them alone). */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Landed references handed to the merchant, and when. */
  private readonly handedOut = new Map<string, number>();
  /** When each open intent is looked at again, and which a silent mint stranded. */
  readonly looks = new IntentLooks(() => this.store);
  /** The invoice places: which invoices hold one, and those held while an invoice is asked for and written. */
  readonly invoiceSlots = new InvoiceSlots((ref) => this.looks.isStranded(ref));
  /** max_balance's room, for tokens and invoices alike. */
  readonly room: BalanceRoom;
  /** The passes again while an intent is open: `background` is the plugin host's to start and stop. */
  readonly again: ReturnType<typeof looksAgain>;
  private resolving: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private config: Config,
    public tollgate: TollgateConfig,
    readonly store: CashuStore,
    readonly options: CashuMethodOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    const [clock, signal, log] = [this.clock, this.stopping.signal, options.log];
    this.mints = new MintReads({ clock, signal, log });
    const [looks, slots] = [this.looks, this.invoiceSlots];
    const [maxBalance, now] = [() => this.tollgate.maxBalance, () => this.clock.now()];
    this.room = new BalanceRoom({ store, looks, slots, maxBalance, now });
    const [pass, halted, endExchanges] = [() => this.pass(), () => this.closed, () => this.endExchanges()];
    this.again = looksAgain({ pass, halted, endExchanges, log: options.log, clock: this.clock, timers: this.timers });
  }

  static async open(options: CashuMethodOptions): Promise<CashuMethod> {
    const tollgate = options.config.tollgate;
    if (!tollgate) throw new SluiceError('ERR_INTERNAL', 'the cashu method opened without a tollgate section');
    // cashu-ts is a chunk of its own (src/cashu/loader.ts): loaded here, before any token is decoded or any intent
    // resolved (the custody's payout and retirement too open after this); ERR_MODULE_LOAD leaves the method out.
    await loadCashuLib();
    const journal = options.sessions.paymentReferences('cashu'); // checked against the ledger (store.ts)
    const store = await CashuStore.open(options.config.main.stateDir, { journal, atStart: options.atStart === true });
    return new CashuMethod(options.config, tollgate, store, options);
  }

  reconfigure(next: Config): void {
    if (!next.tollgate) return;
    [this.config, this.tollgate] = [next, next.tollgate];
  }

  /** Every accepted mint's keysets read now (at start and on reload: quoteFor needs them to price a token). */
  refreshKeysets(): Promise<void> {
    return this.mints.refresh(this.tollgate.mints);
  }

  /** The tollgate plan (ERR_UNKNOWN_PLAN when a reload took it away). */
  plan(): PricingPlan {
    return tollgatePlan(this.config, this.tollgate);
  }

  /**
   * What the token buys on `tollgate.plan`, priced in sat (the plan's own price is the other methods'). Synchronous,
   * so it prices with the keysets read at start or by an earlier purchase; precheck reads them again.
   */
  quoteFor(request: PurchaseRequest, _quote: (input: QuoteInput) => Quote): Quote {
    const mint = acceptedMint(request.payment?.token, this.tollgate);
    const plan = this.plan();
    if (request.plan !== undefined && request.plan !== plan.id) {
      throw new SluiceError(
        'ERR_UNKNOWN_PLAN',
        `cashu sells plan ${plan.id}, not ${String(request.plan).slice(0, 64)}`,
      );
    }
    const keysets = this.mints.known(mint);
    if (!keysets) {
      void this.mints.freshKeysets(mint).catch(() => undefined);
      throw new SluiceError(
        'ERR_CASHU_MINT_UNAVAILABLE',
        `the mint's keysets are not known yet (${mint}); try again in a moment`,
      );
    }
    let net: bigint;
    try {
      net = tokenValue(request.payment.token, keysets, this.tollgate.unit).net;
    } catch (err) {
      // A keyset the cache does not know may be one the mint made since (a rotation): read them again for the retry.
      if (toSluiceError(err).code === 'ERR_CASHU_KEYSET_UNKNOWN')
        void this.mints.freshKeysets(mint).catch(() => undefined);
      throw err;
    }
    return this.quoteOf(stepsFor(net, this.tollgate, plan));
  }

  quoteOf(steps: bigint): Quote {
    return satQuote(this.plan(), this.tollgate, steps);
  }

  /** Whether `ref` was applied: the store's record, or the sessions' ledger (a grant whose mark was not written). */
  applied(ref: string): boolean {
    return this.store.isApplied(ref) || this.options.sessions.isApplied({ method: this.name, reference: ref });
  }

  /** The checks that need the mint (nothing moves): its keysets now, the fees again, replay, the balance cap. */
  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const c = await this.checks(ctx);
    if (this.applied(c.ref)) {
      throw new SluiceError('ERR_PAYMENT_REPLAYED', 'this token was already applied');
    }
    if (this.store.intent(c.ref) || this.inFlight.has(c.ref)) {
      throw new SluiceError(
        'ERR_PAYMENT_IN_PROGRESS',
        'this token is being redeemed; its session shows when the mint answers',
      );
    }
    this.room.ensure(c.net);
    return { reference: c.ref };
  }

  private checks(ctx: PaymentContext): Promise<PricedToken> {
    return this.checked.of(ctx, async (c) => {
      if (this.closed) throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', 'cashu payments are shutting down');
      const t = this.tollgate;
      const mint = acceptedMint(c.request.payment?.token, t);
      const checked = pricedToken(c.request.payment.token, await this.mints.freshKeysets(mint), t.unit);
      // The fee read now may differ from the one quoted: never grant more than the token pays for.
      if (stepsFor(checked.net, t, this.plan()) < c.quote.steps) {
        throw new SluiceError(
          'ERR_CASHU_UNDERPAID',
          "the mint's fees changed: the token buys fewer steps than quoted; nothing was taken",
        );
      }
      return checked;
    });
  }

  async authorize(ctx: PaymentContext): Promise<PaymentRef> {
    const c = await this.checks(ctx);
    const mint = c.token.mint;
    const outputs = await this.mints.outputsFor(mint, c.keysets, this.tollgate.unit, c.net);
    const intent: SwapIntent = {
      ref: c.ref,
      mint,
      mac: ctx.request.mac,
      at: ctx.now,
      inputs: c.token.proofs,
      outputs,
      quote: storedQuote(ctx.quote),
      ...(typeof ctx.request.ip === 'string' && ctx.request.ip !== '' && { ip: ctx.request.ip }),
    };
    // Checked again as it is written (precheck's room may have gone to a payment admitted since). Durable before the
    // swap: a crash while the mint works leaves this for the resolver (checkstate, replay, restore).
    const release = this.room.reserve(c.net);
    try {
      await this.store.beginSwap(intent);
    } finally {
      release();
    }
    const swap = this.track(c.ref, this.swap(intent));
    let waited: TimerHandle | undefined;
    // The 10 s count from the purchase's start (the keysets and keys read before the swap are part of them), with a
    // second at least for the swap itself.
    const wait = Math.max(1000, ANSWER_WITHIN_MS - Math.max(0, this.clock.now() - ctx.now));
    const late = new Promise<'late'>((resolve) => {
      waited = this.timers.setTimeout(() => resolve('late'), wait);
    });
    const first = await Promise.race([swap, late]);
    this.timers.clearTimeout(waited);
    if (first === 'late') {
      // Not a failure: the swap goes on; when it lands the session is granted late (and the resolver covers a crash).
      void swap.then((o) => this.afterSwap(intent, o)).catch(() => this.again.soon());
      throw pending();
    }
    if (first.kind === 'landed') {
      this.handedOut.set(c.ref, this.clock.now());
      this.again.soon();
      return paymentOf(this.name, intent);
    }
    if (first.kind === 'refused') throw first.error;
    this.again.soon();
    throw pending();
  }

  /** A swap that landed after its purchase answered pending: grant it now. */
  private async afterSwap(intent: SwapIntent, outcome: SwapOutcome): Promise<void> {
    if (outcome.kind === 'landed') await this.grant(intent);
    else if (outcome.kind === 'unknown') this.again.soon();
  }

  /** The session could not be granted after the swap: the proofs are held; the resolver grants it later. */
  async release(ref: PaymentRef, reason: Error): Promise<void> {
    this.handedOut.delete(ref.reference);
    this.options.log?.warn('cashu: swapped but not granted; will retry', {
      reference: loggedRef(ref.reference),
      reason: reason.message,
    });
    this.again.soon();
  }

  private track<T>(ref: string, work: Promise<T>): Promise<T> {
    this.inFlight.set(ref, work);
    void work
      .finally(() => {
        if (this.inFlight.get(ref) === work) this.inFlight.delete(ref);
      })
      .catch(() => undefined);
    return work;
  }

  /** One /v1/swap of an intent on flash; lands the proofs (fsync) or drops the intent when the mint applied nothing. */
  private async swap(intent: SwapIntent): Promise<SwapOutcome> {
    const answer = await this.mints.client(intent.mint).swap(intent.inputs, intent.outputs);
    if (answer.kind === 'ok')
      return this.land(
        intent,
        answer.value.map((s) => s.C_),
      );
    if (answer.kind === 'unknown') {
      this.options.log?.warn('cashu: the swap has no answer; resolving', {
        reference: intent.ref,
        reason: answer.message,
      });
      return { kind: 'unknown', message: answer.message };
    }
    // The mint answered (or never saw the request): nothing was applied, the customer's token is as it was.
    await this.store.dropIntent(intent.ref, answer.kind === 'refused' ? `refused ${answer.code}` : 'unsent');
    return { kind: 'refused', error: swapRefusal(intent.mint, answer) };
  }

  private async land(intent: SwapIntent, signatures: readonly string[]): Promise<SwapOutcome> {
    const keys = await this.mints.keysOf(intent.mint, intent.outputs[0]!.id);
    const proofs = unblindAll(intent.outputs, signatures, keys);
    await this.store.landSwap(intent.ref, proofs);
    return { kind: 'landed', proofs };
  }

  private async grant(intent: SwapIntent): Promise<boolean> {
    const q = intent.quote;
    const grant: Grant = {
      mac: intent.mac,
      metric: q.metric,
      allotment: BigInt(q.allotment),
      plan: q.plan,
      payment: paymentOf(this.name, intent),
      ...(intent.ip !== undefined && { ip: intent.ip }),
    };
    const done = await grantLate(
      this.options.sessions,
      grant,
      {
        granted: 'cashu purchase granted after its swap landed',
        failed: 'cashu late grant failed; will retry',
        fields: { reference: loggedRef(intent.ref) },
      },
      { log: this.options.log },
    );
    if (done) {
      this.handedOut.delete(intent.ref);
      await this.store.markApplied(intent.ref);
    }
    return done;
  }

  /**
   * Every open intent to its end (the crash table, docs/tollgate.md): landed → granted late; open → the mint's
   * checkstate of the inputs: UNSPENT → swapped now; SPENT → the identical swap again (NUT-19), else a restore of the
   * stored outputs (NUT-09) → proofs → granted late; nothing restorable → dropped (spent elsewhere first: nothing
   * owed); PENDING or no answer → tried again later (intent-looks.ts: how much later, and when an intent is stranded).
   * Serialised; safe to call any time: every intent (or only `ref`) is looked at now, however long it was to wait.
   */
  async resolvePending(ref?: string): Promise<void> {
    // A pass already running may have passed over it: this look is a fresh one.
    await this.resolving?.catch(() => undefined);
    this.looks.wake(ref);
    return this.pass();
  }

  private pass(): Promise<void> {
    this.resolving ??= this.doResolve().finally(() => {
      this.resolving = undefined;
    });
    return this.resolving;
  }

  private async doResolve(): Promise<void> {
    let open = 0;
    for (const { intent, state } of this.store.openIntents()) {
      const notDue = state === 'open' && !this.looks.due(intent.ref, this.clock.now());
      if (this.inFlight.has(intent.ref) || this.closed || notDue) {
        open++;
        continue;
      }
      try {
        if (state === 'landed') {
          if (this.options.sessions.isApplied({ method: this.name, reference: intent.ref })) {
            this.handedOut.delete(intent.ref);
            await this.store.markApplied(intent.ref);
            continue;
          }
          const handed = this.handedOut.get(intent.ref);
          if (handed !== undefined && this.clock.now() - handed < HANDED_OUT_GRACE_MS) {
            open++;
            continue;
          }
          if (!(await this.grant(intent))) open++;
          continue;
        }
        const port = {
          client: this.mints.client(intent.mint),
          swap: (i: SwapIntent) => this.swap(i),
          land: (i: SwapIntent, sigs: readonly string[]) => this.land(i, sigs),
          store: this.store,
          log: this.options.log,
          now: () => this.clock.now(),
        };
        const outcome = await this.track(
          intent.ref,
          isLightning(intent.ref) ? resolveQuote(intent, port) : resolveOpen(intent, port),
        );
        if (outcome === 'later' || outcome === 'unanswered') {
          open++;
          const [now, holds] = [this.clock.now(), this.room.holds(intent)];
          const look = { answered: outcome === 'later', now, holding: holds, logged: loggedRef, log: this.options.log };
          await recordLook(this.looks, intent, look);
          continue;
        }
        this.looks.forget(intent.ref);
        this.invoiceSlots.forget(intent.ref);
        if (outcome === 'landed' && !(await this.grant(intent))) open++;
      } catch (err) {
        open++;
        this.options.log?.warn('cashu: resolving a swap failed; tried again', {
          reference: loggedRef(intent.ref),
          reason: toSluiceError(err).message,
        });
      }
    }
    if (open > 0) this.again.soon();
  }

  /** ubus stats' `cashu` (intent-looks.ts cashuStats). */
  stats(): Record<string, unknown> {
    const { store, invoiceSlots: slots, looks } = this;
    return cashuStats({ store, slots, looks, now: this.clock.now(), logged: loggedRef });
  }

  /** No more swaps: one in flight ends without an answer (its intent stays on flash, the next start resolves it). */
  private endExchanges(): void {
    this.closed = true;
    this.stopping.abort();
  }

  async close(): Promise<void> {
    this.again.stop();
    this.endExchanges();
    await Promise.allSettled([...this.inFlight.values()]);
    await this.resolving?.catch(() => undefined);
    await this.store.close();
  }
}
