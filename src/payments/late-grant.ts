/**
 * A purchase whose payment completed after its call had answered (an x402 settle confirmed later, an escrow create
 * found later): grant it now, exactly once. A session already holding the payment reference (the call itself, or an
 * earlier try) means it is done; ERR_PAYMENT_REPLAYED from a race says the same.
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { Grant, Session } from '../sessions/index.ts';

export interface LateGrantSessions {
  activate(grant: Grant): Promise<{ session: Session; toppedUp: boolean }>;
  isApplied(payment: Grant['payment']): boolean;
}

/** True when the payment is applied (now or before); false when the grant failed and should be retried. */
export async function grantLate(
  sessions: LateGrantSessions,
  grant: Grant,
  what: { granted: string; failed: string; fields: Record<string, unknown> },
  opts: { log?: Log | undefined },
): Promise<boolean> {
  if (sessions.isApplied(grant.payment)) return true;
  try {
    // Its gate opens like any started session's: the gate follows the session manager itself.
    await sessions.activate(grant);
    opts.log?.info(what.granted, { ...what.fields, mac: grant.mac });
    return true;
  } catch (err) {
    const e = toSluiceError(err);
    if (e.code === 'ERR_PAYMENT_REPLAYED') return true;
    opts.log?.warn(what.failed, { ...what.fields, code: e.code, reason: e.message });
    return false;
  }
}
