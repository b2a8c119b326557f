/**
 * Pricing: plans from config → quotes. All bigint. Rules (docs/errors.md lists the codes):
 *  - give `amount` or `steps`, not both; with neither, the plan's minimum purchase is quoted;
 *  - an amount buys floor(amount / pricePerStep) steps and is charged steps × pricePerStep: a customer is never
 *    charged for more than they get (the remainder is not taken);
 *  - fewer than max(minSteps, 1) steps → ERR_AMOUNT_TOO_SMALL; more than maxSteps (0 = no cap) → ERR_AMOUNT_TOO_LARGE;
 *  - free plans (pricePerStep 0) are quoted by steps only; selling them still needs a payment method that accepts
 *    them (today only the admin `grant`).
 */
import { SluiceError } from '../errors.ts';
import type { PricingPlan } from '../config/index.ts';
import { MAX_ALLOTMENT_BYTES, MAX_ALLOTMENT_SECONDS } from '../sessions/index.ts';
import { parseUnits } from './amount.ts';
import type { Quote, QuoteInput } from './types.ts';

export function quote(plan: PricingPlan, input: QuoteInput = {}): Quote {
  if (plan.stepSize <= 0n || plan.pricePerStep < 0n) {
    throw new SluiceError('ERR_PLAN_INVALID', `plan ${plan.id} has a step size or price that cannot be sold`);
  }
  const hasAmount = input.amount !== undefined && input.amount !== null;
  const hasSteps = input.steps !== undefined && input.steps !== null;
  if (hasAmount && hasSteps) throw new SluiceError('ERR_INVALID_AMOUNT', 'give either amount or steps, not both');
  const minSteps = plan.minSteps > 1n ? plan.minSteps : 1n;
  let steps: bigint;
  if (hasSteps) steps = parseUnits(input.steps, 'steps');
  else if (hasAmount) {
    const amount = parseUnits(input.amount, 'amount');
    if (plan.pricePerStep === 0n)
      throw new SluiceError('ERR_INVALID_AMOUNT', `plan ${plan.id} is free: ask for steps, not an amount`);
    steps = amount / plan.pricePerStep;
  } else steps = minSteps;
  if (steps < minSteps) {
    throw new SluiceError(
      'ERR_AMOUNT_TOO_SMALL',
      `plan ${plan.id} sells at least ${minSteps} step(s) of ${plan.stepSize} ${plan.metric} ` +
        `for ${minSteps * plan.pricePerStep} (smallest unit of ${plan.asset || plan.currency})`,
      {
        details: { plan: plan.id, minSteps: minSteps.toString(), minPrice: (minSteps * plan.pricePerStep).toString() },
      },
    );
  }
  const maxAllotment = plan.metric === 'seconds' ? MAX_ALLOTMENT_SECONDS : MAX_ALLOTMENT_BYTES;
  if ((plan.maxSteps > 0n && steps > plan.maxSteps) || steps * plan.stepSize > maxAllotment) {
    const cap = plan.maxSteps > 0n ? plan.maxSteps : maxAllotment / plan.stepSize;
    throw new SluiceError('ERR_AMOUNT_TOO_LARGE', `plan ${plan.id} sells at most ${cap} step(s) per purchase`, {
      details: { plan: plan.id, maxSteps: cap.toString(), maxPrice: (cap * plan.pricePerStep).toString() },
    });
  }
  return {
    plan: plan.id,
    metric: plan.metric,
    steps,
    allotment: steps * plan.stepSize,
    price: steps * plan.pricePerStep,
    asset: plan.asset,
    currency: plan.currency,
    decimals: plan.decimals,
    stepSize: plan.stepSize,
    pricePerStep: plan.pricePerStep,
    ...(plan.timeLimit !== undefined && { timeLimit: plan.timeLimit }),
    ...(plan.trialEvery !== undefined && { trialEvery: plan.trialEvery }),
    ...(plan.trialLimit !== undefined && { trialLimit: plan.trialLimit }),
    ...(plan.devices !== undefined && { devices: plan.devices }),
  };
}

/** The configured plans; the first is the default. Swapped whole on reload. */
export class Pricing {
  private plans: readonly PricingPlan[];

  constructor(plans: readonly PricingPlan[]) {
    this.plans = plans;
  }

  setPlans(plans: readonly PricingPlan[]): void {
    this.plans = plans;
  }

  list(): readonly PricingPlan[] {
    return this.plans;
  }

  /** The plan of that id, if it is still configured (a session's plan may have left the config since its sale). */
  find(id: string | null): PricingPlan | undefined {
    return this.plans.find((p) => p.id === id);
  }

  plan(id?: string | null): PricingPlan {
    if (id === undefined || id === null || id === '') {
      const first = this.plans[0];
      if (!first) throw new SluiceError('ERR_UNKNOWN_PLAN', 'no pricing plan is configured');
      return first;
    }
    const found = this.find(id);
    if (!found) {
      throw new SluiceError(
        'ERR_UNKNOWN_PLAN',
        `unknown plan ${JSON.stringify(String(id).slice(0, 64))}; ` +
          `plans: ${this.plans.map((p) => p.id).join(', ') || 'none'}`,
      );
    }
    return found;
  }

  quote(planId: string | null | undefined, input: QuoteInput = {}): Quote {
    return quote(this.plan(planId), input);
  }
}
