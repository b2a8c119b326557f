/**
 * How many steps one Cashu payment may buy: the one rule for a token (token-pricing.ts stepsFor), the NUT-18 offer
 * (lan-face.ts) and a Lightning invoice (lightning.ts openQuote), so no door sells more than the others.
 */
import { SluiceError } from '../../errors.ts';
import type { PricingPlan, TollgateConfig } from '../../config/index.ts';

/** Allotments stay exact as JS numbers (the meter and timers work in numbers). */
export const MAX_ALLOTMENT = { seconds: 3653n * 86_400n, bytes: 1n << 50n } as const;

/**
 * The most steps one payment buys: `tollgate.max_steps`, else the plan's own `max_steps` (0: none), and never an
 * allotment past MAX_ALLOTMENT.
 */
export function stepsCap(
  t: Pick<TollgateConfig, 'maxSteps'>,
  plan: Pick<PricingPlan, 'maxSteps' | 'metric' | 'stepSize'>,
): bigint {
  const exact = MAX_ALLOTMENT[plan.metric] / plan.stepSize;
  const cap = t.maxSteps ?? (plan.maxSteps > 0n ? plan.maxSteps : exact);
  return cap < exact ? cap : exact;
}

/** An asked number of steps (the offer's, an invoice's) within min_steps..cap, else ERR_INVALID_ARGUMENT. */
export function checkSteps(min: bigint, cap: bigint, steps: bigint): void {
  if (steps < min || steps > cap)
    throw new SluiceError('ERR_INVALID_ARGUMENT', `steps: from ${min} to ${cap}`, { details: { argument: 'steps' } });
}
