/**
 * A free trial is the venue's, not each router's (docs/roaming.md, "Free trials"): the fleet's answer to a claim says
 * when the device last had each trial plan anywhere in the venue, and a router sells a trial only on a fresh answer
 * that names none within the plan's `trial_every`. Pure: what to refuse, from what the fleet said.
 */
import { SluiceError } from '../errors.ts';
import { optNumber } from './venue-args.ts';

/** A trial asked for: its plan, and the plan's `trial_every` in ms. */
export interface TrialAsk {
  plan: string;
  everyMs: number;
}

/** The answer's `trials` (plan → ms), what is well-formed of it. */
export function trialsOf(v: unknown): Record<string, number> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const out: Record<string, number> = {};
  for (const [plan, at] of Object.entries(v).slice(0, 16)) {
    const ms = optNumber(at);
    if (ms !== null) out[plan] = ms;
  }
  return out;
}

/**
 * Refuses the trial when the fleet could not be asked (`reachable` false: no answer to this sale's claim), or said
 * the device had it within `trial_every`; else nothing.
 */
export function checkVenueTrial(
  o: { mac: string; venue: string; reachable: boolean; trials: Record<string, number>; now: number },
  trial: TrialAsk,
): void {
  if (!o.reachable)
    throw new SluiceError(
      'ERR_TRIAL_VENUE_UNREACHABLE',
      `the venue ${o.venue} cannot be asked whether ${o.mac} had its free trial at another of its routers: no free ` +
        'trial until it answers (paid plans sell as before)',
      { details: { plan: trial.plan } },
    );
  const at = o.trials[trial.plan];
  if (at === undefined || o.now - at >= trial.everyMs) return;
  const nextAt = at + trial.everyMs;
  throw new SluiceError(
    'ERR_TRIAL_USED',
    `this device had its free trial of plan ${trial.plan} in venue ${o.venue}; the next one from ` +
      new Date(nextAt).toISOString(),
    { details: { plan: trial.plan, next_at: Math.ceil(nextAt / 1000), venue: o.venue } },
  );
}
