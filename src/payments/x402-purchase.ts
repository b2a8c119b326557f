/**
 * The one x402 purchase pipeline: the `authorize` of every x402 method (exact, upto, batch-settlement, x402-session)
 * runs these steps in this order, each refusing before the next can move money:
 *
 *   1. check: the payload parsed and checked locally (moves no money), once per purchase: precheck and authorize are
 *      handed the same context and share the result, so authorize acts on what precheck found;
 *   2. look: what this router knows of the payload that refuses it at once (a replay, another device's payload, a
 *      payment found void): the scheme's rule that a payload pays one purchase by one device, ever;
 *   3. hold: one payload (or the channel it pays on) in one purchase at a time: a second use while the first is in
 *      flight is refused with the scheme's code, and the scheme's resolver leaves alone what is held;
 *   4. earlier: a purchase of this payload that a crash or a lost answer left unfinished is finished now (its
 *      PaymentRef), or refused; nothing known: a new purchase;
 *   5. verify: the facilitator's verdict (or the scheme's own, when a fresh local mirror answers for it);
 *   6. record: what the purchase is, on flash, before the money step (a crash after it is resolved, never lost);
 *   7. act: the money step (settle, deposit, create; for upto nothing moves until the session ends) and its outcome,
 *      as the PaymentRef the merchant grants, or the error that says what happened to the money.
 *
 * A scheme supplies the steps (X402Steps); the order, the once-per-purchase check and the hold are here.
 */
import type { SluiceError } from '../errors.ts';
import type { PaymentRef } from '../sessions/index.ts';
import { PurchaseChecks } from './purchase-checks.ts';
import type { PaymentContext } from './types.ts';

/** What a scheme supplies: its checks, its replay rule and its money step. */
export interface X402Steps<Checked, Verdict, Held> {
  /** Parses and checks the payload locally: moves no money. */
  check(ctx: PaymentContext): Promise<Checked>;
  /** The key the hold takes: the payload's reference, or the channel it pays on. */
  holdKey(checked: Checked): string;
  /** The refusal when another purchase holds the key. */
  held(checked: Checked): SluiceError;
  /**
   * The replay rule: throws when what is known refuses the payload. Synchronous, so nothing runs between it and the
   * hold.
   */
  look?(ctx: PaymentContext, checked: Checked): void;
  /** A purchase of this payload left unfinished, finished now; undefined: a new purchase. */
  earlier?(ctx: PaymentContext, checked: Checked): Promise<PaymentRef | undefined>;
  verify(ctx: PaymentContext, checked: Checked): Promise<Verdict>;
  /** The purchase on flash before the money step. */
  record(ctx: PaymentContext, checked: Checked, verdict: Verdict): Promise<Held>;
  act(ctx: PaymentContext, checked: Checked, held: Held): Promise<PaymentRef>;
}

/** Keys held by a purchase in flight (or by the scheme's resolver, which takes the same hold). */
export interface PurchaseHold {
  /** Takes `key`: false when another holds it (a hold that waits a little for its key resolves later). */
  take(key: string): boolean | Promise<boolean>;
  release(key: string): void;
  has(key: string): boolean;
}

/** The hold of most schemes: a key is held or not, nobody waits. */
export class KeyHold implements PurchaseHold {
  private readonly keys = new Set<string>();

  take(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    return true;
  }

  release(key: string): void {
    this.keys.delete(key);
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }
}

export class X402Purchase<Checked, Verdict, Held> {
  private readonly checks = new PurchaseChecks<Checked>();

  constructor(
    private readonly steps: X402Steps<Checked, Verdict, Held>,
    readonly hold: PurchaseHold = new KeyHold(),
  ) {}

  /** Step 1, once per purchase: precheck and authorize share it. */
  checked(ctx: PaymentContext): Promise<Checked> {
    return this.checks.of(ctx, (c) => this.steps.check(c));
  }

  async authorize(ctx: PaymentContext): Promise<PaymentRef> {
    const checked = await this.checked(ctx);
    const key = this.steps.holdKey(checked);
    this.steps.look?.(ctx, checked);
    if (!(await this.hold.take(key))) throw this.steps.held(checked);
    try {
      const earlier = await this.steps.earlier?.(ctx, checked);
      if (earlier) return earlier;
      const verdict = await this.steps.verify(ctx, checked);
      const held = await this.steps.record(ctx, checked, verdict);
      return await this.steps.act(ctx, checked, held);
    } finally {
      this.hold.release(key);
    }
  }
}
