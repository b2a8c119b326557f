/**
 * A method's checks of one purchase, made once: precheck (no money moves) and authorize (money moves) are handed the
 * same PaymentContext, and authorize must act on what precheck found, not on a second look at a state that moved.
 */
import type { PaymentContext } from './types.ts';

export class PurchaseChecks<T> {
  private readonly made = new WeakMap<PaymentContext, Promise<T>>();

  /** The result of `check` for this purchase: run on the first call, the same promise after. */
  of(ctx: PaymentContext, check: (ctx: PaymentContext) => Promise<T>): Promise<T> {
    let pending = this.made.get(ctx);
    if (!pending) {
      pending = check(ctx);
      this.made.set(ctx, pending);
    }
    return pending;
  }
}
