/**
 * The running cashu method's face to its LAN routes (lan-routes.ts): the NUT-18 offer and Lightning's invoices. Read
 * with the method when the tollgate section opens it (index.ts), with cashu-ts and the Lightning quotes under it: the
 * routes themselves are registered at every start, and a router without the section never loads this.
 */
import { cashuLib } from '../../cashu/index.ts';
import type { Config } from '../../config/index.ts';
import { LN_PREFIX, loggedRef, openQuote, quoteState, type LightningPort } from './lightning.ts';
import { notEnabled, type CashuLanFace } from './lan-routes.ts';
import { checkSteps, stepsCap } from './steps.ts';

/** The face over the current config (a reload's prices apply at once). */
export function cashuLanFace(current: () => Config, method: LightningPort): CashuLanFace {
  return {
    lightning: (mac, ip, steps) => openQuote(method, mac, ip, steps),
    lightningState: (quote) => quoteState(method, quote),
    loggedQuote: (quote) => loggedRef(`${LN_PREFIX}${quote}`),
    offer(steps) {
      const config = current();
      const t = config.tollgate;
      const plan = t && config.pricing.find((p) => p.id === t.plan);
      if (!t || !plan) throw notEnabled();
      const cap = stepsCap(t, plan);
      const n = steps ?? t.minSteps;
      checkSteps(t.minSteps, cap, n);
      // Single use, in-band (no transport): the wallet pays it by handing over a token, which the customer pastes.
      const request = new (cashuLib().PaymentRequest)(
        undefined,
        undefined,
        Number(n * t.pricePerStep),
        t.unit,
        [...t.mints],
        `WiFi: ${n} × ${plan.stepSize} ${plan.metric}`,
        true,
      );
      return {
        plan: plan.id,
        metric: plan.metric,
        step_size: plan.stepSize.toString(),
        unit: t.unit,
        price_per_step: t.pricePerStep.toString(),
        min_steps: t.minSteps.toString(),
        max_steps: cap.toString(),
        mints: [...t.mints],
        steps: n.toString(),
        payment_request: request.toEncodedCreqA(),
        lightning: true,
      };
    },
  };
}
