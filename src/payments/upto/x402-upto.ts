/**
 * Payment method `upto`: x402's `upto` scheme (Permit2) with sluice as the server (docs/upto.md). The customer signs
 * ONE Permit2 authorization of a maximum = the quote's price (the ceiling); the session is granted the quote's
 * allotment, so the gate (and the kernel quota of a data plan) never runs past what the ceiling buys; at the
 * session's end sluice settles ONCE the metered steps × price per step (never above the ceiling), and nothing at all
 * when nothing was used: no /settle, no transaction, the authorization simply expires. If the session is extended past
 * the authorization's deadline minus UPTO_SETTLE_MARGIN_S, it is settled then instead, for the usage so far
 * (x402-upto-ends.ts: settleDue; docs/upto.md "No extension outlives an authorization").
 *
 * Order, each step refusing before the next can move money:
 *   the facilitator lists upto on our network (its /supported answer gives the facilitator address the payer must
 *   name) → parse → terms (spender = the upto proxy, witness.to = pay_to, token = plan asset, our facilitator,
 *   maximum = the ceiling, a deadline that outlasts the session and its settle) → the payer's signature (65 bytes:
 *   ECDSA here; longer: the facilitator) → not seen before (payer:nonce) → precheck announces the reference →
 *   authorize: /verify (simulates the settle of the full maximum: allowance, balance, nonce) → the authorization on
 *   flash (`open`) → granted. At the end: the amount on flash (`settling`) → /settle → `settled`.
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { UptoConfig } from '../../config/index.ts';
import type { Log } from '../../log.ts';
import { systemClock, type Clock, type Timers } from '../../time.ts';
import {
  FacilitatorClient,
  UPTO_SCHEME,
  checkUptoTerms,
  knownTokenDomain,
  parseUptoPayment,
  uptoReference,
  verifyUptoSignature,
  type Address,
  type UptoPayment,
  type UptoRecord,
  type UptoStore,
} from '../../x402/index.ts';
import { isLive, type Session } from '../../sessions/index.ts';
import type { PaymentContext, PaymentMethod, PaymentRef, Quote } from '../types.ts';
import { X402Purchase } from '../x402-purchase.ts';
import { stopController } from '../../stop-signal.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { UptoSettler, type EarlySettle, type UptoSettleResult } from './settler.ts';

export const UPTO_METHOD_NAME = 'upto';

/** Room after a session's longest end for its settle (and a retry or two) before the authorization's deadline. */
export const UPTO_SETTLE_MARGIN_S = 600;
/** A settle without an answer is asked again after this (the same amount: the chain moves it once). */
export const UPTO_SETTLE_RETRY_MS = 30_000;

export interface UptoMethodOptions {
  store: UptoStore;
  log?: Log;
  clock?: Clock;
  timers?: Timers;
  retryMs?: number;
  /** The MAC's session, for a top-up: the authorization must outlast the session as the top-up leaves it. */
  sessions?: { byMac(mac: string): Session | null };
}

interface Checked {
  payment: UptoPayment;
  reference: string;
}

/** What /verify and, at the session's end, /settle are sent (the amount set at the end). */
type UptoRequest = NonNullable<UptoRecord['request']>;

export class UptoMethod implements PaymentMethod {
  readonly name = UPTO_METHOD_NAME;
  readonly adminOnly = false;
  private client: FacilitatorClient;
  /** The facilitator addresses /supported advertised for upto on our network; empty: upto is not offered. */
  private facilitators: Address[] = [];
  /** The purchase pipeline with this scheme's steps. */
  private readonly purchase: X402Purchase<Checked, UptoRequest, void>;
  private readonly clock: Clock;
  /** What an authorization waits on at its session's end: its settle, asked again until answered (settler.ts). */
  private readonly settler: UptoSettler;
  /** /supported asked again, retryMs after it could not be read (an outage at start must not switch upto off). */
  private readonly supportedAgain: ScheduledPass<boolean>;
  private closed = false;
  /**
   * Ends the facilitator exchanges in flight at close(): a facilitator holding a /settle must not hold the daemon's
   * stop past procd's window. The amount is on flash (`settling`) before its /settle, so a cut settle is one without
   * an answer, asked again at the next start (UptoEnds.reconcile → retryPending).
   */
  private readonly stopping = stopController();

  constructor(
    private config: UptoConfig,
    private readonly options: UptoMethodOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    const retryMs = options.retryMs ?? UPTO_SETTLE_RETRY_MS;
    const timing = { clock: this.clock, ...(options.timers && { timers: options.timers }) };
    this.settler = new UptoSettler({
      store: options.store,
      client: () => this.client,
      retryMs,
      closed: () => this.closed,
      log: options.log,
      ...timing,
    });
    this.supportedAgain = new ScheduledPass({
      run: () => this.refreshSupported(),
      retry: { minMs: retryMs, maxMs: retryMs },
      halted: () => this.closed,
      failed: () => undefined,
      ...timing,
    });
    this.client = this.clientFor(config);
    this.purchase = new X402Purchase({
      check: (ctx) => this.check(ctx),
      holdKey: (c) => c.reference,
      held: (c) => replayed(c.reference),
      look: (_ctx, c) => {
        if (this.options.store.get(c.reference)) throw replayed(c.reference);
      },
      verify: (ctx, c) => this.verifyAuthorization(ctx, c),
      record: (ctx, c, request) => this.recordOpen(ctx, c, request),
      act: async (ctx, c) => ({
        method: this.name,
        reference: c.reference,
        amount: ctx.quote.price,
        asset: ctx.quote.asset,
        at: ctx.now,
        steps: ctx.quote.steps,
      }),
    });
  }

  private clientFor(config: UptoConfig): FacilitatorClient {
    return new FacilitatorClient({
      url: config.facilitatorUrl,
      timeoutMs: config.timeoutMs,
      signal: this.stopping.signal,
    });
  }

  get settings(): UptoConfig {
    return this.config;
  }

  /**
   * A reload: facilitator, pay_to, window apply to the next purchase; the facilitator is asked again what it serves.
   */
  reconfigure(config: UptoConfig): void {
    this.config = config;
    this.client = this.clientFor(config);
    this.facilitators = [];
  }

  /**
   * Asks /supported whether the facilitator serves `upto` on our network and which address will settle. Returns
   * whether upto is offered; a facilitator that cannot be asked leaves it unoffered until the next ask.
   */
  async refreshSupported(): Promise<boolean> {
    try {
      const kinds = await this.client.supported();
      this.facilitators = kinds.flatMap((k) => {
        const a = k.extra?.facilitatorAddress;
        return k.scheme === UPTO_SCHEME &&
          k.network === this.config.network &&
          k.x402Version === 2 &&
          typeof a === 'string' &&
          /^0x[0-9a-fA-F]{40}$/.test(a)
          ? [a.toLowerCase() as Address]
          : [];
      });
    } catch (err) {
      this.options.log?.warn("upto: the facilitator's /supported cannot be read; upto is not offered until it can", {
        reason: toSluiceError(err).message,
      });
      this.facilitators = [];
      // An outage at start must not switch upto off until the next reload: ask again in the background.
      this.supportedAgain.soon(this.options.retryMs ?? UPTO_SETTLE_RETRY_MS);
    }
    return this.facilitators.length > 0;
  }

  get offered(): boolean {
    return this.facilitators.length > 0;
  }

  /**
   * The PaymentRequirements this router offers for a ceiling of `asset` (what a 402 carries, and /verify takes), as
   * @x402/evm's upto server enhances them: `extra.assetTransferMethod` permit2 and the facilitator's address.
   */
  requirements(asset: string, ceiling: bigint): Record<string, unknown> {
    const c = this.config;
    const domain = knownTokenDomain(c.network, asset);
    const facilitatorAddress = this.facilitators[0];
    return {
      scheme: UPTO_SCHEME,
      network: c.network,
      amount: ceiling.toString(),
      asset,
      payTo: c.payTo,
      maxTimeoutSeconds: c.maxTimeoutSeconds,
      extra: {
        assetTransferMethod: 'permit2',
        ...(facilitatorAddress && { facilitatorAddress }),
        ...(domain && { name: domain.name, version: domain.version }),
      },
    };
  }

  /**
   * What a 402 offers for `quote`, or null when upto cannot sell it: the facilitator does not serve upto (yet), or a
   * session of this plan could outlast the authorization window.
   */
  offerFor(quote: Quote, nowMs = this.clock.now()): Record<string, unknown> | null {
    if (!this.offered) return null;
    const nowS = BigInt(Math.floor(nowMs / 1000));
    const end = this.sessionEnd(quote, nowS);
    if (end === null || end + BigInt(UPTO_SETTLE_MARGIN_S) > nowS + BigInt(this.config.maxTimeoutSeconds)) return null;
    return this.requirements(quote.asset, quote.price);
  }

  /**
   * The settle response for the authorization `reference` (the LAN endpoint's PAYMENT-RESPONSE), or null when sluice
   * has no such record. At purchase time nothing has moved: `amount` is what was settled so far ("0" while the
   * session runs; the metered amount once settled at its end) and `transaction` the settle's, empty until then.
   */
  settlementOf(reference: string): Record<string, unknown> | null {
    const r = this.options.store.get(reference);
    if (!r) return null;
    const settled = r.state === 'settled';
    return {
      success: true,
      payer: reference.split(':')[0],
      transaction: (settled && r.transaction) || '',
      network: r.network,
      amount: settled ? (r.amount ?? '0') : '0',
    };
  }

  /**
   * The latest a session bought (or topped up, for `mac`'s live session) by `quote` can end (Unix seconds), or null
   * when nothing bounds it (a data plan without time_limit). A time top-up ends where the session ends now plus what it
   * buys; a data top-up moves no deadline, so it ends at the session's own, if it has one.
   */
  private sessionEnd(quote: Quote, nowS: bigint, mac?: string): bigint | null {
    const live = mac === undefined ? null : (this.options.sessions?.byMac(mac) ?? null);
    const nowMs = Number(nowS) * 1000;
    // A session spent already is not topped up (the purchase starts a new one), nor one of the other metric (refused).
    if (
      live &&
      isLive(live) &&
      live.metric === quote.metric &&
      live.expiresAt !== null &&
      live.expiresAt > nowMs &&
      (live.metric === 'seconds' || live.used < live.allotment)
    ) {
      const liveEndS = BigInt(Math.ceil(live.expiresAt / 1000));
      return quote.metric === 'seconds' ? liveEndS + quote.allotment : liveEndS;
    }
    if (quote.metric === 'seconds') return nowS + quote.allotment;
    return quote.timeLimit !== undefined ? nowS + quote.timeLimit : null;
  }

  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    return { reference: (await this.purchase.checked(ctx)).reference };
  }

  private async check(ctx: PaymentContext): Promise<Checked> {
    const c = this.config;
    if (!this.offered && !(await this.refreshSupported())) {
      throw new SluiceError(
        'ERR_X402_SCHEME_UNSUPPORTED',
        `the facilitator does not list upto on ${c.network} (GET /supported)`,
      );
    }
    const payment = parseUptoPayment(ctx.request.payment?.payload);
    if (payment.network !== c.network)
      throw new SluiceError('ERR_X402_NETWORK_MISMATCH', `network ${payment.network} is not ${c.network}`);
    const nowS = BigInt(Math.floor(ctx.now / 1000));
    const end = this.sessionEnd(ctx.quote, nowS, ctx.request.mac);
    if (end === null || end + BigInt(UPTO_SETTLE_MARGIN_S) > nowS + BigInt(c.maxTimeoutSeconds)) {
      // The authorization could expire while the session runs: the router would have given what it can never collect.
      // A top-up counts from the session's end: topped up too early, its own share would come after its deadline.
      const alone = this.sessionEnd(ctx.quote, nowS);
      const topUp = end !== null && alone !== null && end > alone;
      throw new SluiceError(
        'ERR_UPTO_AUTHORIZATION_INVALID',
        topUp
          ? `plan ${ctx.quote.plan}: topped up now, the session would end at ${end}, later than an authorization ` +
              'signed now can be settled ' +
              `(upto.max_timeout_seconds ${c.maxTimeoutSeconds} s minus ${UPTO_SETTLE_MARGIN_S} s); top up ` +
              `nearer the session's end`
          : `plan ${ctx.quote.plan}: a session could outlast upto.max_timeout_seconds (${c.maxTimeoutSeconds} s) ` +
              `minus ${UPTO_SETTLE_MARGIN_S} s to settle` +
              (end === null ? ' (a data plan needs a time_limit)' : ''),
        { details: { reason: topUp ? 'upto_topup_outlasts_authorization' : 'upto_session_outlasts_authorization' } },
      );
    }
    checkUptoTerms(payment, {
      chainId: c.chainId,
      payTo: c.payTo as Address,
      asset: ctx.quote.asset as Address,
      ceiling: ctx.quote.price,
      facilitators: this.facilitators,
      now: nowS,
      settleableUntil: end + BigInt(UPTO_SETTLE_MARGIN_S),
    });
    await verifyUptoSignature(payment, c.chainId);
    const reference = uptoReference(payment.authorization);
    const seen = this.options.store.get(reference);
    if (seen)
      throw new SluiceError('ERR_UPTO_REPLAYED', `upto authorization ${reference} was accepted before (${seen.state})`);
    return { payment, reference };
  }

  /**
   * The x402 purchase pipeline (x402-purchase.ts): an authorization accepted once, /verify (which simulates the settle
   * of the full maximum), the authorization on flash, granted. Nothing moves until the session ends (settle).
   */
  authorize(ctx: PaymentContext): Promise<PaymentRef> {
    return this.purchase.authorize(ctx);
  }

  private async verifyAuthorization(ctx: PaymentContext, { payment }: Checked): Promise<UptoRequest> {
    const requirements = this.requirements(ctx.quote.asset, ctx.quote.price);
    const request = { x402Version: 2 as const, paymentPayload: payment.raw, paymentRequirements: requirements };
    const v = await this.client.verify(request);
    if (!v.ok) {
      throw new SluiceError('ERR_UPTO_VERIFY_REJECTED', `upto facilitator refused: ${v.reason}: ${v.message}`, {
        details: { reason: v.reason },
      });
    }
    return request;
  }

  /**
   * On flash before the session is granted: a crash after this leaves an authorization sluice can settle for what the
   * session used, never a session nothing pays for.
   */
  private async recordOpen(ctx: PaymentContext, { payment, reference }: Checked, request: UptoRequest): Promise<void> {
    const a = payment.authorization;
    const record: UptoRecord = {
      reference,
      state: 'open',
      network: this.config.network,
      asset: ctx.quote.asset,
      payTo: this.config.payTo,
      maxAmount: a.maxAmount.toString(),
      deadline: a.deadline.toString(),
      pricePerStep: ctx.quote.pricePerStep.toString(),
      stepSize: ctx.quote.stepSize.toString(),
      mac: ctx.request.mac,
      at: ctx.now,
      request,
    };
    await this.options.store.put(record);
    this.options.store.prune(BigInt(Math.floor(this.clock.now() / 1000)));
  }

  /** The session could not be granted: nothing will be settled (the authorization expires unused). */
  async release(ref: PaymentRef): Promise<void> {
    const r = this.options.store.get(ref.reference);
    if (r?.state !== 'open') return;
    await this.options.store.put({ ...r, state: 'released' });
  }

  /**
   * The session paid by `reference` ended having used `used` (bytes or seconds): settles the metered steps × price
   * (at most the ceiling), once (settler.ts).
   */
  settle(reference: string, used: bigint, early?: EarlySettle): Promise<UptoSettleResult> {
    return this.settler.settle(reference, used, early);
  }

  /** Takes from the session what `r`'s settled ceiling bought beyond its usage (settler.ts). */
  shrinkSession(r: UptoRecord, shrink: (by: bigint) => Promise<void>): Promise<UptoRecord> {
    return this.settler.shrinkSession(r, shrink);
  }

  /**
   * Its asks again (settles, /supported) as the plugin host drives them: none at the start (the reconcile and the
   * `reconciled` hook asked), then as a failure arms one; stopped when the plugin closes: the exchanges end (close)
   * and the ask in flight is awaited.
   */
  get background(): BackgroundPass[] {
    return [this.settler.retries, this.supportedAgain].map((pass) => ({
      start: () => pass.start(null),
      stop: async () => {
        this.close();
        await pass.stop();
      },
    }));
  }

  /** Asks /settle again for every amount on flash without an answer (at start, and on the retry timer). */
  retryPending(): Promise<void> {
    return this.settler.retryPending();
  }

  /**
   * Bytes or seconds `reference` pays for (its share of a session's usage): what its ceiling buys, or, settled while
   * its session ran, the usage it was settled for. Null when unknown.
   */
  capacity(reference: string): bigint | null {
    const r = this.options.store.get(reference);
    if (!r) return null;
    if (r.covered !== undefined) return BigInt(r.covered);
    const pricePerStep = BigInt(r.pricePerStep);
    return pricePerStep === 0n ? 0n : (BigInt(r.maxAmount) / pricePerStep) * BigInt(r.stepSize);
  }

  /** Authorizations whose session is (or was) running: for the start's reconcile. */
  openReferences(): string[] {
    return this.options.store.list('open').map((r) => r.reference);
  }

  /**
   * Open authorizations that must be settled by now (Unix seconds): their deadline minus the settle margin has come.
   * A session may run past that only with the authorization settled for its usage so far (UptoEnds.settleDue).
   */
  dueReferences(nowS: bigint): string[] {
    return this.options.store
      .list('open')
      .filter((r) => BigInt(r.deadline) - BigInt(UPTO_SETTLE_MARGIN_S) <= nowS)
      .map((r) => r.reference);
  }

  /** Records settled while their session ran whose session may not have been shrunk yet (a crash, a refused write). */
  unshrunk(): UptoRecord[] {
    return this.options.store.list().filter((r) => r.shrink !== undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    void this.settler.retries.stop();
    void this.supportedAgain.stop();
    this.stopping.abort();
  }
}

function replayed(reference: string): SluiceError {
  return new SluiceError('ERR_UPTO_REPLAYED', `upto authorization ${reference} is being used already`);
}
