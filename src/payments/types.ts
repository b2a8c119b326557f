/**
 * A payment method turns a quote into money (or a voucher, or an admin's word) and says so with a PaymentRef.
 * Adding a method = one file exporting a PaymentMethod + one line in builtin.ts.
 */
import type { PaymentRef } from '../sessions/model.ts';
import type { PurchaseRequest, Quote } from '../merchant/types.ts';

export type { PaymentRef };

export interface PaymentContext {
  quote: Quote;
  request: PurchaseRequest;
  now: number;
}

export interface PaymentMethod {
  readonly name: string;
  /** Admin-only methods are refused on the public purchase path (the portal may call `purchase`, not `grant`). */
  readonly adminOnly: boolean;
  /**
   * Collects at least `quote.price` of `quote.asset` (or proves it was collected) and returns the reference.
   * Throws a SluiceError with the method's own code when it cannot; nothing is granted then.
   */
  authorize(ctx: PaymentContext): Promise<PaymentRef>;
  /**
   * Optional: undo an authorization whose session could not be granted (the journal failed, a replay was found):
   * refund, release the escrow, return the voucher. Best effort; the purchase fails either way.
   */
  release?(ref: PaymentRef, reason: Error): Promise<void>;
}
