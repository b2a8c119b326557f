/**
 * The router's half of roaming within a venue (docs/roaming.md). It asks the fleet's lease service for a MAC it holds
 * no session for (a claim on `<prefix>/<router>/venue`), and runs the fleet's signed answers, which reach it as
 * commands (`venue_answer`, `venue_release`, `venue_open`: the MQTT command channel verified them). A release gives a
 * session up only when the device has not been seen here for `main.venue_present_window` (a copy of its MAC at another
 * router gets nothing while the device is here), and ends it with cause `moved`, fsynced before the reply that carries
 * what was left. An open grants exactly what the fleet moved (venue-open.ts).
 */
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { isLive, type Session, type SessionManager } from '../sessions/index.ts';
import { arrivalOf, optNumber, releaseFigures, text } from './venue-args.ts';
import { openMoved } from './venue-open.ts';
import { chargeOverlap, chargesOf } from './venue-charges.ts';
import { VenuePresence } from './venue-presence.ts';
import { billTail, type CloseWithTail, type TailSessions } from './venue-tail.ts';
import { answered, checkVenueTrial, trialOf, trialsOf, type TrialAsk } from './venue-trials.ts';
import {
  ANSWER_WAIT_MS,
  MAX_STATES,
  PURSUE_MS,
  RECLAIM_MS,
  SALE_WAIT_STEP_MS,
  VENUE_RETRY_MS,
  type VenueState,
} from './venue-state.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../time.ts';

export interface VenueRoamingDeps {
  sessions: Pick<
    SessionManager,
    'byMac' | 'get' | 'end' | 'prepare' | 'activate' | 'isApplied' | 'on' | 'charge' | 'chargeTaken'
  > &
    TailSessions;
  /** Publishes a claim to the fleet now (SinkHost.publishVenue): false when no MQTT connection is up. */
  publish: (body: Record<string, unknown>) => boolean;
  settings: () => { venue: string; presentWindowMs: number };
  /**
   * A fresh reading of the meter (one tick), billed before a release decides: what the device used here since the
   * last tick is billed here, and counts as presence.
   */
  reading?: () => Promise<unknown>;
  /**
   * The close of the device's gate here after its session ended (the portal's answer; gatekeeper.ts closed()): a
   * release's reply leaves only once it is `closed` (or `kept-open` by a newer session of the MAC), so the device is
   * never let through at two routers at once.
   */
  gateClosed?: (mac: string) => Promise<'closed' | 'failed' | 'kept-open'>;
  /**
   * The close of the device's gate with its last reading (venue-tail.ts): the bytes it passed here after the meter's
   * last reading, billed here and the session ended before the deauth. Throws when the portal did not answer it.
   */
  closeWithTail?: CloseWithTail;
  /** The lease's dead-man's switch (venue-lease.ts): told the fleet's answers, closed with this. */
  lease?: { answered(mac: string, state: string): void; start(): void; close(): void };
  log: Log;
  clock?: Clock;
  timers?: Timers;
}

export class VenueRoaming {
  private readonly states = new Map<string, VenueState>();
  /** MAC → when a claim for it was last published. */
  private readonly sentAt = new Map<string, number>();
  /** Session id → its release in progress (waiting for the device to leave). */
  private readonly releasing = new Map<string, Promise<Record<string, unknown>>>();
  /** Session id → the router it moved to (for its `ended` message). */
  private readonly movedOut = new Map<string, string>();
  /** MAC → when it was last met here without a session (a claim): claimed again until it opens or is told none. */
  private readonly pursued = new Map<string, number>();
  private readonly clock: Clock;
  private readonly timers: Timers;
  private retry: TimerHandle | null = null;
  private readonly presence: VenuePresence;

  constructor(private readonly deps: VenueRoamingDeps) {
    this.clock = deps.clock ?? systemClock;
    this.timers = deps.timers ?? backgroundTimers;
    this.presence = new VenuePresence({
      sessions: deps.sessions,
      windowMs: () => deps.settings().presentWindowMs,
      ...(deps.reading !== undefined && { reading: deps.reading }),
      clock: this.clock,
      timers: this.timers,
    });
  }

  /** Follows the meter's billing: a MAC billed bytes is present. */
  follow(): void {
    this.presence.follow();
    this.deps.lease?.start();
  }

  close(): void {
    this.presence.close();
    this.deps.lease?.close();
    if (this.retry !== null) this.timers.clearTimeout(this.retry);
    this.retry = null;
    this.pursued.clear();
  }

  private venue(asked?: unknown): string {
    const venue = this.deps.settings().venue;
    if (venue === '') throw new SluiceError('ERR_VENUE_REFUSED', 'this router is in no venue (main.venue)');
    if (asked !== undefined && asked !== venue)
      throw new SluiceError('ERR_VENUE_REFUSED', `this router is in venue ${venue}, not ${String(asked)}`);
    return venue;
  }

  /**
   * Asks the fleet for `mac`'s venue session (the device is here without one). Returns what is known now: the
   * fleet's answer comes as a command a moment later.
   */
  claim(mac: string, trial?: TrialAsk): VenueState {
    this.venue();
    const now = this.clock.now();
    const live = this.deps.sessions.byMac(mac);
    if (live && isLive(live))
      return this.put(mac, { state: 'held-here', holder: null, since: live.startedAt, at: now, askedAt: now });
    this.pursued.delete(mac);
    if (this.pursued.size >= MAX_STATES) this.pursued.delete(this.pursued.keys().next().value!);
    this.pursued.set(mac, now);
    this.armRetry();
    return this.ask(mac, now, trial);
  }

  /** Publishes a claim for `mac` unless one went out within RECLAIM_MS; what is known now. */
  private ask(mac: string, now: number, trial?: TrialAsk): VenueState {
    const venue = this.deps.settings().venue;
    let before = this.states.get(mac);
    // One claim a second is enough: the answer comes within a round trip over the broker. A trial's goes out always:
    // its answer is the venue's hold on the trial for this sale (venue-trials.ts).
    const recent = now - (this.sentAt.get(mac) ?? -Infinity) < RECLAIM_MS;
    if (recent && before !== undefined && trial === undefined) return this.stateOf(mac)!;
    if (trial !== undefined && before?.trial !== undefined) {
      const { trial: _answered, ...rest } = before;
      before = this.put(mac, rest);
    }
    this.sentAt.set(mac, now);
    if (this.sentAt.size > MAX_STATES) this.sentAt.delete(this.sentAt.keys().next().value!);
    const asks = trial === undefined ? {} : { trial: trial.plan, trial_every: trial.everyMs };
    if (!this.deps.publish({ kind: 'claim', mac, venue, ...asks }))
      return this.put(mac, {
        ...(before ?? { holder: null, since: null }),
        state: 'unreachable',
        at: now,
        askedAt: now,
      });
    // askedAt: the first claim since the last answer (asking again does not make an unanswered claim younger).
    const unanswered = before !== undefined && (before.state === 'asking' || before.askedAt > before.at);
    if (!unanswered)
      this.put(
        mac,
        before ? { ...before, askedAt: now } : { state: 'asking', holder: null, since: null, at: now, askedAt: now },
      );
    return this.stateOf(mac)!;
  }

  private armRetry(): void {
    if (this.retry !== null || this.pursued.size === 0) return;
    this.retry = this.timers.setTimeout(() => {
      this.retry = null;
      this.retryClaims();
    }, VENUE_RETRY_MS / 2);
  }

  /**
   * Claims again, every VENUE_RETRY_MS, each MAC met here that has no session here and whose venue session is held
   * elsewhere or was not answered; stops once it opened here, the fleet said there is none, or the MAC was not met
   * for PURSUE_MS.
   */
  private retryClaims(): void {
    const now = this.clock.now();
    for (const [mac, metAt] of this.pursued) {
      const live = this.deps.sessions.byMac(mac);
      const s = this.stateOf(mac);
      const settled = s !== null && (s.state === 'none' || s.state === 'held-here') && s.at >= s.askedAt;
      if ((live && isLive(live)) || settled || now - metAt > PURSUE_MS || this.deps.settings().venue === '') {
        this.pursued.delete(mac);
        continue;
      }
      if (now - (this.sentAt.get(mac) ?? -Infinity) >= VENUE_RETRY_MS) this.ask(mac, now);
    }
    this.armRetry();
  }

  /**
   * Before anything is sold to `mac` here (every purchase, by any method; an admin's grant excepted): refused while
   * its venue session is held at another router, or the fleet cannot be asked and said so before (the page tells the
   * customer why, and the router keeps claiming it). A MAC never asked about is asked now, and the sale waits for the
   * answer (ANSWER_WAIT_MS at most: no answer, and none before, sells as a router outside a venue would). A free
   * trial (`trial`) waits for the answer to a claim of its own, and is refused when the device had it anywhere in the
   * venue within its `trial_every`, or when no answer comes (venue-trials.ts).
   */
  async checkSale(asked: string, trial?: TrialAsk): Promise<void> {
    const mac = asked.toLowerCase();
    const live = this.deps.sessions.byMac(mac);
    const venue = this.deps.settings().venue;
    if ((live && isLive(live)) || venue === '') return;
    let s = this.stateOf(mac);
    // A trial is sold only on an answer to a claim of this sale's (the device may have had it a minute ago elsewhere).
    if (s === null || s.state === 'asking' || trial !== undefined) {
      s = this.claim(mac, trial);
      const until = this.clock.now() + ANSWER_WAIT_MS;
      while (s.state === 'asking' || (trial !== undefined && s.state !== 'unreachable' && !answered(s, trial))) {
        // A trial's claim answered without its hold (a fleet that holds none) is as none: no trial.
        if (trial !== undefined && this.clock.now() > until) s = { ...s, state: 'unreachable' };
        else await new Promise<void>((resolve) => this.timers.setTimeout(resolve, SALE_WAIT_STEP_MS));
        s = s.state === 'unreachable' ? s : (this.stateOf(mac) ?? s);
      }
    }
    const elsewhere = s.state === 'held' || s.state === 'releasing' || (s.state === 'unreachable' && s.holder !== null);
    if (!elsewhere) {
      if (trial !== undefined) {
        const reachable = s.state !== 'unreachable';
        checkVenueTrial({ mac, venue, reachable, hold: s.trial, trials: s.trials ?? {}, now: this.clock.now() }, trial);
      }
      return;
    }
    this.claim(mac);
    throw new SluiceError(
      'ERR_VENUE_HELD_ELSEWHERE',
      `the session of ${mac} is active at ${s.holder ?? 'another router'} of this venue: it moves here once the ` +
        'device left there',
      { details: { state: s.state, holder: s.holder, since: s.since } },
    );
  }

  /**
   * What the fleet last said of `mac` (null: never asked). A claim not answered within ANSWER_WAIT_MS makes it
   * `unreachable` (the fleet or the broker is down), with the holder it named last: nothing is sold again for it.
   */
  stateOf(mac: string): VenueState | null {
    const s = this.states.get(mac);
    if (s === undefined) return null;
    const unanswered = s.state === 'asking' || s.askedAt > s.at;
    if (unanswered && this.clock.now() - s.askedAt > ANSWER_WAIT_MS) return { ...s, state: 'unreachable' };
    return s;
  }

  private put(mac: string, state: VenueState): VenueState {
    this.states.delete(mac);
    if (this.states.size >= MAX_STATES) this.states.delete(this.states.keys().next().value!);
    this.states.set(mac, state);
    return state;
  }

  /** `venue_answer {mac, venue, state, holder?, since?, trials?, trial?, error?}`: the fleet's word on a claim. */
  answer(args: Record<string, unknown>): { ok: true } {
    this.venue(args['venue']);
    const mac = text(args['mac'], 'mac').toLowerCase();
    const state = args['state'];
    const now = this.clock.now();
    // The fleet refused the claim (this router has too many waiting there): as if it could not be reached.
    if (state === 'busy') {
      const before = this.states.get(mac) ?? { holder: null, since: null, askedAt: now };
      this.put(mac, { ...before, state: 'unreachable', at: now });
      return { ok: true };
    }
    if (state !== 'none' && state !== 'held' && state !== 'releasing' && state !== 'held-here')
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'state must be none, held, releasing, held-here or busy');
    const holder = typeof args['holder'] === 'string' ? args['holder'] : null;
    // An answer to a plain claim (the retries) keeps the hold a trial's claim was answered with.
    const trial = trialOf(args['trial']) ?? this.states.get(mac)?.trial;
    this.put(mac, {
      state,
      holder,
      since: optNumber(args['since']),
      at: now,
      askedAt: this.states.get(mac)?.askedAt ?? now,
      trials: trialsOf(args['trials']),
      ...(trial !== undefined && { trial }),
    });
    this.deps.lease?.answered(mac, state);
    return { ok: true };
  }

  /**
   * `venue_release {mac, venue, lease, epoch, session, to}`: gives the session up to router `to`, unless the device
   * is still here. Idempotent: a session already ended `moved` answers with its figures again.
   */
  async release(args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const venue = this.venue(args['venue']);
    const mac = text(args['mac'], 'mac').toLowerCase();
    const to = text(args['to'], 'to');
    const id = typeof args['session'] === 'string' ? args['session'] : null;
    const session = (id !== null ? this.deps.sessions.get(id) : null) ?? this.deps.sessions.byMac(mac);
    if (session === null || session.mac !== mac)
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session of ${mac} here`);
    if (!isLive(session)) {
      if (session.endCause === 'moved') {
        await this.gateShut(mac);
        return this.figures(session, venue, to);
      }
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `the session of ${mac} ended here (${session.endCause})`);
    }
    // One release of a session at a time: the fleet's resend while one waits for the device to leave joins it.
    const pending = this.releasing.get(session.id);
    if (pending !== undefined) return pending;
    const released = this.giveUp({ session, mac, venue, to, revoke: args['revoke'] === true });
    this.releasing.set(session.id, released);
    try {
      return await released;
    } finally {
      this.releasing.delete(session.id);
    }
  }

  /** A release's work: the device gone (not asked of a revoke), the session ended `moved`, its figures. */
  private async giveUp(r: {
    session: Session;
    mac: string;
    venue: string;
    to: string;
    revoke: boolean;
  }): Promise<Record<string, unknown>> {
    const { session, mac, venue, to, revoke } = r;
    // A revoke (this router was unreachable and the lease moved on) is not asked: the session is no longer ours.
    if (revoke) await this.presence.freshReading();
    else await this.presence.untilAbsent(mac);
    if (!isLive(this.deps.sessions.get(session.id) ?? session))
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `the session of ${mac} ended here meanwhile`);
    // Durable before the reply: a crash after it still has the session ended here, never live twice.
    const end = (): Promise<Session | null> => {
      this.movedOut.set(session.id, to);
      return this.deps.sessions.end(session.id, 'moved');
    };
    // The holder closes first, with its last reading billed and the end on flash before the deauth (venue-tail.ts).
    const ended = (await billTail(this.deps, session, end)) ?? session;
    this.deps.log.info('venue: session moved out', { mac, session: session.id, to, venue });
    await this.gateShut(mac);
    return this.figures(ended, venue, to);
  }

  /**
   * The holder closes first: the reply waits for the portal to confirm the device's gate closed. A close that failed
   * (the portal did not answer) is refused as a device still here: the lease stays, the next release (the claimer asks
   * again every 2 s) finds the session ended `moved` and waits for the close retried meanwhile.
   */
  private async gateShut(mac: string): Promise<void> {
    if (this.deps.gateClosed === undefined) return;
    if ((await this.deps.gateClosed(mac)) === 'failed')
      throw new SluiceError('ERR_VENUE_DEVICE_PRESENT', `the gate of ${mac} here is not confirmed closed yet`);
  }

  private figures(s: Session, venue: string, to: string): Record<string, unknown> {
    const arrival = arrivalOf(s);
    const charged = arrival === null ? [] : chargesOf(this.deps.sessions, arrival.lease, arrival.epoch);
    return releaseFigures(s, { venue, to, charged, now: this.clock.now() });
  }

  /** `venue_open`: the session moved here, with exactly what was left (venue-open.ts). */
  async open(args: Record<string, unknown>): Promise<{ session: Session }> {
    const venue = this.venue(args['venue']);
    const { session, fresh } = await openMoved({ ...this.deps, now: () => this.clock.now() }, venue, args);
    if (fresh) this.states.delete(session.mac);
    return { session };
  }

  /** `venue_charge`: an overlap taken off the session of the lease here (venue-charges.ts). */
  async charge(args: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.venue(args['venue']);
    return chargeOverlap({ sessions: this.deps.sessions, log: this.deps.log }, args);
  }

  /** What a session's MQTT `started`/`ended` message says of its handover (null: none). */
  moved(session: Session): Record<string, unknown> | null {
    const arrival = arrivalOf(session);
    if (arrival !== null && session.endCause !== 'moved')
      return { in: arrival.from, venue: arrival.venue, lease: arrival.lease, epoch: arrival.epoch };
    if (session.endCause === 'moved')
      return { out: this.movedOut.get(session.id) ?? null, venue: this.deps.settings().venue };
    return null;
  }
}
