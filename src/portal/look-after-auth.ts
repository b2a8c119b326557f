/**
 * The look at a client after an auth whose outcome the portal did not say (an abnormal reply: its control socket
 * closed before the reply; the connection dropped after the request went out, ndsctl's "error reading"; a portal
 * restarting). The auth may have taken: openNDS auths in its control thread before
 * it writes the reply, so a client let through and downloading may be behind it. What the caller does with the gate's
 * kernel side (its counters, made from 0 just before the auth) must wait for the portal's word, so the look is asked
 * again while the portal answers nothing useful, within a bound (a portal that stays silent leaves the outcome
 * unknown).
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import type { Timers } from '../time.ts';
import type { PortalClient } from './types.ts';

/**
 * The pauses before each look again: ≈ 3.75 s in all, about the span of an openNDS 10.3.1 restart on a loaded router
 * (its control socket is back within seconds). The caller holds the portal's queue meanwhile; an auth answered
 * abnormally is rare.
 */
export const LOOK_AGAIN_MS: readonly number[] = [250, 500, 1000, 2000];

/** The portal's word on the client (null: not listed), or none within the bound and why. */
export type LookAfterAuth = { answered: true; client: PortalClient | null } | { answered: false; last: SluiceError };

/**
 * Codes after which a look again is no use: the valve shut, ndsctl missing, or a look that already waited a whole
 * deadline (the portal hung: the caller's next open looks first, as after an auth that timed out).
 */
const FINAL = new Set(['ERR_VALVE_CLOSED', 'ERR_NDSCTL_MISSING', 'ERR_NDSCTL_TIMEOUT']);

export async function lookAfterAuth(
  look: () => Promise<PortalClient | null>,
  timers: Timers,
  pauses: readonly number[] = LOOK_AGAIN_MS,
): Promise<LookAfterAuth> {
  for (let i = 0; ; i++) {
    try {
      return { answered: true, client: await look() };
    } catch (err) {
      const last = toSluiceError(err);
      if (FINAL.has(last.code) || i >= pauses.length) return { answered: false, last };
      await new Promise<void>((resolve) => timers.setTimeout(resolve, pauses[i]!));
    }
  }
}

/**
 * An auth whose outcome stays unknown once no look answered (ERR_PORTAL_AUTH_UNKNOWN): `cause` is the auth's own error,
 * `details.look` the last look's. The gate tries it again as an auth that timed out (gate/gate-opens.ts), and the
 * valve's next open of the client looks first (client-notes.ts).
 */
export class AuthOutcomeUnknown extends SluiceError {
  constructor(auth: SluiceError, last: SluiceError) {
    super('ERR_PORTAL_AUTH_UNKNOWN', `${auth.message}; no look after it answered whether it took`, {
      cause: auth,
      details: { ...auth.details, look: last.message },
    });
    this.name = 'AuthOutcomeUnknown';
  }
}
