/**
 * Payment method `x402-session`: the customer deposits into a SessionEscrow contract through an escrow facilitator
 * (docs/escrow.md). The payload is an x402 v2 payment whose EIP-3009 ReceiveWithAuthorization pays the escrow and whose
 * `extensions.session` states the terms {type "prepaid", pricePerUnit, maxUnits, duration, seller, salt}; the
 * authorization's nonce must be the terms' hash (termsNonce), so the buyer's one signature binds the terms on chain.
 *
 * Order, each step refusing before the next can move money:
 *   parse (x402's parser) → x402's local checks (network, asset + domain, payee = the escrow, amount ≥ maxUnits ×
 *   price, window, signature) → the session terms against the plan and `escrow.*` → precheck announces the escrow
 *   session id (known before the transaction) so a replay is refused by the merchant → /session/create.
 * A create without an answer is asked about by id (GET /session/:network/:id): the session exists (granted) or not
 * (refused, nothing taken).
 */
import type { Address as ViemAddress } from 'viem';
import { SluiceError, toSluiceError } from '../../errors.ts';
import { systemClock, type Clock } from '../../time.ts';
import type { EscrowConfig } from '../../config/index.ts';
import type { PaymentRef } from '../../sessions/index.ts';
import { EscrowFacilitatorClient, type PendingGrant } from '../../escrow/index.ts';
import { parseExactPayment } from '../../x402/index.ts';
import { creditOf, escrowView, type EscrowCredit, type EscrowView } from './escrow-view.ts';
import type { PaymentContext, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from '../types.ts';
import { X402Purchase } from '../x402-purchase.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { EscrowClosePass, isNotFound, networkOf } from './close-pass.ts';
import { checkDeposit } from './deposit-check.ts';
import {
  CLOSE_RETRY_MS,
  CONSUME_DELAY_MS,
  METHOD_NAME,
  mismatch,
  parseSessionTerms,
  type SessionDeposit,
  type X402SessionOptions,
} from './terms.ts';

export class X402SessionMethod implements PaymentMethod {
  readonly name = METHOD_NAME;
  readonly adminOnly = false;
  private client: EscrowFacilitatorClient;
  /**
   * The purchase pipeline with this scheme's steps. Its hold is the escrow session ids a purchase or the resolver is
   * working on (never two at once: one grant per deposit).
   */
  private readonly purchase: X402Purchase<SessionDeposit, void, { retry: boolean }>;

  private readonly clock: Clock;
  /**
   * The close/consume pass (scheduled-pass.ts): one timer for consumes, closes and pending purchases, at the earliest
   * time any of them asks for. Its stop ends the facilitator exchanges in flight (the client takes its signal): an
   * escrow facilitator that holds a request must not hold the daemon's stop past procd's window (a close or consume
   * took up to 3 × the timeout with its retries). Each cut exchange is one without an answer, whose state is on flash
   * already: a create's pending mark (the resolver asks about it at the next start), an ended session not yet closed, a
   * receipt not yet consumed.
   */
  private readonly closes: ScheduledPass<number>;
  /** What the pass does (close-pass.ts); null without a ledger: nothing to close. */
  private readonly pass: EscrowClosePass | null;

  constructor(
    private config: EscrowConfig,
    private readonly options: Omit<X402SessionOptions, 'config'> = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.closes = new ScheduledPass({
      run: async () => (this.pass ? this.pass.run() : 0),
      retry: { minMs: CLOSE_RETRY_MS, maxMs: CLOSE_RETRY_MS },
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
      // A failure (the ledger not written: a full flash) is logged and the pass tried again later.
      failed: (err) =>
        options.log?.warn('escrow close/consume pass failed; will retry', { reason: toSluiceError(err).message }),
    });
    this.client = this.clientFor(config);
    this.purchase = new X402Purchase({
      check: (ctx) => checkDeposit(this.config, ctx),
      holdKey: (d) => d.sessionId,
      held: (d) =>
        new SluiceError(
          'ERR_PAYMENT_IN_PROGRESS',
          `escrow session ${d.sessionId} is being resolved; try again shortly`,
        ),
      earlier: (ctx, d) => this.earlier(ctx, d),
      // The escrow facilitator has no /verify of its own: /session/create verifies and moves the deposit at once.
      verify: async () => undefined,
      record: (ctx, d) => this.recordPending(ctx, d),
      act: (ctx, d, held) => this.create(ctx, d, held),
    });
    this.pass = options.ledger
      ? new EscrowClosePass({
          ledger: options.ledger,
          client: () => this.client,
          config: () => this.config,
          clock: this.clock,
          hold: this.purchase.hold,
          schedule: (ms) => this.schedule(ms),
          ...(options.log && { log: options.log }),
          ...(options.sessions && { sessions: options.sessions }),
          ...(options.onClosed && { onClosed: options.onClosed }),
        })
      : null;
  }

  private clientFor(config: EscrowConfig): EscrowFacilitatorClient {
    return new EscrowFacilitatorClient({
      url: config.facilitatorUrl,
      timeoutMs: this.options.timeoutMs ?? 10_000,
      retries: 2,
      signal: this.closes.signal,
    });
  }

  get facilitator(): EscrowFacilitatorClient {
    return this.client;
  }

  /** The session's allotment is maxUnits steps: the deposit buys them all up front, the unused ones come back. */
  quoteFor(request: PurchaseRequest, quote: (input: QuoteInput) => Quote): Quote {
    const payment = parseExactPayment(request.payment?.payload);
    const terms = parseSessionTerms(payment.raw);
    if (terms.maxUnits === 0n) mismatch('extensions.session.maxUnits must be at least 1');
    if (request.steps !== undefined && BigInt(String(request.steps)) !== terms.maxUnits) {
      mismatch(`steps ${String(request.steps)} differ from the session's maxUnits ${terms.maxUnits}`);
    }
    return quote({ steps: terms.maxUnits });
  }

  async precheck(ctx: PaymentContext): Promise<{ reference: string }> {
    const d = await this.verified(ctx);
    return { reference: d.sessionId };
  }

  /**
   * x402's local checks (payee = the escrow, ReceiveWithAuthorization) and the terms' consistency; once per purchase.
   */
  verified(ctx: PaymentContext): Promise<SessionDeposit> {
    return this.purchase.checked(ctx);
  }

  /**
   * The x402 purchase pipeline (x402-purchase.ts): a deposit bought before is asked about first; what to grant goes on
   * flash before /session/create (the escrow facilitator's verify and settle in one), which moves the deposit once.
   */
  authorize(ctx: PaymentContext): Promise<PaymentRef> {
    return this.purchase.authorize(ctx);
  }

  /** What the purchase of `d` grants: its payment reference. */
  private refOf(ctx: PaymentContext, d: SessionDeposit): PaymentRef {
    return {
      method: this.name,
      reference: d.sessionId,
      amount: d.payment.authorization.value,
      asset: d.asset,
      at: ctx.now,
      steps: d.terms.maxUnits,
    };
  }

  /** What to grant, kept on flash while the purchase is pending (the resolver grants it once the deposit is found). */
  private pendingOf(ctx: PaymentContext, d: SessionDeposit): PendingGrant {
    const q = ctx.quote;
    return {
      plan: q.plan,
      metric: q.metric,
      allotment: q.allotment.toString(),
      steps: q.steps.toString(),
      amount: d.payment.authorization.value.toString(),
      asset: d.asset,
      at: ctx.now,
      validBefore: d.payment.authorization.validBefore.toString(),
      ...(typeof ctx.request.ip === 'string' && ctx.request.ip !== '' && { ip: ctx.request.ip }),
    };
  }

  /**
   * A purchase of this deposit began before (a create without an answer, or one a kill -9 cut short): the chain is
   * asked first. Found → it is granted now. Not found → the earlier create never landed: it is sent again (the deposit
   * can move only once: createSession spends the buyer's one-time authorization).
   */
  private async earlier(ctx: PaymentContext, d: SessionDeposit): Promise<PaymentRef | undefined> {
    const id = d.sessionId;
    const known = this.options.ledger?.get(id);
    if (!known) return undefined;
    if (known.endedAt !== undefined || known.closed) {
      throw new SluiceError(
        'ERR_ESCROW_CREATE_REFUSED',
        `escrow session ${id} was closed on this router (its deposit refunded)`,
      );
    }
    const view = await this.client.get(networkOf(known, this.config), id);
    if (view.status === 'done' && view.value.buyer.toLowerCase() === known.buyer.toLowerCase()) {
      if (!known.pending) await this.options.ledger!.setPending(id, this.pendingOf(ctx, d));
      return this.refOf(ctx, d);
    }
    if (!isNotFound(view)) throw pendingError(id);
    return undefined;
  }

  /**
   * What to grant, on flash before /session/create: a crash during the call (the deposit may land) leaves it for the
   * resolver and for the customer's retry; cleared once a session holds the escrow session id. `retry`: the entry is
   * an earlier try's.
   */
  private async recordPending(ctx: PaymentContext, d: SessionDeposit): Promise<{ retry: boolean }> {
    const ledger = this.options.ledger;
    const pending = this.pendingOf(ctx, d);
    const known = ledger?.get(d.sessionId);
    if (known) {
      if (!known.pending) await ledger!.setPending(d.sessionId, pending);
      return { retry: true };
    }
    await ledger?.record({
      sessionId: d.sessionId,
      mac: ctx.request.mac,
      buyer: d.buyer as ViemAddress,
      maxUnits: d.terms.maxUnits,
      escrow: this.config.address,
      network: this.config.network,
      chainId: this.config.chainId,
      pending,
    });
    return { retry: false };
  }

  /** /session/create, and what its answer (or its silence) means for the deposit. */
  private async create(ctx: PaymentContext, d: SessionDeposit, { retry }: { retry: boolean }): Promise<PaymentRef> {
    const id = d.sessionId;
    const created = await this.client.create({
      x402Version: 2,
      paymentPayload: d.payment.raw,
      paymentRequirements: {
        asset: d.asset,
        amount: d.payment.authorization.value.toString(),
        network: this.config.network,
      },
    });
    if (created.status === 'done') {
      if (created.value.sessionId.toLowerCase() !== id) {
        throw new SluiceError(
          'ERR_ESCROW_CREATE_REFUSED',
          `facilitator created session ${created.value.sessionId}, not ${id}`,
        );
      }
      return this.refOf(ctx, d);
    }
    // A definite "no" (or a request that never left): nothing was taken by this call. The entry recorded for it goes;
    // one from an earlier try stays pending (that create may still land: the resolver asks until validBefore).
    if (created.status === 'refused' || created.unsent) {
      if (!retry) await this.options.ledger?.forget(id);
      if (created.status === 'refused') {
        throw new SluiceError(
          'ERR_ESCROW_CREATE_REFUSED',
          `escrow facilitator refused the deposit: ${created.reason}: ${created.message}`,
          { details: { reason: created.reason } },
        );
      }
      throw new SluiceError(
        'ERR_ESCROW_FACILITATOR_UNAVAILABLE',
        `escrow facilitator unreachable (${created.message}); nothing was taken`,
      );
    }
    // No answer: the deposit may have landed (or may still land, until validBefore). The session id is known, so ask.
    const view = await this.client.get(this.config.network, id);
    if (view.status === 'done' && view.value.buyer.toLowerCase() === d.buyer) return this.refOf(ctx, d);
    // Not found (yet) or not answered: the pending mark (on flash already) keeps it asked about until it is found
    // (granted then, once) or the authorization has expired unused (nothing can be taken any more).
    this.options.log?.warn('escrow create unanswered; resolving later', { session: id, reason: created.message });
    this.schedule(CLOSE_RETRY_MS);
    throw pendingError(id);
  }

  /**
   * A session now holds the escrow session `reference` (its purchase or top-up is on flash): the purchase is no longer
   * pending. Before this, a kill -9 leaves the mark, and the start finds the session holding the reference.
   */
  async granted(reference: string): Promise<void> {
    await this.options.ledger?.setPending(reference, undefined);
  }

  /**
   * At start, every escrow session neither ended nor closed in the ledger against the sessions journal (`holderOf`: the
   * session holding the escrow session id, live or ended, or none). Live → kept (and no longer pending); ended →
   * closed (its end may have reached the journal but not the ledger before a crash); none and pending → left to the
   * resolver (the deposit may have landed: granted, or dropped once it cannot); none and not pending → nothing on this
   * router will ever use it: closed at once, the buyer refunded what no receipt claims.
   */
  async reconcile(
    holderOf: (reference: string) => { live: boolean; endedAt: number | null } | undefined,
  ): Promise<void> {
    const ledger = this.options.ledger;
    if (!ledger) return;
    const now = this.clock.now();
    for (const e of ledger.unsettled()) {
      const holder = holderOf(e.sessionId);
      if (holder?.live) await ledger.setPending(e.sessionId, undefined);
      else if (holder) await ledger.ended(e.sessionId, holder.endedAt ?? now);
      else if (e.pending === undefined) {
        this.options.log?.warn('escrow session held by no session: closing it (refund of what no receipt claims)', {
          session: e.sessionId,
          mac: e.mac,
        });
        await ledger.ended(e.sessionId, now - this.config.closeGraceMs);
      }
    }
  }

  /** The session could not be granted after the deposit landed: close the escrow session at once (full refund). */
  async release(ref: PaymentRef, reason: Error): Promise<void> {
    this.options.log?.warn('escrow deposit not granted; closing it with a full refund', {
      session: ref.reference,
      reason: reason.message,
    });
    if (await this.options.ledger?.ended(ref.reference, this.clock.now() - this.config.closeGraceMs)) this.schedule(0);
  }

  /**
   * A buyer-signed usage receipt (ubus `receipt`): for the escrow session `session_id`, or the one the MAC's live
   * session was bought with. Kept when higher than the last; a lower or equal one changes nothing.
   */
  async receipt(
    input: Record<string, unknown>,
    sessionOfMac: (mac: string) => string | undefined,
  ): Promise<{ sessionId: string; cumulativeUnits: bigint; advanced: boolean }> {
    const ledger = this.options.ledger;
    if (!ledger) throw new SluiceError('ERR_RECEIPT_SESSION', 'this router keeps no escrow sessions');
    let sessionId = typeof input.session_id === 'string' ? input.session_id.toLowerCase() : undefined;
    if (typeof input.mac === 'string') {
      const ofMac = sessionOfMac(input.mac);
      if (!ofMac) throw new SluiceError('ERR_RECEIPT_SESSION', `no live escrow session for ${input.mac}`);
      if (sessionId !== undefined && sessionId !== ofMac)
        throw new SluiceError('ERR_RECEIPT_SESSION', "receipt is for another escrow session than the MAC's");
      sessionId = ofMac;
    }
    if (sessionId === undefined) throw new SluiceError('ERR_RECEIPT_INVALID', 'mac or session_id is required');
    const sold = ledger.get(sessionId);
    const domain = {
      chainId: sold?.chainId ?? this.config.chainId,
      escrow: (sold?.escrow ?? this.config.address) as ViemAddress,
    };
    const { entry, advanced } = await ledger.accept(domain, sessionId, {
      ...input,
      session_id: input.session_id ?? sessionId,
    });
    if (advanced) this.schedule(CONSUME_DELAY_MS);
    return { sessionId: entry.sessionId, cumulativeUnits: entry.receipt?.cumulativeUnits ?? 0n, advanced };
  }

  /**
   * The credit rule for the escrow session `reference` (escrow-view.ts); null for a session this router does not know.
   */
  creditOf(reference: string, used: bigint, stepSize: bigint): EscrowCredit | null {
    return creditOf(this.options.ledger, this.config.creditSteps, reference, { used, stepSize });
  }

  /** The escrow side of a session bought with this method (escrow-view.ts); null for a reference not kept. */
  escrowView(reference: string, live?: { used: bigint; stepSize: bigint }): EscrowView | null {
    return escrowView(this.options.ledger, this.config.creditSteps, reference, live);
  }

  /** The MAC an escrow session was sold to. */
  macOf(reference: string): string | undefined {
    return this.options.ledger?.get(reference)?.mac;
  }

  /** A sluice session bought with this method ended: close its escrow session after `close_grace` (durably). */
  async sessionEnded(reference: string, at: number): Promise<void> {
    if (await this.options.ledger?.ended(reference, at)) this.schedule(this.config.closeGraceMs);
  }

  /**
   * Closes every escrow session that is due, with the highest receipt: done → seller and buyer amounts recorded; a
   * session the chain already closed (a close whose answer was lost) → its figures asked for; no answer → retried
   * later (every CLOSE_RETRY_MS, and at start). Serialised, so a session is closed at most once from here.
   */
  closeDue(): Promise<number> {
    return this.closes.run();
  }

  /** A pass within `ms` (the earliest any of consumes, closes and pending purchases asks for wins). */
  private schedule(ms: number): void {
    this.closes.soon(ms);
  }

  /** At start: closes what a restart or an outage left, at once (a failure is retried by the pass itself). */
  start(): void {
    void this.closes.run().catch(() => undefined);
  }

  /** No more passes; the exchanges in flight end now (see `closes`). */
  stop(): void {
    void this.closes.stop();
  }

  reconfigure(config: EscrowConfig): void {
    this.config = config;
    this.client = this.clientFor(config);
  }
}

function pendingError(id: string): SluiceError {
  return new SluiceError(
    'ERR_ESCROW_CREATE_PENDING',
    'the escrow facilitator did not confirm the deposit in time; sluice keeps asking and grants the session ' +
      'once if it landed (retry the same request to ask again)',
    { details: { reference: id } },
  );
}
