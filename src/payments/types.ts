/**
 * A payment method turns a quote into money (or a voucher, or an admin's word) and says so with a PaymentRef.
 * Adding a method = one file exporting a PaymentMethod + one line in builtin.ts.
 */
import type { Metric, PaymentRef } from '../sessions/model.ts';
import type { PurchaseRequest, Quote, QuoteInput } from '../merchant/types.ts';

export type { PaymentRef };

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
  /** The session's user (a voucher's User-Name): the device limit applies per user. */
  user: string;
}

export interface PaymentMethod {
  readonly name: string;
  /** Admin-only methods are refused on the public purchase path (the portal may call `purchase`, not `grant`). */
  readonly adminOnly: boolean;
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
  /**
   * Optional: the method decides what the payment buys (x402: the whole steps the signed value pays for) using the
   * plan's `quote`. Runs before authorize, so anything it throws refuses the purchase before money moves.
   */
  quoteFor?(request: PurchaseRequest, quote: (input: QuoteInput) => Quote): Quote;
  /**
   * Optional: undo an authorization whose session could not be granted (the journal failed, a replay was found):
   * refund, release the escrow, return the voucher. Best effort; the purchase fails either way.
   */
  release?(ref: PaymentRef, reason: Error): Promise<void>;
}
