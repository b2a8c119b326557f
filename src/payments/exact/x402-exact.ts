/**
 * Payment method `x402`: the customer pays with an x402 `exact` payment (an EIP-3009 authorization signed by their
 * wallet), settled on chain by an x402 facilitator. docs/x402.md has the flow, the checks and the security argument.
 *
 * Order, each step refusing before the next can move money:
 *   parse (v2 or v1) → local checks (network, asset + EIP-712 domain, payee, amount, window, signature) → replay
 *   cache → facilitator /verify → journal `settling` (fsync) → /settle → `settled` → the merchant grants the session.
 * A /settle without an answer leaves the purchase `settling`: the resolver (at start, every few seconds while any is
 * pending, and when the customer retries the same payload) grants the session exactly once when it has proof the
 * money reached pay_to (x402-resolve.ts: the transfer log on chain via x402.rpc_url, or the facilitator's success).
 * A used nonce alone is no proof: the buyer can cancel the authorization on chain meanwhile.
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import { systemClock, type Clock } from '../../time.ts';
import type { X402Config } from '../../config/index.ts';
import type { PaymentRef } from '../../sessions/index.ts';
import {
  FacilitatorClient,
  isNonceUsedReason,
  knownTokenDomain,
  parseExactPayment,
  rpcReader,
  verifyLocally,
  X402Store,
  type Address,
  type ChainReader,
  type ExactPayment,
  type FacilitatorRequest,
  type PurchaseRecord,
  type TokenDomain,
} from '../../x402/index.ts';
import { pendingError, unconfirmedError, voidError } from '../x402-resolve.ts';
import type { PaymentContext, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from '../types.ts';
import { X402Purchase } from '../x402-purchase.ts';
import { exactRequirements, facilitatorRequest } from './requirements.ts';
import { SettleResolver } from './settle-resolver.ts';
import { WINDOW_MARGIN_SECONDS, type ResolveReport, type X402MethodOptions } from './options.ts';

/** A purchase on flash before its /settle, with the request /settle is sent. */
type Settling = PurchaseRecord & { request: FacilitatorRequest };

export class X402Method implements PaymentMethod {
  readonly name = 'x402';
  readonly adminOnly = false;
  private facilitator: FacilitatorClient;
  /** x402.rpc_url's reader; null without one. */
  private chain: ChainReader | null;
  private readonly clock: Clock;
  /** The purchase pipeline with this scheme's steps; its hold is the keys being verified, settled or resolved. */
  private readonly purchase: X402Purchase<ExactPayment, FacilitatorRequest, Settling>;
  private closed = false;
  /** What the method waits on: unanswered settles decided, late grants, old records dropped (settle-resolver.ts). */
  private readonly resolver: SettleResolver;

  private constructor(
    private config: X402Config,
    private readonly store: X402Store,
    private readonly options: X402MethodOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.resolver = new SettleResolver({
      method: this.name,
      store,
      sessions: options.sessions,
      ...(options.log && { log: options.log }),
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
      peers: () => ({ chain: this.chain, facilitator: this.facilitator, payTo: this.config.payTo }),
      held: (key) => this.purchase.hold.has(key),
    });
    this.facilitator = this.facilitatorFor(config);
    this.chain = this.chainFor(config);
    this.purchase = new X402Purchase({
      check: (ctx) => this.check(ctx),
      holdKey: keyOf,
      held: replayed,
      look: (ctx, p) => this.look(ctx, p),
      earlier: (_ctx, p) => this.earlier(p),
      verify: (ctx, p) => this.verifyPayment(ctx, p),
      record: (ctx, p, request) => this.recordSettling(ctx, p, request),
      act: (_ctx, _p, record) => this.settle(record),
    });
  }

  private facilitatorFor(config: X402Config): FacilitatorClient {
    return new FacilitatorClient({
      url: config.facilitatorUrl,
      timeoutMs: config.timeoutMs,
      signal: this.resolver.signal,
    });
  }

  /** x402.rpc_url as configured, else the network's public default (config/x402.ts); null: no chain lookups. */
  private chainFor(config: X402Config): ChainReader | null {
    return config.rpcUrl === ''
      ? null
      : rpcReader({
          url: config.rpcUrl,
          timeoutMs: config.timeoutMs,
          signal: this.resolver.signal,
        });
  }

  static async open(options: X402MethodOptions): Promise<X402Method> {
    const store = await X402Store.open(options.stateDir, undefined, { atStart: options.atStart === true });
    return new X402Method(options.config, store, options);
  }

  /** The EIP-712 domain of `asset` on the configured network: sluice's table first, else x402.token_name/version. */
  domainOf(asset: string): TokenDomain {
    // A plan without an asset (sold for cash: grants, vouchers) has no token to pay in, whatever token_name says.
    if (asset === '')
      throw new SluiceError('ERR_X402_ASSET_UNSUPPORTED', 'the plan has no asset: not for sale by x402');
    const known = knownTokenDomain(this.config.network, asset);
    if (known) return known;
    if (this.config.tokenName !== '') return { name: this.config.tokenName, version: this.config.tokenVersion };
    throw new SluiceError(
      'ERR_X402_ASSET_UNSUPPORTED',
      `plan asset ${asset || '(none)'} on ${this.config.network} has no known EIP-712 domain: set ` +
        'x402.token_name and token_version',
    );
  }

  /**
   * The quote an x402 payment buys: the whole steps its value pays for (never more; an overpayment's remainder is not
   * granted, an EIP-3009 transfer moves exactly `value`). A requested `steps`/`amount` is a floor: paying less is
   * ERR_X402_UNDERPAID, before any money moves.
   */
  quoteFor(request: PurchaseRequest, quote: (input: QuoteInput) => Quote): Quote {
    const payment = parseExactPayment(request.payment?.payload);
    const asked =
      request.amount !== undefined || request.steps !== undefined
        ? quote({ amount: request.amount, steps: request.steps })
        : null;
    if (asked && payment.authorization.value < asked.price) {
      throw new SluiceError(
        'ERR_X402_UNDERPAID',
        `authorization value ${payment.authorization.value} is below the price ${asked.price}`,
        { details: { value: payment.authorization.value.toString(), price: asked.price.toString() } },
      );
    }
    try {
      return quote({ amount: payment.authorization.value });
    } catch (err) {
      if ((err as SluiceError).code === 'ERR_AMOUNT_TOO_SMALL') {
        throw new SluiceError(
          'ERR_X402_UNDERPAID',
          `authorization value ${payment.authorization.value} does not buy the plan's minimum`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Every check that moves no money; announces the reference (`from:nonce`) so the merchant holds it. */
  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const p = await this.purchase.checked(ctx);
    const key = keyOf(p);
    const known = this.store.get(key);
    // A payment already applied (or done here and remembered) is this method's replay, with its own code.
    if (
      this.purchase.hold.has(key) ||
      known?.state === 'applied' ||
      this.options.sessions.isApplied({ method: this.name, reference: key })
    ) {
      throw replayed(p);
    }
    if (known?.state === 'void') throw voidError(known);
    return { reference: key };
  }

  private async check(ctx: PaymentContext): Promise<ExactPayment> {
    if (this.closed) throw new SluiceError('ERR_X402_CLOSED', 'x402 payments are shutting down');
    const p = parseExactPayment(ctx.request.payment?.payload);
    const asset = ctx.quote.asset.toLowerCase() as Address;
    await verifyLocally(p, {
      network: this.config.network,
      chainId: this.config.chainId,
      asset,
      domain: this.domainOf(asset),
      payTo: this.config.payTo as Address,
      price: ctx.quote.price,
      now: BigInt(Math.floor(ctx.now / 1000)),
      marginSeconds: WINDOW_MARGIN_SECONDS,
      maxTimeoutSeconds: BigInt(this.config.maxTimeoutSeconds),
    });
    return p;
  }

  /** The x402 purchase pipeline (x402-purchase.ts) with this scheme's steps. */
  authorize(ctx: PaymentContext): Promise<PaymentRef> {
    return this.purchase.authorize(ctx);
  }

  /** The replay rule: a payload in flight, found void, or first sent by another device is refused. */
  private look(ctx: PaymentContext, p: ExactPayment): void {
    const key = keyOf(p);
    if (this.purchase.hold.has(key)) throw replayed(p);
    const known = this.store.get(key);
    if (known?.state === 'void') throw voidError(known);
    if (known && known.state !== 'applied' && known.mac !== ctx.request.mac) {
      // The payment is the device's that sent it first (its MAC is stored with it): another device sending the same
      // payload (captured on open WiFi) gets nothing; the resolver grants the payer when the money is proved.
      if (known.state !== 'unconfirmed' || this.chain) void this.resolvePending();
      throw replayed(p);
    }
    // Two settles of one record at once: the one refused because the other landed would read as "no money moved".
    if (this.resolver.isResolving(key)) throw pendingError(key);
  }

  /**
   * A purchase of this payload seen before: one whose settle had no answer is resolved now (the customer retries); one
   * settled and not yet handed out is handed out; anything else known is a replay.
   */
  private async earlier(p: ExactPayment): Promise<PaymentRef | undefined> {
    const key = keyOf(p);
    const known = this.store.get(key);
    if (known?.state === 'settling' || known?.state === 'unconfirmed') {
      const outcome = await this.resolver.resolveOne(known, { grant: false });
      if (outcome.kind === 'settled') return this.resolver.handOut(this.store.get(key) ?? known);
      if (outcome.kind === 'pending') throw pendingError(key);
      if (outcome.kind === 'unconfirmed') throw unconfirmedError(key, outcome.reason);
      if (outcome.kind === 'void') throw voidError(this.store.get(key) ?? known);
      throw new SluiceError(
        'ERR_X402_SETTLE_FAILED',
        `the earlier settlement of this authorization failed (${outcome.reason}); no money moved`,
      );
    }
    const applied = this.options.sessions.isApplied({ method: this.name, reference: key });
    if (known?.state === 'settled' && !this.resolver.wasHandedOut(key) && !applied) return this.resolver.handOut(known);
    if (known || applied) throw replayed(p);
    return undefined;
  }

  /** Room among the purchases remembered, then the facilitator's /verify of requirements matching the payment. */
  private async verifyPayment(ctx: PaymentContext, p: ExactPayment): Promise<FacilitatorRequest> {
    if (!this.store.hasRoom(BigInt(Math.floor(ctx.now / 1000))))
      throw new SluiceError(
        'ERR_X402_BUSY',
        'too many x402 purchases in the last max_timeout_seconds; try again shortly',
      );
    const asset = ctx.quote.asset.toLowerCase() as Address;
    const request = facilitatorRequest(this.config, p, asset, this.domainOf(asset));
    const verdict = await this.facilitator.verify(request);
    if (!verdict.ok) {
      throw new SluiceError(
        'ERR_X402_VERIFY_REJECTED',
        `facilitator refused the payment: ${verdict.reason}: ${verdict.message}`,
        { details: { reason: verdict.reason } },
      );
    }
    return request;
  }

  /** The purchase `settling` on flash: a crash during /settle leaves this to resolve. */
  private async recordSettling(ctx: PaymentContext, p: ExactPayment, request: FacilitatorRequest): Promise<Settling> {
    const record: Settling = {
      key: keyOf(p),
      state: 'settling',
      validBefore: p.authorization.validBefore.toString(),
      at: ctx.now,
      network: this.config.network,
      asset: ctx.quote.asset.toLowerCase(),
      value: p.authorization.value.toString(),
      payTo: p.authorization.to.toLowerCase(),
      mac: ctx.request.mac,
      plan: ctx.quote.plan,
      metric: ctx.quote.metric,
      steps: ctx.quote.steps.toString(),
      allotment: ctx.quote.allotment.toString(),
      request,
      ...(typeof ctx.request.ip === 'string' && ctx.request.ip !== '' && { ip: ctx.request.ip }),
    };
    await this.store.put(record);
    return record;
  }

  /** /settle, and what its answer means for the money. */
  private async settle(record: Settling): Promise<PaymentRef> {
    const key = record.key;
    const settled = await this.facilitator.settle(record.request);
    if (settled.status === 'settled') {
      const done: PurchaseRecord = { ...record, state: 'settled', transaction: settled.transaction };
      await this.persistBestEffort(done);
      return this.resolver.handOut(done);
    }
    if (settled.status === 'failed' && isNonceUsedReason(settled.reason)) {
      // "Nonce used" on the first settle: the authorization ran already (the facilitator's own earlier attempt, or
      // anyone who submitted it): its money may have reached pay_to. The chain says whether (x402-resolve.ts).
      this.options.log?.warn('x402 first settle refused as nonce used; asking the chain', {
        key,
        reason: settled.reason,
      });
      const outcome = await this.resolver.resolveOne(record, { grant: false });
      if (outcome.kind === 'settled') return this.resolver.handOut(this.store.get(key) ?? record);
      if (outcome.kind === 'pending') {
        this.resolver.soon();
        throw pendingError(key);
      }
      if (outcome.kind === 'unconfirmed') throw unconfirmedError(key, outcome.reason);
      if (outcome.kind === 'void') throw voidError(this.store.get(key) ?? record);
      throw new SluiceError(
        'ERR_X402_SETTLE_FAILED',
        `facilitator could not settle: ${settled.reason}: ${settled.message}`,
        { details: { reason: settled.reason } },
      );
    }
    if (settled.status === 'failed') {
      await this.store.remove(key).catch(() => undefined);
      throw new SluiceError(
        'ERR_X402_SETTLE_FAILED',
        `facilitator could not settle: ${settled.reason}: ${settled.message}`,
        { details: { reason: settled.reason } },
      );
    }
    this.options.log?.warn('x402 settle unanswered; resolving later', { key, reason: settled.message });
    this.resolver.soon();
    throw pendingError(key);
  }

  /** The session could not be granted after the money moved: keep the record `settled` for the resolver to retry. */
  async release(ref: PaymentRef, reason: Error): Promise<void> {
    this.resolver.released(ref.reference);
    const r = this.store.get(ref.reference);
    if (r && r.state === 'settled') {
      this.options.log?.warn('x402 payment settled but not granted; will retry', {
        key: ref.reference,
        reason: reason.message,
      });
      this.resolver.soon();
    }
  }

  private async persistBestEffort(record: PurchaseRecord): Promise<void> {
    try {
      await this.store.put(record);
    } catch (err) {
      // The money moved: grant anyway. The file still says `settling`, which the resolver turns into this same grant.
      this.options.log?.warn('x402 store write failed after settle', {
        key: record.key,
        reason: toSluiceError(err).message,
      });
    }
  }

  /**
   * Finishes what a crash or a silent facilitator left (settle-resolver.ts): `settling` records are asked about,
   * `settled` ones not yet in a session are granted, `applied` ones past their window are dropped. Safe to call any
   * time (serialised).
   */
  resolvePending(): Promise<ResolveReport> {
    return this.resolver.run();
  }

  /** The x402 v2 PaymentRequirements offering `quote` (what a 402 answer's `accepts` lists). */
  requirementsFor(quote: Quote): Record<string, unknown> {
    return exactRequirements(this.config, quote, this.domainOf(quote.asset));
  }

  /** The settlement of a payment reference, as an x402 SettleResponse (for PAYMENT-RESPONSE). */
  settlementOf(reference: string): { success: true; transaction: string; network: string; payer: string } | null {
    const r = this.store.get(reference);
    if (!r || (r.state !== 'settled' && r.state !== 'applied')) return null;
    return { success: true, transaction: r.transaction ?? '', network: r.network, payer: r.key.split(':')[0] ?? '' };
  }

  /** Purchases waiting for their settlement to be confirmed. */
  stats(): { pending: number; unconfirmed: number; remembered: number } {
    return {
      pending: this.store.list('settling').length + this.store.list('settled').length,
      unconfirmed: this.store.list('unconfirmed').length,
      remembered: this.store.size,
    };
  }

  reconfigure(config: X402Config): void {
    const chainAdded = config.rpcUrl !== '' && config.rpcUrl !== this.config.rpcUrl;
    this.config = config;
    this.facilitator = this.facilitatorFor(config);
    this.chain = this.chainFor(config);
    this.resolver.forgetWindows();
    // A chain to ask (now or another one): purchases kept unconfirmed may be decided at last.
    if (chainAdded && this.store.list('unconfirmed').length > 0) void this.resolvePending();
  }

  /** No more resolver passes; the exchanges in flight end (close() stops it too). */
  stopResolving(): Promise<void> {
    return this.resolver.stop();
  }

  async close(): Promise<void> {
    this.closed = true;
    // What a lookup in flight would have decided is decided at the next start: the records stay as they are.
    await this.resolver.stop();
    await this.store.flush().catch(() => undefined);
  }
}

/** An `exact` payment's key: its EIP-3009 payer and nonce. */
function keyOf(p: ExactPayment): string {
  return `${p.authorization.from}:${p.authorization.nonce}`;
}

function replayed(p: ExactPayment): SluiceError {
  return new SluiceError(
    'ERR_X402_NONCE_REPLAYED',
    `authorization ${p.authorization.nonce} of ${p.authorization.from} was already used`,
  );
}
