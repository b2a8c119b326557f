/**
 * `voucher` with printed codes: the door RADIUS vouchers use (POST /voucher, ubus `purchase` with payment.method
 * "voucher", the pay page's form), tried first: a code of the local book sells its batch's plan and steps; any other
 * goes to the RADIUS voucher method when RADIUS is on (the one this stands in front of), else it is a wrong code.
 *
 * A code sells one session, once, ever. Its reference is `<batch>/<hash>` (the batch rides to MQTT and the hook with
 * the payment; the hash is the code's, never the code), announced by precheck, so the merchant refuses a code whose
 * session the journal holds (ERR_PAYMENT_REPLAYED) and a code another device is redeeming right now
 * (ERR_PAYMENT_IN_PROGRESS) where it refuses every method's replays; the book's own mark refuses one the journal
 * has forgotten. Typed again on another device it is refused, not moved (a RADIUS voucher's session moves: restore.ts).
 */
import { refusalWithoutStack, SluiceError } from '../../errors.ts';
import type { Config } from '../../config/index.ts';
import type { GrantTerms, PaymentContext, PaymentMethod, PaymentRef, PrecheckResult } from '../types.ts';
import { clientKeys, GuessLimiter } from '../voucher/guesses.ts';
import type { VoucherMethod } from '../voucher/voucher.ts';
import type { FoundCode, VoucherStore } from './store.ts';

export const VOUCHER_METHOD_NAME = 'voucher';

function typedCode(payment: Record<string, unknown>): string {
  const v = payment['code'];
  if (typeof v !== 'string' || v === '' || Buffer.byteLength(v) > 253 || v.includes('\0')) {
    throw new SluiceError('ERR_INVALID_ARGUMENT', 'payment.code must be a non-empty string (253 bytes at most)');
  }
  return v;
}

/** `<batch>/<hash>`: a RADIUS voucher's reference is `<user>/<12 hex>`, never 32. */
const LOCAL_REFERENCE = /^[2-9A-Z]{6}\/([0-9a-f]{32})$/;

export const referenceOf = (found: FoundCode): string => `${found.batch.id}/${found.hash}`;

export class LocalVoucherMethod implements PaymentMethod {
  readonly name = VOUCHER_METHOD_NAME;
  readonly adminOnly = false;
  readonly setsTerms = true;
  readonly figures = { sold: 0, wrong: 0, limited: 0 };
  /** This door's own limiter, while RADIUS is off. */
  private readonly own = new GuessLimiter();

  /** `radiusNow`: the RADIUS voucher method while RADIUS is on (codes not in the book go to it), else null. */
  constructor(
    readonly store: VoucherStore,
    private readonly radiusNow: () => VoucherMethod | null,
  ) {}

  private get radius(): VoucherMethod | null {
    return this.radiusNow();
  }

  /** RADIUS's limiter when RADIUS is on (one bound for both kinds of code), else this door's own. */
  private get guesses(): GuessLimiter {
    return this.radius?.guesses ?? this.own;
  }

  async precheck(ctx: PaymentContext): Promise<PrecheckResult | void> {
    const code = typedCode(ctx.request.payment);
    const keys = this.clientKeys(ctx);
    const limited = this.guesses.refusal(keys, ctx.now);
    if (limited) {
      this.figures.limited++;
      throw limited;
    }
    const found = this.store.find(code);
    if (found) {
      // A real ticket (sellable or not): no guess, for the router's bound.
      this.guesses.notAGuess(ctx.now);
      this.assertSells(found, ctx.now);
      return { reference: referenceOf(found) };
    }
    if (this.radius) return this.radius.checkFields(ctx);
    throw this.wrong(keys, ctx.now);
  }

  async authorize(ctx: PaymentContext): Promise<PaymentRef & { terms: GrantTerms }> {
    const code = typedCode(ctx.request.payment);
    const found = this.store.find(code);
    if (!found) {
      if (!this.radius) throw this.wrong(this.clientKeys(ctx), ctx.now);
      try {
        const paid = await this.radius.ask(ctx);
        this.guesses.notAGuess(ctx.now);
        return paid as PaymentRef & { terms: GrantTerms };
      } catch (err) {
        // The RADIUS server said no: a wrong code like any other (RADIUS vouchers are guessed through this door too).
        if (err instanceof SluiceError && err.code === 'ERR_VOUCHER_REJECTED')
          this.guesses.charge(this.clientKeys(ctx), ctx.now);
        throw err;
      }
    }
    // Again: the batch may have been revoked since precheck.
    this.assertSells(found, ctx.now);
    await this.store.redeem(found.hash, ctx.request.mac, ctx.now);
    this.figures.sold++;
    const b = found.batch;
    const terms: GrantTerms = {
      metric: b.metric,
      allotment: b.allotment,
      plan: b.plan,
      // A data plan's time_limit: the session also ends this long after the sale (as a plan bought with money).
      expiresAt: b.timeLimit !== undefined ? ctx.now + Number(b.timeLimit) * 1000 : null,
      ...(b.devices !== undefined && { devices: b.devices }),
    };
    // A priced batch's ticket was paid at the counter: its payment says how much, in the batch's currency.
    const price = b.price;
    return {
      method: this.name,
      reference: referenceOf(found),
      amount: price?.amount ?? 0n,
      asset: price?.currency ?? ctx.quote.asset,
      at: ctx.now,
      terms,
    };
  }

  /**
   * The session could not be granted: the code sells again (never called for a reference a session holds). A RADIUS
   * voucher's uses are the server's to count: nothing here to give back.
   */
  async release(ref: PaymentRef): Promise<void> {
    const local = LOCAL_REFERENCE.exec(ref.reference);
    if (local) return this.store.release(local[1]!, ref.at);
  }

  /** Refuses a code of a revoked or expired batch (a real ticket: not a guess). */
  private assertSells(found: FoundCode, now: number): void {
    const b = found.batch;
    if (b.revoked !== null)
      throw new SluiceError('ERR_VOUCHER_REJECTED', 'this voucher was withdrawn; please ask the staff', {
        details: { reason: 'revoked' },
      });
    if (b.expires !== null && now > b.expires) {
      throw new SluiceError(
        'ERR_VOUCHER_REJECTED',
        `this voucher expired on ${new Date(b.expires).toISOString().slice(0, 10)}`,
        { details: { reason: 'expired' } },
      );
    }
  }

  private wrong(keys: readonly string[], now: number): SluiceError {
    this.guesses.charge(keys, now);
    this.figures.wrong++;
    return refusalWithoutStack('ERR_VOUCHER_REJECTED', 'this voucher code is not valid; please check it', {
      details: { reason: 'unknown' },
    });
  }

  private clientKeys(ctx: PaymentContext): string[] {
    return clientKeys(ctx.request);
  }
}

/** A plan's terms for a batch, from the config now (ERR_UNKNOWN_PLAN, or steps outside the plan's bounds). */
export function batchTermsOf(config: Config, planId: string, steps: bigint) {
  const plan = config.pricing.find((p) => p.id === planId);
  if (!plan)
    throw new SluiceError('ERR_UNKNOWN_PLAN', `no plan ${JSON.stringify(planId.slice(0, 64))}`, {
      details: { plan: planId },
    });
  if (plan.trialEvery !== undefined)
    throw new SluiceError('ERR_TRIAL_PLAN', `plan ${plan.id} is a free trial: vouchers sell paid plans`);
  if (steps < plan.minSteps || steps > plan.maxSteps) {
    throw new SluiceError(
      'ERR_INVALID_ARGUMENT',
      `steps: plan ${plan.id} sells ${plan.minSteps} to ${plan.maxSteps} steps`,
      { details: { argument: 'steps' } },
    );
  }
  return {
    plan: plan.id,
    metric: plan.metric,
    steps,
    allotment: steps * plan.stepSize,
    ...(plan.timeLimit !== undefined && { timeLimit: plan.timeLimit }),
    ...(plan.devices !== undefined && plan.devices > 1 && { devices: plan.devices }),
  };
}
