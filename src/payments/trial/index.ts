/** Free trials (plans with trial_every): the ledger of who had one when; cheap, so always there for a reload's plans. */
import type { PaymentPlugin } from '../plugin.ts';
import { TrialMethod } from './trial.ts';

export const trialPlugin: PaymentPlugin = {
  name: 'trial',
  // POST /trial, when a plan is a free trial.
  lanUse: { name: 'trial', on: (c) => c.pricing.some((p) => p.trialEvery !== undefined) },
  async open({ config }) {
    const trial = TrialMethod.open(config.main.stateDir);
    return { methods: [trial], trials: trial.figures };
  },
};
