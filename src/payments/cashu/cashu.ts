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
import { loadCashuLib } from '../../cashu/index.ts';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { Config, TollgateConfig } from '../../config/index.ts';
import type { Grant, PaymentRef, Session } from '../../sessions/index.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../../time.ts';
import { grantLate } from '../late-grant.ts';
import { PurchaseChecks } from '../purchase-checks.ts';
import type { PaymentContext, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from '../types.ts';
import { MintHealth } from './mint-health.ts';
import { MintQuoteClient } from '../../cashu/index.ts';
import { cashuStats, IntentLooks, looksAgain, recordLook } from './intent-looks.ts';
import { InvoiceSlots } from './invoice-slots.ts';
import { isLightning, loggedRef, resolveQuote } from './lightning.ts';
import { pending, resolveOpen, swapRefusal, unavailable, type SwapOutcome } from './resolve-intent.ts';
import { stepsCap } from './steps.ts';
import { CashuStore, type SwapIntent } from './store.ts';
import {
  decodeToken,
  inputFee,
  makeOutputs,
  referenceOf,
  splitAmount,
  tokenHeader,
  unblind,
  type DecodedToken,
  type KeysetEntry,
} from '../../cashu/index.ts';
import { stopController } from '../../stop-signal.ts';

/** A purchase answers within this (TollGate's reseller gives up at 30 s and swaps its own token back). */
export const ANSWER_WITHIN_MS = 10_000;
/** A swap's own deadline: it goes on after the purchase answered pending. */
const SWAP_TIMEOUT_MS = 60_000;
/** Keysets, keys, checkstate, restore. */
const READ_TIMEOUT_MS = 5_000;
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
  fetch?: typeof fetch;
}

interface Checked {
  token: DecodedToken;
  keysets: KeysetEntry[];
  net: bigint;
  ref: string;
}

export class CashuMethod implements PaymentMethod {
  readonly name = 'cashu';
  readonly adminOnly = false;
  readonly clock: Clock;
  private readonly timers: Timers;
  private readonly stopping = stopController();
  private readonly clients = new Map<string, MintQuoteClient>();
  private readonly keysets = new Map<string, KeysetEntry[]>();
  private readonly keys = new Map<string, Record<string, string>>();
  private readonly checked = new PurchaseChecks<Checked>();
  /** References whose swap or resolution runs now (the resolver leaves them alone). */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Landed references handed to the merchant, and when. */
  private readonly handedOut = new Map<string, number>();
  /** Sat let in by reserveRoom whose intent is not on flash yet (the store does not count them). */
  private admitting = 0n;
  /** When each open intent is looked at again, and which a silent mint stranded. */
  readonly looks = new IntentLooks(() => this.store);
  /** The invoice places: which invoices hold one, and those held while an invoice is asked for and written. */
  readonly invoiceSlots = new InvoiceSlots((ref) => this.looks.isStranded(ref));
  /** The passes again while an intent is open: `background` is the plugin host's to start and stop. */
  readonly again: ReturnType<typeof looksAgain>;
  private resolving: Promise<void> | undefined;
  private closed = false;
  readonly health = new MintHealth(); // each mint's last answer (ubus cashu_balance; the custody's reads count too)

  private constructor(
    private config: Config,
    public tollgate: TollgateConfig,
    readonly store: CashuStore,
    readonly options: CashuMethodOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
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
    const store = await CashuStore.open(options.config.main.stateDir, { journal });
    return new CashuMethod(options.config, tollgate, store, options);
  }

  reconfigure(next: Config): void {
    if (!next.tollgate) return;
    [this.config, this.tollgate] = [next, next.tollgate];
  }

  client(mint: string): MintQuoteClient {
    let c = this.clients.get(mint);
    if (!c) {
      c = new MintQuoteClient(mint, {
        timeoutMs: READ_TIMEOUT_MS,
        swapTimeoutMs: SWAP_TIMEOUT_MS,
        signal: this.stopping.signal,
        ...(this.options.fetch && { fetch: this.options.fetch }),
      });
      this.clients.set(mint, c);
    }
    return c;
  }

  /** The mint's keysets read now (and cached for quoteFor, which cannot wait for the network). */
  async freshKeysets(mint: string): Promise<KeysetEntry[]> {
    const answer = await this.client(mint).keysets();
    if (answer.kind !== 'ok') throw this.health.failed(mint, this.clock.now(), unavailable(mint, answer));
    this.health.answered(mint, this.clock.now());
    this.keysets.set(mint, answer.value);
    return answer.value;
  }

  /** Reads every accepted mint's keysets (at start: quoteFor needs them to price a token). */
  async refreshKeysets(): Promise<void> {
    await Promise.all(
      this.tollgate.mints.map((m) =>
        this.freshKeysets(m).catch((err: unknown) => {
          this.options.log?.warn("cashu: a mint's keysets cannot be read; its tokens are refused until they can", {
            mint: m,
            reason: toSluiceError(err).message,
          });
        }),
      ),
    );
  }

  /**
   * The token's mint and unit, checked before anything else: a token of another mint is refused without a network call.
   */
  private accepted(text: unknown): { mint: string } {
    const header = tokenHeader(text);
    if (!this.tollgate.mints.includes(header.mint)) {
      throw new SluiceError('ERR_CASHU_MINT_NOT_ACCEPTED', `mint ${header.mint.slice(0, 200)} is not accepted here`, {
        details: { mint: header.mint.slice(0, 200), accepted: [...this.tollgate.mints] },
      });
    }
    if (header.unit !== this.tollgate.unit)
      throw new SluiceError(
        'ERR_CASHU_UNIT',
        `the token is in ${header.unit.slice(0, 16)}; this router takes ${this.tollgate.unit}`,
      );
    return { mint: header.mint };
  }

  /** Decodes against keysets and prices the token: (value − input fees) and the whole steps it buys. */
  private priced(text: unknown, keysets: KeysetEntry[]): Checked {
    const token = decodeToken(text, keysets);
    for (const p of token.proofs) {
      if (keysets.find((k) => k.id === p.id)?.unit !== this.tollgate.unit)
        throw new SluiceError('ERR_CASHU_UNIT', `keyset ${p.id} is not a ${this.tollgate.unit} keyset`);
    }
    const net = token.value - inputFee(token.proofs, keysets);
    return { token, keysets, net, ref: referenceOf(token.proofs) };
  }

  private stepsFor(net: bigint): bigint {
    const t = this.tollgate;
    const steps = net > 0n ? net / t.pricePerStep : 0n;
    if (steps < t.minSteps) {
      throw new SluiceError(
        'ERR_CASHU_UNDERPAID',
        `the token is worth ${net > 0n ? net : 0n} sat after the mint's fees; at ` +
          `least ${t.minSteps * t.pricePerStep} sat buys the minimum of ${t.minSteps} step(s)`,
        { details: { net: (net > 0n ? net : 0n).toString(), min_price: (t.minSteps * t.pricePerStep).toString() } },
      );
    }
    const plan = this.plan();
    const cap = stepsCap(t, plan);
    if (steps > cap) {
      throw new SluiceError('ERR_CASHU_TOO_LARGE', `the token buys ${steps} steps; one purchase buys at most ${cap}`, {
        details: { max_steps: cap.toString() },
      });
    }
    return steps;
  }

  /** The tollgate plan (ERR_UNKNOWN_PLAN when a reload took it away). */
  plan(): Config['pricing'][number] {
    const plan = this.config.pricing.find((p) => p.id === this.tollgate.plan);
    if (!plan) throw new SluiceError('ERR_UNKNOWN_PLAN', `the tollgate plan ${this.tollgate.plan} is not configured`);
    return plan;
  }

  /**
   * What the token buys on `tollgate.plan`, priced in sat (the plan's own price is the other methods'). Synchronous,
   * so it prices with the keysets read at start or by an earlier purchase; precheck reads them again.
   */
  quoteFor(request: PurchaseRequest, _quote: (input: QuoteInput) => Quote): Quote {
    const { mint } = this.accepted(request.payment?.token);
    const plan = this.plan();
    if (request.plan !== undefined && request.plan !== plan.id) {
      throw new SluiceError(
        'ERR_UNKNOWN_PLAN',
        `cashu sells plan ${plan.id}, not ${String(request.plan).slice(0, 64)}`,
      );
    }
    const keysets = this.keysets.get(mint);
    if (!keysets) {
      void this.freshKeysets(mint).catch(() => undefined);
      throw new SluiceError(
        'ERR_CASHU_MINT_UNAVAILABLE',
        `the mint's keysets are not known yet (${mint}); try again in a moment`,
      );
    }
    let net: bigint;
    try {
      net = this.priced(request.payment.token, keysets).net;
    } catch (err) {
      // A keyset the cache does not know may be one the mint made since (a rotation): read them again for the retry.
      if (toSluiceError(err).code === 'ERR_CASHU_KEYSET_UNKNOWN') void this.freshKeysets(mint).catch(() => undefined);
      throw err;
    }
    return this.quoteOf(this.stepsFor(net));
  }

  quoteOf(steps: bigint): Quote {
    const plan = this.plan();
    return {
      plan: plan.id,
      metric: plan.metric,
      steps,
      allotment: steps * plan.stepSize,
      price: steps * this.tollgate.pricePerStep,
      asset: 'sat',
      currency: 'sat',
      decimals: 0,
      stepSize: plan.stepSize,
      pricePerStep: this.tollgate.pricePerStep,
      ...(plan.timeLimit !== undefined && { timeLimit: plan.timeLimit }),
      ...(plan.devices !== undefined && { devices: plan.devices }),
    };
  }

  /** The checks that need the mint (nothing moves): its keysets now, the fees again, replay, the balance cap. */
  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const c = await this.checks(ctx);
    if (this.store.isApplied(c.ref) || this.options.sessions.isApplied({ method: this.name, reference: c.ref })) {
      throw new SluiceError('ERR_PAYMENT_REPLAYED', 'this token was already applied');
    }
    if (this.store.intent(c.ref) || this.inFlight.has(c.ref)) {
      throw new SluiceError(
        'ERR_PAYMENT_IN_PROGRESS',
        'this token is being redeemed; its session shows when the mint answers',
      );
    }
    this.ensureRoom(c.net);
    return { reference: c.ref };
  }

  /** Refuses `sat` more when it would pass max_balance (a token here, an invoice in lightning.ts). */
  ensureRoom(sat: bigint): void {
    if (this.store.exposure((i) => this.holdsRoom(i)) + this.admitting + sat > this.tollgate.maxBalance) {
      throw new SluiceError(
        'ERR_CASHU_BALANCE_FULL',
        `this router holds as much ecash as it may (${this.tollgate.maxBalance} sat); pay again after its payout`,
      );
    }
  }

  /** Whether an open intent counts against max_balance: not stranded, and an invoice only while it holds a place. */
  holdsRoom(intent: SwapIntent): boolean {
    if (isLightning(intent.ref)) return this.invoiceSlots.holds(intent, this.clock.now());
    return !this.looks.isStranded(intent.ref);
  }

  /**
   * ensureRoom, and `sat` counted against max_balance until the release (call it once the payment's intent is on
   * flash, or it failed): payments checked at once were each let in by a store that held none of them yet.
   */
  reserveRoom(sat: bigint): () => void {
    this.ensureRoom(sat);
    this.admitting += sat;
    let held = true;
    return () => {
      if (held) this.admitting -= sat;
      held = false;
    };
  }

  private checks(ctx: PaymentContext): Promise<Checked> {
    return this.checked.of(ctx, async (c) => {
      if (this.closed) throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', 'cashu payments are shutting down');
      const { mint } = this.accepted(c.request.payment?.token);
      const checked = this.priced(c.request.payment.token, await this.freshKeysets(mint));
      // The fee read now may differ from the one quoted: never grant more than the token pays for.
      if (this.stepsFor(checked.net) < c.quote.steps) {
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
    const active = c.keysets.find((k) => k.active && k.unit === this.tollgate.unit);
    if (!active)
      throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', `the mint lists no active ${this.tollgate.unit} keyset`);
    const keys = await this.keysOf(mint, active.id);
    const outputs = makeOutputs(
      splitAmount(
        c.net,
        Object.keys(keys).map((a) => BigInt(a)),
      ),
      active.id,
    );
    const q = ctx.quote;
    const intent: SwapIntent = {
      ref: c.ref,
      mint,
      mac: ctx.request.mac,
      at: ctx.now,
      inputs: c.token.proofs,
      outputs,
      quote: {
        plan: q.plan,
        metric: q.metric,
        steps: q.steps.toString(),
        allotment: q.allotment.toString(),
        price: q.price.toString(),
        stepSize: q.stepSize.toString(),
      },
      ...(typeof ctx.request.ip === 'string' && ctx.request.ip !== '' && { ip: ctx.request.ip }),
    };
    // Checked again as it is written (precheck's room may have gone to a payment admitted since). Durable before the
    // swap: a crash while the mint works leaves this for the resolver (checkstate, replay, restore).
    const release = this.reserveRoom(c.net);
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
      return this.refOf(intent);
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

  async keysOf(mint: string, id: string): Promise<Record<string, string>> {
    const known = this.keys.get(id);
    if (known) return known;
    const answer = await this.client(mint).keys(id);
    if (answer.kind !== 'ok') throw unavailable(mint, answer);
    this.keys.set(id, answer.value);
    return answer.value;
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
    const answer = await this.client(intent.mint).swap(intent.inputs, intent.outputs);
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
    const keys = await this.keysOf(intent.mint, intent.outputs[0]!.id);
    const proofs = intent.outputs.map((o, i) => unblind(o, signatures[i]!, keys));
    await this.store.landSwap(intent.ref, proofs);
    return { kind: 'landed', proofs };
  }

  private refOf(intent: SwapIntent): PaymentRef {
    const net = intent.outputs.reduce((s, o) => s + BigInt(o.amount), 0n);
    return {
      method: this.name,
      reference: intent.ref,
      amount: net,
      asset: 'sat',
      at: intent.at,
      steps: BigInt(intent.quote.steps),
    };
  }

  private async grant(intent: SwapIntent): Promise<boolean> {
    const q = intent.quote;
    const grant: Grant = {
      mac: intent.mac,
      metric: q.metric,
      allotment: BigInt(q.allotment),
      plan: q.plan,
      payment: this.refOf(intent),
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
          client: this.client(intent.mint),
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
          const [now, holds] = [this.clock.now(), this.holdsRoom(intent)];
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
