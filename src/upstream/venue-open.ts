/**
 * The router's half of a handover's open (docs/roaming.md): the fleet's signed `venue_open` grants exactly what the
 * lease moved, never more than was sold, paid by method `venue` (amount 0: the money was counted where it was paid),
 * under an idempotency key of the lease's epoch, so an open delivered twice opens once.
 */
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { Grant, Session, SessionManager } from '../sessions/index.ts';
import { arrivalOf, count, optNumber, text } from './venue-args.ts';

export interface OpenDeps {
  sessions: Pick<SessionManager, 'byMac' | 'isApplied' | 'prepare' | 'activate'>;
  log: Log;
  now: () => number;
}

/**
 * `venue_open {mac, venue, lease, epoch, from, metric, remaining, sold, expires_at, rate_down, rate_up, devices,
 * user, plan}` in `venue` (the router's, checked by the caller): the session moved here, with exactly what was left.
 * `fresh`: opened by this call (not a repeat of an open already made).
 */
export async function openMoved(
  deps: OpenDeps,
  venue: string,
  args: Record<string, unknown>,
): Promise<{ session: Session; fresh: boolean }> {
  const mac = text(args['mac'], 'mac').toLowerCase();
  const lease = text(args['lease'], 'lease');
  const from = text(args['from'], 'from');
  const epoch = count(args['epoch'], 'epoch');
  const metric = args['metric'];
  if (metric !== 'bytes' && metric !== 'seconds')
    throw new SluiceError('ERR_INVALID_ARGUMENT', 'metric must be bytes or seconds');
  const remaining = count(args['remaining'], 'remaining');
  // Never more than the venue session was sold (the lease's `sold`), whatever the rest of the command says.
  const sold = args['sold'] === undefined ? null : count(args['sold'], 'sold');
  const allotment = sold !== null && sold < remaining ? sold : remaining;
  if (allotment !== remaining) deps.log.warn('venue: an open above what was sold, capped', { mac, lease });
  const reference = `${venue}/${lease}#${epoch}/${from}`;
  const key = `venue:${lease}#${epoch}`;
  const existing = deps.sessions.byMac(mac);
  if (existing && arrivalOf(existing)?.lease === lease && arrivalOf(existing)?.epoch === Number(epoch))
    return { session: existing, fresh: false };
  if (deps.sessions.isApplied({ method: 'venue', reference }, key))
    throw new SluiceError('ERR_PAYMENT_REPLAYED', `the handover ${reference} was opened here already`);
  const down = optNumber(args['rate_down']);
  const up = optNumber(args['rate_up']);
  const grant: Grant = {
    mac,
    metric,
    allotment,
    payment: { method: 'venue', reference, amount: 0n, asset: 'venue', at: deps.now() },
    idempotencyKey: key,
    user: typeof args['user'] === 'string' ? args['user'] : null,
    plan: typeof args['plan'] === 'string' ? args['plan'] : null,
    ...(down !== null || up !== null ? { rates: { downBps: down, upBps: up } } : {}),
    ...(optNumber(args['devices']) !== null && { devices: optNumber(args['devices'])! }),
    ...(metric === 'bytes' && optNumber(args['expires_at']) !== null && { expiresAt: optNumber(args['expires_at'])! }),
  };
  const hold = deps.sessions.prepare({ mac, metric, allotment, idempotencyKey: key });
  try {
    const { session } = await deps.sessions.activate(grant, hold);
    deps.log.info('venue: session moved in', {
      mac,
      session: session.id,
      from,
      venue,
      lease,
      epoch: Number(epoch),
    });
    return { session, fresh: true };
  } finally {
    hold.release();
  }
}
