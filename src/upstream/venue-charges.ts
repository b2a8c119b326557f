/**
 * The router's half of an overlap charge (docs/roaming.md): what the router a venue session left served after the
 * lease moved on (it was unreachable; the overlap of that move, booked by the fleet) is taken off what is left of the
 * session where the lease is now, in its metric (bytes, or a time session's seconds), so it is never free. Once per
 * lease and move ever: journaled under that key before the answer; a repeat (the fleet resends until it hears one)
 * takes nothing. A handover's reply lists the moves charged here, so the fleet sends none of them on.
 */
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { isLive, type Session, type SessionManager } from '../sessions/index.ts';
import { arrivalOf, count, text } from './venue-args.ts';

/** The idempotency key of the charge of a lease's move `move` (durable in the journal once charged). */
const chargeKey = (lease: string, move: number): string => `venue-charge:${lease}#${move}`;

export interface ChargeDeps {
  sessions: Pick<SessionManager, 'byMac' | 'get' | 'isApplied' | 'charge' | 'chargeTaken'>;
  log: Log;
}

/**
 * `venue_charge {mac, venue, lease, epoch, move, session, metric, amount}` (`bytes` for `amount`, from an older fleet):
 * the overlap of move `move` taken off the session of `lease` here at `epoch`; never more than is left. A session of
 * the lease that ended here answers with nothing taken and why (`ended`: `moved` sends the fleet on to the next one).
 */
export async function chargeOverlap(deps: ChargeDeps, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const mac = text(args['mac'], 'mac').toLowerCase();
  const lease = text(args['lease'], 'lease');
  const epoch = Number(count(args['epoch'], 'epoch'));
  const move = Number(count(args['move'], 'move'));
  const amount = count(args['amount'] ?? args['bytes'], 'amount');
  const id = typeof args['session'] === 'string' ? args['session'] : null;
  const s = (id !== null ? deps.sessions.get(id) : null) ?? deps.sessions.byMac(mac);
  const arrival = s === null ? null : arrivalOf(s);
  if (s === null || s.mac !== mac || arrival?.lease !== lease || arrival.epoch !== epoch)
    throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session of lease ${lease} epoch ${epoch} here`);
  if (args['metric'] !== undefined && args['metric'] !== s.metric)
    throw new SluiceError('ERR_SESSION_METRIC_MISMATCH', `the session here counts ${s.metric}`);
  const key = chargeKey(lease, move);
  const answer = (taken: bigint | null, after: Session, ended?: string): Record<string, unknown> => ({
    session: s.id,
    metric: s.metric,
    charged: taken === null ? null : taken.toString(),
    already: taken === null,
    ...(ended !== undefined && { ended }),
    allotment: after.allotment.toString(),
    used: String(Math.floor(after.used)),
  });
  if (deps.sessions.isApplied(null, key)) return answer(null, s);
  if (!isLive(s)) return answer(0n, s, s.endCause ?? 'ended');
  const { session: after, taken } = await deps.sessions.charge(s.id, amount, key);
  deps.log.info('venue: overlap charged', {
    mac,
    session: s.id,
    lease,
    move,
    metric: s.metric,
    amount: amount.toString(),
    taken: taken === null ? 'before' : taken.toString(),
  });
  return answer(taken, after);
}

/**
 * The moves of `lease` whose overlap was taken off its session here at `epoch` (their keys are applied here), each with
 * what it took in the session's metric (null: taken by a release that did not record it).
 */
export function chargesOf(
  sessions: Pick<SessionManager, 'isApplied' | 'chargeTaken'>,
  lease: string,
  epoch: number,
): { move: number; taken: bigint | null }[] {
  const moves: { move: number; taken: bigint | null }[] = [];
  for (let move = 2; move <= epoch; move++) {
    const key = chargeKey(lease, move);
    if (sessions.isApplied(null, key)) moves.push({ move, taken: sessions.chargeTaken(key) });
  }
  return moves;
}
