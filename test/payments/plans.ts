/** Plans the payment methods' unit tests sell: an hour of time at 0.50 USDC, 1–10 steps. */
import type { PricingPlan } from '../../src/config/types.ts';

export const HOUR_PLAN: PricingPlan = {
  id: 'hour',
  metric: 'seconds',
  stepSize: 3600n,
  pricePerStep: 500_000n,
  asset: '',
  currency: 'USDC',
  decimals: 6,
  minSteps: 1n,
  maxSteps: 10n,
};
