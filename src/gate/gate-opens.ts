/**
 * The gate's opens: one auth of a session's device through the valve (its safety net, its rates, the address the
 * valve may skip its lookup with), what the answer makes of the gate, and the tries again while the portal does not
 * list the client or left an auth's outcome unknown (LISTING_RETRY_MS, up to LISTING_WAIT_MS). The gatekeeper decides
 * when a gate opens (a start, or its sale being written under a valve that opens early; a move, a join, a re-open);
 * this waits on the portal until it is open or pending. One open of a MAC runs at a time; the numbering of the
 * openings tells the start-up reconcile which ones its listing cannot show (startup.ts listingMark).
 */
import { toSluiceError } from '../errors.ts';
import { isLive, type Emitter, type Session } from '../sessions/index.ts';
import { hasRates } from '../portal/index.ts';
import type { Clock, Timers } from '../time.ts';
import type { GateState } from './states.ts';
import { safetyNetFor } from './safety-net.ts';
import {
  LISTED_IP_MAX_AGE_MS,
  LISTING_RETRY_MS,
  LISTING_WAIT_MS,
  LISTING_WAITERS,
  type FollowedMeter,
  type GateEvents,
  type GatekeeperOptions,
} from './options.ts';
import type { GateCloses } from './gate-closes.ts';
import { listingMark } from './startup.ts';

/** What the opens are built with: the gatekeeper's options, gate states, holds and counters. */
export interface OpenHost {
  options: GatekeeperOptions;
  clock: Clock;
  timers: Timers;
  /** Each MAC's gate as the gatekeeper holds it: an open sets it. */
  gates: Map<string, 'open' | 'pending'>;
  held: ReadonlySet<string>;
  /** First failed re-open of a present paying client in the current streak: an open clears it. */
  failingSince: Map<string, number>;
  counters: { opened: number; openFailures: number };
  closes: GateCloses;
  events: Emitter<GateEvents>;
  /** The meter followed, once it is: the address its ticks listed for the client. */
  meter: () => FollowedMeter | undefined;
}

export class GateOpens {
  /** Opens in flight, by MAC: the meter's re-open request for a gate that is being opened is not a second auth. */
  private readonly inFlight = new Map<string, Promise<GateState>>();
  /** Sessions waiting for the portal to list their client (LISTING_RETRY_MS): when the first try found it unlisted. */
  private readonly unlisted = new Map<string, number>();
  /** Openings begun since start, and each MAC's latest number: a listing before or during it says nothing of it. */
  private opensBegun = 0;
  private readonly openBegun = new Map<string, number>();
  /** Openings begun while their purchase is written (GateValve.opensEarly), by session id: `sold` tells the outcome. */
  private readonly sales = new Map<string, { gate: Promise<GateState>; sold: (durable: boolean) => void }>();

  constructor(private readonly host: OpenHost) {}

  /**
   * Opens the session's device's gate, or joins the open of that MAC in flight. `durable`: an opening begun while its
   * purchase is written, which goes on past the valve only once that purchase is on flash, and closes if it is not.
   */
  open(session: Session, durable?: Promise<boolean>): Promise<GateState> {
    const inFlight = this.inFlight.get(session.mac);
    if (inFlight) return inFlight;
    const run = this.doOpen(session, durable).finally(() => {
      this.inFlight.delete(session.mac);
    });
    this.inFlight.set(session.mac, run);
    return run;
  }

  /** A new session's sale is being written: a valve that opens early begins now (`sold` tells how the write went). */
  selling(session: Session): void {
    if (this.host.options.valve.opensEarly !== true) return;
    let sold: (durable: boolean) => void = () => undefined;
    const durable = new Promise<boolean>((resolve) => (sold = resolve));
    this.sales.set(session.id, { gate: this.open(session, durable), sold });
  }

  /** The sale's write is done: on flash, its opening goes on (returned); refused, its gate closes again. */
  sold(sessionId: string, durable: boolean): Promise<GateState> | undefined {
    const sale = this.sales.get(sessionId);
    this.sales.delete(sessionId);
    sale?.sold(durable);
    return sale?.gate;
  }

  /** The open of this MAC running now, if any. */
  running(mac: string): Promise<GateState> | undefined {
    return this.inFlight.get(mac);
  }

  /** The number above which an opening is one a listing taken now may not show (startup.ts listingMark). */
  listingMark(): number {
    return listingMark(this.opensBegun, this.inFlight.keys(), this.openBegun);
  }

  /** The number of the latest opening of this MAC (0: none since its last close). */
  begun(mac: string): number {
    return this.openBegun.get(mac) ?? 0;
  }

  /** The MAC's gate closes: its openings' number goes. */
  closing(mac: string): void {
    this.openBegun.delete(mac);
  }

  /** The session no longer waits for its client to be listed (it ended, or moved to another MAC). */
  forgetSession(sessionId: string): void {
    this.unlisted.delete(sessionId);
  }

  private async doOpen(session: Session, durable?: Promise<boolean>): Promise<GateState> {
    const { options, clock, gates, counters, closes, events } = this.host;
    if (!isLive(session)) return 'pending';
    // A close in flight for this MAC (the previous session's end) goes first: opening now would race its deauth.
    await closes.running(session.mac);
    closes.opening(session.mac);
    events.emit('auth-starting', session.mac, session.id);
    this.openBegun.set(session.mac, ++this.opensBegun);
    try {
      // The session's journaled rates (its plan's, a voucher's, or a live change's).
      const rates = options.shaper ? session.rates : undefined;
      const net = safetyNetFor(session, clock.now());
      // The session's address (the LAN endpoint's purchases carry it) is its buyer's, not a joined device's: only
      // then may the valve skip its lookup of the client (Valve.open).
      const own = options.sessions.byMac(session.mac);
      const knownIp = own !== null && own.id === session.id && own.mac === session.mac ? own.ip : null;
      const listed = knownIp !== null && this.host.meter()?.listedIp(session.mac, LISTED_IP_MAX_AGE_MS) === knownIp;
      const startedAt = performance.now();
      const result = await options.valve.open(
        session.mac,
        hasRates(rates) ? { ...net, rates: { downBps: rates.downBps, upBps: rates.upBps } } : net,
        knownIp,
        listed,
      );
      // Nothing of the sale goes on before it is on flash; a refused one leaves no gate open.
      if (durable !== undefined && !(await durable)) return await this.unsold(session);
      const ip = options.valve.lastIp?.(session.mac);
      events.emit('auth-finished', session.mac, session.id, result, ip ?? null);
      closes.opened(session.mac);
      if (ip) options.sessions.noteIp(session.id, ip);
      // A time session's clock starts now that its gate is open (not at the request).
      if (session.metric === 'seconds')
        await options.sessions.startClock(session.id, clock.now()).catch(() => undefined);
      // The session may have ended while ndsctl ran (a terminate racing the purchase): do not leave the gate open.
      if (!this.isStillLive(session)) {
        await closes.close(session.mac);
        return 'pending';
      }
      gates.set(session.mac, 'open');
      this.host.failingSince.delete(session.mac);
      counters.opened++;
      options.log.info('gate open', {
        mac: session.mac,
        session: session.id,
        result,
        took_ms: Math.round(performance.now() - startedAt),
      });
      return result;
    } catch (err) {
      if (durable !== undefined && !(await durable)) return await this.unsold(session);
      events.emit('auth-finished', session.mac, session.id, 'failed', null);
      const e = toSluiceError(err);
      gates.set(session.mac, 'pending');
      counters.openFailures++;
      const unknown = e.code === 'ERR_PORTAL_CLIENT_UNKNOWN';
      // An auth cut short by the deadline (the portal may do it later or never), refused at the socket (the portal
      // restarting: procd brings it back in seconds), or of unknown outcome (the valve's next open looks first). Tried
      // again like an unlisted client's: with the kernel's counters no listing may come for minutes to reopen it.
      const late =
        e.code === 'ERR_NDSCTL_TIMEOUT' || e.code === 'ERR_PORTAL_DOWN' || e.code === 'ERR_PORTAL_AUTH_UNKNOWN';
      const retrying = (unknown || late) && this.unlisted.has(session.id);
      if (!retrying)
        options.log[unknown ? 'info' : 'warn']('gate pending', {
          mac: session.mac,
          session: session.id,
          code: e.code,
          reason: e.message,
        });
      if (unknown || late) this.awaitListing(session);
      else this.unlisted.delete(session.id);
      return 'pending';
    }
  }

  /** An opening begun while its purchase was written, which the store refused: the gate closes again. */
  private async unsold(session: Session): Promise<GateState> {
    this.host.events.emit('auth-finished', session.mac, session.id, 'failed', null);
    await this.host.closes.close(session.mac);
    return 'pending';
  }

  /**
   * Tries the gate of a session whose client the portal does not list again soon (LISTING_RETRY_MS), up to
   * LISTING_WAIT_MS.
   */
  private awaitListing(session: Session): void {
    const now = this.host.clock.now();
    if (!this.unlisted.has(session.id) && this.unlisted.size >= LISTING_WAITERS) return;
    const since = this.unlisted.get(session.id) ?? now;
    if (now - since >= LISTING_WAIT_MS) {
      this.unlisted.delete(session.id);
      return;
    }
    this.unlisted.set(session.id, since);
    this.host.timers.setTimeout(() => {
      const mac = session.mac;
      // Opened meanwhile (the meter's re-open), ended, held, or being opened: nothing to try.
      if (
        !this.isStillLive(session) ||
        this.host.held.has(mac) ||
        this.host.gates.get(mac) !== 'pending' ||
        this.inFlight.has(mac)
      ) {
        if (!this.inFlight.has(mac)) this.unlisted.delete(session.id);
        return;
      }
      void this.open(session).then((gate) => {
        if (gate !== 'pending') this.unlisted.delete(session.id);
      });
    }, LISTING_RETRY_MS);
  }

  private isStillLive(session: Session): boolean {
    const current = this.host.options.sessions.byMac(session.mac);
    return current !== null && current.id === session.id && isLive(current);
  }
}
