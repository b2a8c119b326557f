/**
 * The most one `extend` adds: one largest purchase of the session's plan (`max_steps × step_size`), what a customer
 * could buy at once. `extend` is the counter's tool (a staff login may call it and cannot call `grant` or `change`):
 * bounded for every caller, so no login can give away years through it; an admin who means more grants or changes.
 * A session without a plan (a grant), or whose plan is gone: its metric's largest plan. Null: no plan of its metric,
 * nothing bounds it, and the extend is refused. Pure.
 */
import type { Metric, PricingPlan } from '../config/index.ts';

export function extendCap(
  session: { plan: string | null; metric: Metric },
  plans: readonly Pick<PricingPlan, 'id' | 'metric' | 'stepSize' | 'maxSteps'>[],
): { max: bigint; plan: string } | null {
  const own = plans.find((p) => p.id === session.plan && p.metric === session.metric);
  if (own !== undefined) return { max: own.stepSize * own.maxSteps, plan: own.id };
  let best: { max: bigint; plan: string } | null = null;
  for (const p of plans) {
    if (p.metric !== session.metric) continue;
    const max = p.stepSize * p.maxSteps;
    if (best === null || max > best.max) best = { max, plan: p.id };
  }
  return best;
}
