/**
 * A free trial is the venue's, not each router's (docs/roaming.md, "Free trials"): the fleet's answer to a claim says
 * when the device last had each trial plan anywhere in the venue, and a router sells a trial only on a fresh answer
 * that names none within the plan's `trial_every`. Pure: what to refuse, from what the fleet said.
 */
import { SluiceError } from '../errors.ts';
import { optNumber } from './venue-args.ts';
import type { TrialHold, VenueState } from './venue-state.ts';

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

/** The answer's `trial` (the venue's hold on the trial its claim asked for), as the state keeps it; else undefined. */
export function trialOf(v: unknown): TrialHold | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { plan, reserved, until } = v as Record<string, unknown>;
  if (typeof plan !== 'string') return undefined;
  const ms = optNumber(until);
  return { plan, reserved: reserved === true, ...(ms !== null && { until: ms }) };
}

/** Whether the fleet answered the claim of this trial (its hold on it, either way). */
export const answered = (s: VenueState, trial: TrialAsk): boolean => s.trial?.plan === trial.plan;

/**
 * Refuses the trial when the fleet could not be asked (`reachable` false: no answer to this sale's claim), said the
 * device had it within `trial_every`, or did not hold it for this sale (`hold`: another router of the venue claimed
 * it first, in the same second, and holds it until `until`); else nothing.
 */
export function checkVenueTrial(
  o: {
    mac: string;
    venue: string;
    reachable: boolean;
    hold: TrialHold | undefined;
    trials: Record<string, number>;
    now: number;
  },
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
  const had = at !== undefined && o.now - at < trial.everyMs;
  if (o.hold?.reserved === true && !had) return;
  if (!had && o.hold?.until !== undefined)
    throw new SluiceError(
      'ERR_TRIAL_USED',
      `this device's free trial of plan ${trial.plan} in venue ${o.venue} is being given at another of its routers; ` +
        `if it is not, the next one from ${new Date(o.hold.until).toISOString()}`,
      { details: { plan: trial.plan, next_at: Math.ceil(o.hold.until / 1000), venue: o.venue } },
    );
  // Had within `trial_every`, or not held for this sale (the venue held it for none: its session is elsewhere).
  const nextAt = (had ? at : o.now) + trial.everyMs;
  throw new SluiceError(
    'ERR_TRIAL_USED',
    `this device had its free trial of plan ${trial.plan} in venue ${o.venue}; the next one from ` +
      new Date(nextAt).toISOString(),
    { details: { plan: trial.plan, next_at: Math.ceil(nextAt / 1000), venue: o.venue } },
  );
}
