/**
 * The gate's closes and what confirms them: a deauth through the valve, then the portal's own word that the gate is
 * shut (a tick's listing that no longer shows it open, or a look at that one client), asked again on every tick's
 * listing until it comes (enforce). The gatekeeper decides when a gate closes (a session's end, a hold, a move); this
 * waits on the portal until the close is done. A close is done when the portal's own list says so, not when ndsctl
 * says so: every tick hands enforce() the clients the portal shows with an open gate, and any of them without a live
 * session is deauthed (again), counted, until a listing no longer shows it open. That also closes gates opened behind
 * sluice's back (unless `leaveForeign`), as the start-up reconcile does. The portal's Trusted clients are never
 * touched.
 */
import { toSluiceError } from '../errors.ts';
import { isLive } from '../sessions/index.ts';
import type { Clock } from '../time.ts';
import { AUTHED_STATES, type CloseOutcome, type GatekeeperOptions } from './options.ts';

/** The gatekeeper's counters a close adds to. */
export interface CloseCounters {
  closed: number;
  closeFailures: number;
  /** Deauths repeated because a listing still showed the gate open after an earlier close. */
  closeRetries: number;
  /** Clients found authenticated without a live session by a tick (not at start-up) and deauthed. */
  unpaidClosed: number;
}

/** What the closes are built with: the gatekeeper's options, its holds and counters, and what a close tells it. */
export interface CloseHost {
  options: GatekeeperOptions;
  clock: Clock;
  /** Live sessions whose gate is kept closed on purpose: their gate closes all the same. */
  held: ReadonlySet<string>;
  counters: CloseCounters;
  /** A close begins: the gate is no longer open or pending for the gatekeeper. */
  closing(mac: string): void;
  /** A close ended: the portal's word on the client after it (null: not listed), undefined when nobody looked. */
  closed(mac: string, state: string | null | undefined): void;
}

export class GateCloses {
  /** MACs deauthed (or tried) whose closed gate no portal listing has confirmed yet → when that attempt ended. */
  private readonly toClose = new Map<string, number>();
  /** Closes in flight, by MAC: a second close of the same MAC waits for the first. */
  private readonly inFlight = new Map<string, Promise<CloseOutcome>>();
  /** MACs whose gate sluice opened (leaveForeign: the only ones enforce() closes). */
  private readonly ours = new Set<string>();
  /** Outcome of the last close of each MAC still awaiting confirmation. */
  private readonly lastClose = new Map<string, CloseOutcome>();

  constructor(private readonly host: CloseHost) {}

  /**
   * Closes the MAC's gate unless a live session needs it. Resolves when the portal answered: 'closed' (deauthed, or
   * nothing open to deauth) or 'failed' (retried by enforce() on every tick until a listing confirms it).
   */
  close(mac: string): Promise<CloseOutcome> {
    const inFlight = this.inFlight.get(mac);
    if (inFlight) return inFlight;
    const run = this.doClose(mac).finally(() => {
      this.inFlight.delete(mac);
    });
    this.inFlight.set(mac, run);
    return run;
  }

  /** The close of this MAC running now, if any. */
  running(mac: string): Promise<CloseOutcome> | undefined {
    return this.inFlight.get(mac);
  }

  /** The close in flight for this MAC, or the outcome of its last one while unconfirmed. */
  closeInFlight(mac: string): Promise<CloseOutcome> | undefined {
    const inFlight = this.inFlight.get(mac);
    if (inFlight) return inFlight;
    const last = this.lastClose.get(mac);
    return last === undefined ? undefined : Promise.resolve(last);
  }

  /** The gate opens again: an unconfirmed close of it no longer stands. */
  opening(mac: string): void {
    this.toClose.delete(mac);
    this.lastClose.delete(mac);
  }

  /** sluice opened this MAC's gate (leaveForeign). */
  opened(mac: string): void {
    this.ours.add(mac);
  }

  /** Whether sluice has a close for this MAC that no portal listing has confirmed yet. */
  unconfirmed(mac: string): boolean {
    return this.toClose.has(mac);
  }

  /** How many closes no portal listing has confirmed yet. */
  get unconfirmedCount(): number {
    return this.toClose.size;
  }

  private async doClose(mac: string): Promise<CloseOutcome> {
    const { options, held, counters, clock } = this.host;
    const live = options.sessions.byMac(mac);
    if (live && isLive(live) && !held.has(mac)) return 'kept-open';
    this.host.closing(mac);
    // Unconfirmed until a portal listing no longer shows it open (ndsctl's answer alone can be wrong: garbage, exit 0).
    this.toClose.set(mac, Infinity);
    const startedAt = performance.now();
    const { valve, confirmByLook } = options;
    try {
      const look = valve.closeAndLook !== undefined && confirmByLook?.() === true;
      const { result, state } = look
        ? await valve.closeAndLook!(mac)
        : { result: await valve.close(mac), state: undefined };
      this.toClose.set(mac, clock.now());
      this.lastClose.set(mac, 'closed');
      counters.closed++;
      // The portal's word on this one client confirms the close as a listing would (enforce).
      if (state !== undefined && !AUTHED_STATES.has(state ?? '')) this.confirmClosed(mac);
      options.log.info('gate closed', { mac, result, took_ms: Math.round(performance.now() - startedAt) });
      this.host.closed(mac, state);
      return 'closed';
    } catch (err) {
      const e = toSluiceError(err);
      this.toClose.set(mac, clock.now());
      this.lastClose.set(mac, 'failed');
      counters.closeFailures++;
      options.log.warn('gate close failed, will retry', { mac, code: e.code, reason: e.message });
      this.host.closed(mac, undefined);
      return 'failed';
    }
  }

  /** The portal no longer shows this MAC's gate open after sluice closed it: that close is done. */
  private confirmClosed(mac: string): void {
    this.toClose.delete(mac);
    this.ours.delete(mac);
    this.lastClose.delete(mac);
    // A close whose deauth failed kept the client stopped in sluice's own table: the portal gates it now.
    void this.host.options.valve.released?.(mac);
  }

  /**
   * After every good tick, with the clients that snapshot showed with an open gate and no live session, or a held one
   * (Trusted ones excluded by the caller), read at `snapshotAt`: closes each, again if an earlier close did not take,
   * and counts it. A MAC awaiting confirmation that is no longer among them is confirmed closed. A listing taken before
   * a close ended says nothing about it.
   */
  async enforce(openUnpaid: readonly string[], snapshotAt: number): Promise<void> {
    const { options, held, counters } = this.host;
    const stillOpen = new Set(openUnpaid);
    for (const [mac, endedAt] of this.toClose) {
      if (!stillOpen.has(mac) && endedAt <= snapshotAt) this.confirmClosed(mac);
    }
    for (const mac of openUnpaid) {
      if (this.inFlight.has(mac)) continue;
      const live = options.sessions.byMac(mac);
      if (live && isLive(live) && !held.has(mac)) continue;
      const endedAt = this.toClose.get(mac);
      if (endedAt !== undefined && endedAt > snapshotAt) continue;
      if (endedAt !== undefined) counters.closeRetries++;
      else if (held.has(mac)) options.log.warn('held gate found open: closing', { mac });
      else if (options.leaveForeign && !this.ours.has(mac)) continue;
      else {
        counters.unpaidClosed++;
        options.log.warn('gate open without a session: closing', { mac });
      }
      await this.close(mac);
    }
  }
}
