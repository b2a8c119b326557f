/**
 * Purchase orchestration: quote → checks → the payment method authorizes → Grant → sessions.activate. Every check that
 * can fail without money moving runs before the method is called (see the order in src/payments/types.ts): plan,
 * amount, method, then (sessions.prepare) bad MAC, ip, user or idempotency key, metric clash, a replayed or in-flight
 * idempotency key or reference, the session limit, then the method's own precheck. A purchase's types were checked at
 * the API edge (PurchaseRequest); a grant's still are here. If the grant still fails afterwards, the method's `release`
 * is asked to undo the payment, unless some session holds that reference (a replay: releasing it would undo the other
 * purchase).
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import { systemClock, type Clock } from '../time.ts';
import type { Grant, Hold, PaymentRef, Session, SessionPurchasePort } from '../sessions/index.ts';
import { grantReference, type PaymentRegistry } from '../payments/index.ts';
import { parseUnits } from './amount.ts';
import type { Pricing } from './pricing.ts';
import type { GrantRequest, PurchaseRequest, PurchaseResult, Quote, Receipt } from './types.ts';

/** The part of SessionManager the merchant uses: its purchase path. */
export type SessionsPort = SessionPurchasePort;

export interface MerchantOptions {
  pricing: Pricing;
  sessions: SessionsPort;
  payments: PaymentRegistry;
  clock?: Clock;
}

/** Admin grant bounds: 10 years of time, 1 PiB of data. */
export const MAX_GRANT_SECONDS = 3653n * 86_400n;
export const MAX_GRANT_BYTES = 1n << 50n;

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string')
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a string`, { details: { argument: name } });
  return value;
}

/** The optional client fields a purchase or grant passes on to the session (sessions.prepare checks what they say). */
function clientOf({
  ip,
  user,
  idempotencyKey,
}: {
  ip?: string | undefined;
  user?: string | undefined;
  idempotencyKey?: string | undefined;
}): Pick<Grant, 'ip' | 'user' | 'idempotencyKey'> {
  return {
    ...(ip !== undefined && { ip }),
    ...(user !== undefined && { user }),
    ...(idempotencyKey !== undefined && { idempotencyKey }),
  };
}

/** A grant's client fields, whose types nothing before the merchant checked (the ubus grant does; not every caller). */
function grantClientOf(request: GrantRequest): Pick<Grant, 'ip' | 'user' | 'idempotencyKey'> {
  return clientOf({
    ip: optionalString(request.ip, 'ip'),
    user: optionalString(request.user, 'user'),
    idempotencyKey: optionalString(request.idempotencyKey, 'idempotency_key'),
  });
}

function referenceKey(method: string, reference: unknown): Pick<PaymentRef, 'method' | 'reference'> {
  if (typeof reference !== 'string' || reference === '' || reference.length > 256) {
    throw new SluiceError('ERR_PAYMENT_METHOD_INVALID', `payment method ${method} announced a bad reference`);
  }
  return { method, reference };
}

export class Merchant {
  private readonly clock: Clock;

  constructor(private readonly options: MerchantOptions) {
    this.clock = options.clock ?? systemClock;
  }

  quote(
    planId?: string | null,
    input: { amount?: string | bigint | number; steps?: string | bigint | number } = {},
  ): Quote {
    return this.options.pricing.quote(planId, input);
  }

  /** `admin: true` only from admin-only entry points (ubus ACL): it unlocks admin-only payment methods. */
  async purchase(request: PurchaseRequest, context: { admin?: boolean } = {}): Promise<PurchaseResult> {
    const client = clientOf(request);
    const planId = request.plan;
    const method = this.options.payments.get(request.payment.method);
    const q = method.quoteFor
      ? method.quoteFor(request, (input) => this.options.pricing.quote(planId, input))
      : this.options.pricing.quote(planId, { amount: request.amount, steps: request.steps });
    if (method.adminOnly && context.admin !== true) {
      throw new SluiceError(
        'ERR_PAYMENT_METHOD_ADMIN_ONLY',
        `payment method ${method.name} is for administrators only`,
      );
    }
    if (q.trialEvery !== undefined && !method.sellsTrials && !method.adminOnly) {
      throw new SluiceError('ERR_TRIAL_PLAN', `plan ${q.plan} is a free trial: ask for it with the trial method`);
    }
    const setsTerms = method.setsTerms === true;
    const hold = this.options.sessions.prepare({
      mac: request.mac,
      ...client,
      ...(!setsTerms && { plan: q.plan, metric: q.metric, allotment: q.allotment }),
    });
    try {
      const ctx = { quote: q, request, now: this.clock.now() };
      const announced = await method.precheck?.(ctx);
      const expected = announced?.reference === undefined ? null : referenceKey(method.name, announced.reference);
      if (expected) {
        if (this.options.sessions.isApplied(expected))
          throw new SluiceError('ERR_PAYMENT_REPLAYED', `payment ${expected.reference} was already applied`);
        hold.claim(`ref:${expected.method}:${expected.reference}`);
      }

      const { terms, ...paid } = await method.authorize(ctx);
      if (expected && (paid.method !== expected.method || paid.reference !== expected.reference)) {
        const err = new SluiceError(
          'ERR_PAYMENT_METHOD_INVALID',
          `payment method ${method.name} authorized ${paid.reference}, not the announced ${expected.reference}`,
        );
        await this.release(method.name, paid, err, hold);
        throw err;
      }
      if (
        paid.method !== method.name ||
        (setsTerms && terms === undefined) ||
        (!method.adminOnly && !setsTerms && paid.amount < q.price)
      ) {
        const err = new SluiceError(
          'ERR_PAYMENT_INSUFFICIENT',
          `payment method ${method.name} collected ${paid.amount} of ${q.price}`,
        );
        await this.release(method.name, paid, err, hold);
        throw err;
      }
      const payment: PaymentRef = terms ? paid : { ...paid, steps: q.steps };
      const grant: Grant = terms
        ? {
            mac: request.mac,
            metric: terms.metric,
            allotment: terms.allotment,
            expiresAt: terms.expiresAt,
            payment,
            ...client,
            ...(terms.user !== undefined && { user: terms.user }),
            ...(terms.plan !== undefined && { plan: terms.plan }),
            ...(terms.devices !== undefined && { devices: terms.devices }),
            // A voucher's rates are the session's own, journaled with it (a restart re-limits its gate with them).
            ...(terms.rates && { rates: terms.rates }),
          }
        : {
            mac: request.mac,
            metric: q.metric,
            allotment: q.allotment,
            plan: q.plan,
            payment,
            ...client,
            // A data plan with a time_limit: the session ends at whichever comes first (a top-up keeps the deadline).
            ...(q.timeLimit !== undefined && { expiresAt: ctx.now + Number(q.timeLimit) * 1000 }),
            // Several devices per purchase: the session takes this many (a top-up keeps the session's own number).
            ...(q.devices !== undefined && { devices: q.devices }),
          };
      let result: { session: Session; toppedUp: boolean };
      try {
        result = await this.options.sessions.activate(grant, hold);
      } catch (err) {
        await this.release(method.name, payment, toSluiceError(err), hold);
        throw err;
      }
      return {
        ...result,
        quote: terms ? null : q,
        receipt: receipt(result.session, result.toppedUp, terms ? terms.allotment : q.allotment, payment),
      };
    } finally {
      hold.release();
    }
  }

  /**
   * The admin's free grant: time or data straight to a MAC, no pricing; both: data that also ends after that time,
   * whichever comes first. `idempotencyKey` makes a retry safe.
   */
  async grant(request: GrantRequest): Promise<PurchaseResult> {
    if (typeof request !== 'object' || request === null)
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'grant request must be an object');
    const hasSeconds = request.seconds !== undefined && request.seconds !== null;
    const hasBytes = request.bytes !== undefined && request.bytes !== null;
    if (!hasSeconds && !hasBytes) throw new SluiceError('ERR_INVALID_AMOUNT', 'grant needs seconds, bytes, or both');
    const seconds = hasSeconds ? parseUnits(request.seconds, 'seconds') : null;
    if (seconds !== null && (seconds <= 0n || seconds > MAX_GRANT_SECONDS)) {
      throw new SluiceError('ERR_INVALID_AMOUNT', `seconds must be between 1 and ${MAX_GRANT_SECONDS}`);
    }
    const metric = hasBytes ? 'bytes' : 'seconds';
    const allotment = hasBytes ? parseUnits(request.bytes, 'bytes') : seconds!;
    if (hasBytes && (allotment <= 0n || allotment > MAX_GRANT_BYTES)) {
      throw new SluiceError('ERR_INVALID_AMOUNT', `bytes must be between 1 and ${MAX_GRANT_BYTES}`);
    }
    const client = grantClientOf(request);
    // A grant of a plan carries that plan's speed tier (the gate looks the plan up); an unknown id is refused.
    const plan = optionalString(request.plan, 'plan');
    if (plan !== undefined) this.options.pricing.plan(plan);
    const hold = this.options.sessions.prepare({ mac: request.mac, ...client, metric, allotment });
    try {
      const now = this.clock.now();
      const payment = grantReference('', now);
      const grant: Grant = {
        mac: request.mac,
        metric,
        allotment,
        payment,
        ...client,
        ...(plan !== undefined && { plan }),
        ...(hasBytes && seconds !== null && { expiresAt: now + Number(seconds) * 1000 }),
        // Checked by validateGrant (1 … MAX_DEVICES) before anything is written.
        ...(request.devices !== undefined && { devices: request.devices }),
        ...(request.liveOnly === true && { liveOnly: true }),
      };
      const result = await this.options.sessions.activate(grant, hold);
      return { ...result, quote: null, receipt: receipt(result.session, result.toppedUp, allotment, payment) };
    } finally {
      hold.release();
    }
  }

  private async release(methodName: string, ref: PaymentRef, reason: Error, hold: Hold): Promise<void> {
    const method = this.options.payments.get(methodName);
    if (!method.release) return;
    // A reference some session (or another purchase in flight) holds is that purchase's money: never undo it.
    if (this.options.sessions.holdsReference(ref, hold)) return;
    try {
      await method.release(ref, reason);
    } catch {
      // The purchase already failed with `reason`; a failed release is the method's to retry and report.
    }
  }
}

function receipt(session: Session, toppedUp: boolean, allotment: bigint, payment: PaymentRef): Receipt {
  return {
    sessionId: session.id,
    mac: session.mac,
    plan: session.plan,
    metric: session.metric,
    allotment,
    totalAllotment: session.allotment,
    expiresAt: session.expiresAt,
    toppedUp,
    method: payment.method,
    reference: payment.reference,
    paid: payment.amount,
    asset: payment.asset,
    at: payment.at,
  };
}
