/**
 * A payment method turns a quote into money (or a voucher, or an admin's word) and says so with a PaymentRef.
 * Adding a method = one folder exporting a PaymentPlugin (plugin.ts) that opens this PaymentMethod, and a line in
 * plugins.ts; a method that needs no config (the admin's grant) is listed in builtin.ts.
 *
 * The merchant's order for one purchase (src/merchant/merchant.ts), and what a method may rely on:
 *  1. Its own checks: MAC (unicast), `ip` (an address), `user`, `idempotency_key` (a string ≤ 200 chars), plan and
 *     quote, the method exists and the caller may use it.
 *  2. sessions.prepare(): the idempotency key not applied and not held by a concurrent purchase, no metric clash with
 *     the MAC's live session, a top-up within the largest allotment, a slot under `limits.max_sessions`. These are
 *     then HELD for this purchase until it ends: a concurrent purchase with the same key gets ERR_PAYMENT_IN_PROGRESS
 *     before its method is called (50 concurrent purchases sharing a key → one authorize).
 *  3. `precheck(ctx)` — the method's checks that move no money: field syntax, a signature, a facilitator's /verify.
 *     If the payment already names its reference (an x402 authorization nonce, an escrow payment id), precheck returns
 *     it: a reference some session holds is refused as ERR_PAYMENT_REPLAYED and one a concurrent purchase holds as
 *     ERR_PAYMENT_IN_PROGRESS, both before authorize. Throw to refuse; nothing has moved.
 *  4. `authorize(ctx)` — moves the money. A two-phase method makes its own intent durable before the irreversible step
 *     (x402: journal "settling" before /settle; escrow: the facilitator-side session id) so a crash between the two is
 *     recoverable by the method; the reference it returns must be the one precheck announced, if any.
 *  5. The session is activated (journaled). If that fails, `release(ref)` is asked to undo — never for a reference
 *     that some session holds (a replay found after authorize is refused without release).
 * Every check that can fail without money moving is in 1–3; after 4 only the journal write (and a replay of a
 * reference precheck did not announce) can still refuse the purchase.
 */
import type { Metric, PaymentRef } from '../sessions/index.ts';

export type { PaymentRef };

/** Amounts are bigint in the asset's smallest unit (10^-decimals). */
export interface Quote {
  plan: string;
  metric: Metric;
  steps: bigint;
  /** Bytes or seconds this purchase buys: steps × stepSize. */
  allotment: bigint;
  /** What is charged: steps × pricePerStep (never more than the amount offered). */
  price: bigint;
  asset: string;
  currency: string;
  decimals: number;
  stepSize: bigint;
  pricePerStep: bigint;
  /** The plan's `time_limit` (seconds): the session sold also ends this long after the sale. */
  timeLimit?: bigint;
  /** The plan's `trial_every` (seconds): a free trial, once per device per this interval (payments/trial/trial.ts). */
  trialEvery?: bigint;
  /** The plan's `trial_limit`: trials of it per `trial_every` on this router, all devices together (0: no cap). */
  trialLimit?: number;
  /** The plan's `devices` (> 1): how many devices the session sold may cover, sharing its allotment. */
  devices?: number;
}

export interface QuoteInput {
  /** Smallest-unit integer: a decimal string of digits ("1500000"), a bigint, or a safe integer number. */
  amount?: string | bigint | number | undefined;
  steps?: string | bigint | number | undefined;
}

/** `method` picks the payment method; the other fields are that method's (signature, voucher code, …). */
export interface PaymentFields {
  method: string;
  [field: string]: unknown;
}

/**
 * A purchase, the one type from the API edge (ubus `purchase`, the LAN endpoint's routes) to the payment methods. The
 * edge checks its types (src/api/args.ts, src/api/payment.ts) and the merchant trusts them; what the fields say (a
 * unicast MAC, an IP address, lengths) sessions.prepare checks.
 */
export interface PurchaseRequest {
  mac: string;
  ip?: string;
  user?: string;
  plan?: string;
  /** Smallest units offered; the plan's price per step decides how many steps that buys. */
  amount?: bigint;
  steps?: bigint;
  payment: PaymentFields;
  /** The caller's retry key (`payment.idempotency_key` on the wire). */
  idempotencyKey?: string;
}

export interface PaymentContext {
  quote: Quote;
  request: PurchaseRequest;
  now: number;
}

/** What a method that decides the session itself (a RADIUS voucher) grants instead of the plan's quote. */
export interface GrantTerms {
  metric: Metric;
  /** Seconds or bytes. */
  allotment: bigint;
  /** Data sessions: a hard deadline (ms since the epoch), or null. */
  expiresAt: number | null;
  /** The session's user (a voucher's User-Name): the device limit applies per user. Absent: the request's. */
  user?: string;
  /** The plan the session is of (a printed voucher's batch): its speed tier and reports; absent: none. */
  plan?: string;
  /** Devices the session may cover (a printed voucher of a several-devices plan). */
  devices?: number;
  /** The session's speed tier (a voucher's WISPr/MikroTik rates), journaled with it; absent or null: none. */
  rates?: { downBps: number | null; upBps: number | null } | null;
}

/** What precheck may tell the merchant before any money moves. */
export interface PrecheckResult {
  /** The reference authorize will return, when the payment already names it: checked for replay and held. */
  reference?: string;
}

export interface PaymentMethod {
  readonly name: string;
  /** Admin-only methods are refused on the public purchase path (the portal may call `purchase`, not `grant`). */
  readonly adminOnly: boolean;
  /**
   * Optional: the method's checks that move no money (step 3 above), after the merchant's and the session checks and
   * before authorize. Throws a SluiceError to refuse. May return the payment's reference if it is known already.
   */
  precheck?(ctx: PaymentContext): PrecheckResult | void | Promise<PrecheckResult | void>;
  /**
   * Collects at least `quote.price` of `quote.asset` (or proves it was collected) and returns the reference.
   * Throws a SluiceError with the method's own code when it cannot; nothing is granted then.
   */
  authorize(ctx: PaymentContext): Promise<PaymentRef & { terms?: GrantTerms }>;
  /**
   * The method's reply decides metric and allotment (`terms` on what authorize returns), not the plan: the merchant
   * grants those terms and does not compare an amount with the plan's price. No money moves (a voucher).
   */
  readonly setsTerms?: boolean;
  /** Sells free-trial plans (`trial_every`); every other non-admin method is refused them (ERR_TRIAL_PLAN). */
  readonly sellsTrials?: boolean;
  /**
   * Optional: the method decides what the payment buys (x402: the whole steps the signed value pays for) using the
   * plan's `quote`. Runs before authorize, so anything it throws refuses the purchase before money moves.
   */
  quoteFor?(request: PurchaseRequest, quote: (input: QuoteInput) => Quote): Quote;
  /**
   * Optional: undo an authorization whose session could not be granted (the journal failed, the price was not met):
   * refund, release the escrow, return the voucher. Never called for a reference some session holds (a replay).
   * Best effort; the purchase fails either way.
   */
  release?(ref: PaymentRef, reason: Error): Promise<void>;
}
