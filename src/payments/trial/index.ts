/**
 * Free trials (plans with trial_every): the ledger of who had one when; cheap, so always there for a reload's plans.
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { PaymentPlugin } from '../plugin.ts';
import { TrialMethod } from './trial.ts';

/** POST /trial's body: {plan, device?}. */
const MAX_TRIAL_BYTES = 1024;

export const trialPlugin: PaymentPlugin = {
  name: 'trial',
  damagedState: 'ERR_TRIAL_STORE',
  register(add) {
    // POST /trial, when a plan is a free trial.
    add.lanUse({ name: 'trial', on: (c) => c.pricing.some((p) => p.trialEvery !== undefined) });
    // ubus `stats` → `trials`: granted, refused, remembered, limited; a damaged ledger says so.
    add.stats({ key: 'trials', absent: { available: false } });
    add.lanRoute({
      // A free trial for the caller's device: the same purchase as ubus `purchase` {payment: {method: trial, device}}.
      // `device` is the pay page's token for this browser (trial.ts).
      method: 'POST',
      path: '/trial',
      paying: true,
      async handler(req) {
        const { plan, device } = await req.json(MAX_TRIAL_BYTES, 'ERR_INVALID_ARGUMENT', '{plan, device?}');
        if (typeof plan !== 'string' || plan === '' || plan.length > 64)
          throw new SluiceError('ERR_INVALID_ARGUMENT', 'plan must be a plan id');
        let mac: string | null = null;
        try {
          mac = await req.mac();
          // Passed on whatever its type: the trial method refuses a device token that is not one.
          const answer = await req.purchase(mac, { method: 'trial', ...(device !== undefined && { device }) }, plan);
          req.log?.info('http free trial', { mac, ip: req.ip, plan });
          return { status: 200, body: answer };
        } catch (err) {
          const e = toSluiceError(err);
          // ERR_TRIAL_USED's details say when the next trial may be had (next_at): the page tells the customer.
          req.log?.info('http free trial refused', { mac, ip: req.ip, plan, code: e.code, reason: e.message });
          throw err;
        }
      },
    });
  },
  async open({ config, stats }) {
    const trial = TrialMethod.open(config.main.stateDir);
    stats(() => ({ ...trial.figures }));
    return { methods: [trial] };
  },
};
