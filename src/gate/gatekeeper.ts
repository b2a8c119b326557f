/**
 * The one owner of the portal's gates: it decides when each opens and closes. It follows the sessions itself (a start
 * opens, an end closes, a top-up raises the kernel quota), keeps held gates closed (escrow credit), and follows the
 * meter's facts (follow: a paying client needs its gate, metering is overdue, the clients a tick saw open without a
 * session). Nothing else opens or closes a gate; the others wait for what the gate did (opened(), closed()). What
 * an open waits on (the valve's auth, its tries again while the portal does not list the client) is gate-opens.ts;
 * what a close waits on (the deauth, the portal's word that it took) gate-closes.ts; the start-up's restores
 * startup.ts. Failures never lose a paid session: a gate that cannot be opened now (the portal has not seen the MAC,
 * or is down) is `pending` and opens when the meter sees the client again, or the session ends `portal-lost` after a
 * grace period.
 */
import { toSluiceError } from '../errors.ts';
import { devicesOf, Emitter, isLive, type Session } from '../sessions/index.ts';
import type { PortalClient, PortalSnapshot } from '../portal/index.ts';
import { backgroundTimers, systemClock, type Clock, type Timers } from '../time.ts';
import type { GateState } from './states.ts';
import {
  AUTHED_STATES,
  type CloseOutcome,
  type FollowedMeter,
  type GateEvents,
  type GatekeeperOptions,
  type ReconcileReport,
} from './options.ts';
import { GateCloses } from './gate-closes.ts';
import { GateOpens } from './gate-opens.ts';
import { RateFollower } from './rate-follower.ts';
import { quotaFoundOpen, reconcileCounts, reconcileRetryMs, relimitFoundOpen } from './startup.ts';

// The gate's ports, options, events and listing timing live in options.ts; importers take them from here as before.
export type {
  CloseOutcome,
  GateEvents,
  GateKernelQuota,
  GatekeeperOptions,
  GateValve,
  RateShaper,
  ReconcileReport,
} from './options.ts';
export { LISTING_RETRY_MS, LISTING_WAIT_MS, LISTING_WAITERS } from './options.ts';

export class Gatekeeper {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly gates = new Map<string, 'open' | 'pending'>();
  /** Live sessions whose gate is kept closed on purpose (escrow credit exhausted): reopen() leaves them alone. */
  private readonly held = new Set<string>();
  /** The held whose hold is a venue handover's (closeAndCount): it goes with the session's end. */
  private readonly handingOver = new Set<string>();
  /** First failed re-open of a present paying client in the current streak. */
  private readonly failingSince = new Map<string, number>();
  private readonly counters = {
    opened: 0,
    closed: 0,
    openFailures: 0,
    closeFailures: 0,
    reopened: 0,
    portalLost: 0,
    /** Deauths repeated because a listing still showed the gate open after an earlier close. */
    closeRetries: 0,
    /** Clients found authenticated without a live session by a tick (not at start-up) and deauthed. */
    unpaidClosed: 0,
  };
  /** The opening of each live session's gate at its start, by session id (a purchase reply waits for it). */
  private readonly starts = new Map<string, Promise<GateState>>();
  /** Each session's rate changes, set on its open gates (a `change` reply waits for them). */
  private readonly rates: RateFollower;
  /** The meter followed (follow): the address its ticks listed for a client whose gate opens. */
  private meter: FollowedMeter | undefined;
  private readonly events = new Emitter<GateEvents>((err, event) =>
    this.options.log.warn('gate listener failed', { event: String(event), reason: toSluiceError(err).message }),
  );
  /** The closes in flight and those no listing confirmed yet (gate-closes.ts). */
  private readonly closes: GateCloses;
  /** The opens in flight and the sessions waiting for their client to be listed (gate-opens.ts). */
  private readonly opens: GateOpens;

  constructor(private readonly options: GatekeeperOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    const { clock, held, counters, gates, failingSince } = this;
    this.closes = new GateCloses({
      ...{ options, clock, held, counters },
      closing: (mac) => {
        gates.delete(mac);
        this.opens.closing(mac);
        failingSince.delete(mac);
      },
      closed: (mac, state) => this.events.emit('closed', mac, state),
    });
    this.opens = new GateOpens({
      ...{ options, clock, timers: this.timers, gates, held, failingSince, counters },
      ...{ closes: this.closes, events: this.events, meter: () => this.meter },
    });
    const { sessions } = options;
    this.rates = new RateFollower({
      ...options,
      openingOf: (mac) => this.opens.running(mac),
      passes: (mac) => this.gates.get(mac) === 'open' && !this.held.has(mac),
    });
    // A valve whose opening is one kernel change it can take back (sluice's own gate) opens while the purchase's
    // record goes to flash, not after it: the reply still waits for both (`started`, then opened()), and a refused
    // write closes the gate again before anyone was told of the purchase.
    sessions.on('selling', (s) => this.opens.selling(s));
    sessions.on('unsold', (s) => void this.opens.sold(s.id, false));
    sessions.on('started', (s) => {
      const early = this.opens.sold(s.id, true);
      // Not for top-ups: their gate is already open or pending, and a re-auth fails on an Authenticated client.
      this.starts.set(
        s.id,
        (early ?? this.opens.open(s)).then((gate) => {
          if (gate !== 'pending') this.events.emit('opened', s);
          return gate;
        }),
      );
    });
    // Every device of a multi-device session has its own kernel quota: each is raised to what the session has left.
    sessions.on('topup', (s) => {
      for (const mac of devicesOf(s)) void this.options.kernelQuota?.toppedUp(mac);
    });
    // New limits (CoA-Request, ubus `change`): the quota follows the allotment, down as well as up.
    sessions.on('limits', (s) => {
      if (s.metric === 'bytes') for (const mac of devicesOf(s)) void this.options.kernelQuota?.toppedUp(mac);
    });
    // A move (on flash already): the old MAC's gate closes (no live session holds it now) as the new one opens.
    // A held gate (escrow credit) stays held on the new MAC: only a release opens it.
    sessions.on('moved', (s, from) => {
      this.opens.forgetSession(s.id);
      const held = this.held.delete(from);
      void this.closes.close(from);
      if (held) {
        this.events.emit('held', from, false);
        this.held.add(s.mac);
        this.events.emit('held', s.mac, true);
        this.starts.set(s.id, Promise.resolve('pending'));
        return;
      }
      this.starts.set(
        s.id,
        this.opens.open(s).then((gate) => {
          if (gate !== 'pending') this.events.emit('opened', s);
          return gate;
        }),
      );
    });
    sessions.on('rates', (s) => this.rates.changed(s));
    sessions.on('ended', (s) => {
      this.starts.delete(s.id);
      this.opens.forgetSession(s.id);
      for (const mac of devicesOf(s))
        if (this.handingOver.delete(mac) && this.held.delete(mac)) this.events.emit('held', mac, false);
      // A close still unconfirmed (a held gate, a failed deauth) stands for this end: enforce() retries it.
      // Every device's gate closes at the end, as the buyer's does.
      for (const mac of devicesOf(s)) if (this.closes.closeInFlight(mac) === undefined) void this.closes.close(mac);
    });
    // A device joined a multi-device session: its gate opens as a start's does (the session seen from that device).
    sessions.on('joined', (s, mac) => {
      void this.opens.open({ ...s, mac });
    });
    sessions.on('left', (_s, mac) => {
      if (this.closes.closeInFlight(mac) === undefined) void this.closes.close(mac);
    });
  }

  on<K extends keyof GateEvents>(event: K, listener: (...args: GateEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Follows the meter's facts as it follows the sessions': each good tick's open gates without a live session are
   * closed (enforce), a paying client back unauthenticated is re-opened, metering overdue closes gates on nodogsplash;
   * and an open takes the address the ticks listed for the client when it is the session's own.
   */
  follow(meter: FollowedMeter): void {
    this.meter = meter;
    meter.on('tick', (report) => {
      if (report.ok) void this.enforce(report.openUnpaid, report.at);
    });
    meter.on('paying-client-needs-gate', (mac) => void this.reopen(mac));
    meter.on('metering-overdue', (macs, flavour) => this.meteringOverdue(macs, flavour));
  }

  /**
   * The gate of a session that just started, as a purchase reply shows it: the opening begun at its start (in flight
   * or done), or `pending` when it has none (it ended before it started).
   */
  opened(session: Session): Promise<GateState> {
    return this.starts.get(session.id) ?? Promise.resolve('pending');
  }

  /**
   * The close of this MAC's gate after its session ended: the one in flight or its unconfirmed outcome, or a new one
   * (`kept-open` when a newer live session of the same MAC holds the gate).
   */
  closed(mac: string): Promise<CloseOutcome> {
    return this.closes.closeInFlight(mac) ?? this.closes.close(mac);
  }

  /** The kernel's side of the session's last rate change: done (or nothing to do) when this resolves. */
  ratesApplied(sessionId: string): Promise<void> {
    return this.rates.applied(sessionId);
  }

  gateOf(mac: string): GateState {
    const gate = this.gates.get(mac);
    return gate === 'open' ? 'already-open' : 'pending';
  }

  /** Closes a live session's gate and keeps it closed (the meter's re-open skips it) until release(). */
  async hold(mac: string): Promise<boolean> {
    if (this.held.has(mac)) return false;
    this.held.add(mac);
    this.events.emit('held', mac, true);
    await this.closes.close(mac);
    return true;
  }

  /**
   * A venue handover's close (upstream/venue-tail.ts): `count` run in the close once the device's traffic stopped
   * (GateValve.closeAndCount), the gate held closed as hold() holds it from before the close until the session ends,
   * or until handedBack() when the release gave way. An opening or close of the MAC in flight goes first.
   */
  async closeAndCount<T>(mac: string, count: (client: () => Promise<PortalClient | null>) => Promise<T>) {
    if (!this.held.has(mac)) {
      this.handingOver.add(mac);
      this.held.add(mac);
      this.events.emit('held', mac, true);
    }
    await Promise.all([this.opens.running(mac), this.closes.running(mac)]);
    const { valve } = this.options;
    if (valve.closeAndCount !== undefined) return valve.closeAndCount(mac, count);
    return { result: await valve.close(mac), counted: await count(async () => null) };
  }

  /** A handover's close failed: its stop and its hold go (a gate it did close opens again as the meter finds it). */
  async handedBack(mac: string): Promise<void> {
    await this.options.valve.released?.(mac);
    if (this.handingOver.delete(mac) && this.held.delete(mac)) this.events.emit('held', mac, false);
  }

  /** Ends a hold and re-opens the gate at once. */
  async release(mac: string): Promise<boolean> {
    if (!this.held.delete(mac)) return false;
    this.events.emit('held', mac, false);
    await this.reopen(mac);
    return true;
  }

  isHeld(mac: string): boolean {
    return this.held.has(mac);
  }

  /**
   * The meter saw a paying client present but unauthenticated (portal restart, the portal's idle timeout, a net that
   * a top-up outgrew): re-open it as a new counter epoch.
   */
  async reopen(mac: string): Promise<void> {
    if (this.held.has(mac)) return; // credit gating keeps it closed until release()
    const session = this.options.sessions.byMac(mac);
    if (!session || !isLive(session)) return;
    if (this.opens.running(mac) !== undefined) return; // its gate is being opened right now
    // The session as seen from this device (a joined device of a multi-device session has its own gate).
    const gate = await this.opens.open({ ...session, mac });
    if (gate !== 'pending') {
      this.counters.reopened++;
      return;
    }
    const since = this.failingSince.get(mac) ?? this.clock.now();
    this.failingSince.set(mac, since);
    const grace = this.options.portalLostGraceMs ?? 120_000;
    if (this.clock.now() - since >= grace) {
      // A joined device that left the WiFi does not end the purchase its other devices share: it stays pending.
      if (mac !== session.mac) return;
      this.counters.portalLost++;
      this.failingSince.delete(mac);
      this.options.log.warn('portal lost a paying client', { mac, session: session.id, since });
      await this.options.sessions.end(session.id, 'portal-lost');
    }
  }

  /**
   * nodogsplash's auth takes no limits, so nothing but sluice cuts a client while metering lags (docs/operations.md):
   * the meter found these data sessions overdue. Their gates close through the valve itself (close() keeps a live
   * session's gate open); the sessions stay ACTIVE and the gates re-open through reopen() once readings resume.
   */
  meteringOverdue(macs: readonly string[], flavour: string | undefined): void {
    if (flavour !== 'nodogsplash') return;
    for (const mac of macs) {
      this.options.log.warn('metering lags: safety net closes the gate', { mac });
      void this.options.valve
        .close(mac)
        .catch((err: unknown) =>
          this.options.log.warn('safety net close failed', { mac, reason: toSluiceError(err).message }),
        );
    }
  }

  /** At start, once escrow holds are known and the first tick billed what passed while sluice was down: the gates of
   *  sessions that ended meanwhile close, the kernel quota's table is read, the portal reconciled (startWithPortal). */
  async start(endedWhileDown: readonly Session[]): Promise<void> {
    for (const s of endedWhileDown) await this.closes.close(s.mac);
    await this.options.kernelQuota?.start();
    await this.startWithPortal(0);
  }

  /**
   * start()'s listing (its deadline grows with the sessions' clients: Valve.snapshot) and reconcile, tried again later
   * if it fails (startup.ts reconcileRetryMs); gates found open without a quota get one, counted from now (bytes since
   * the meter's last reading on top: a late stop, never an early one).
   */
  private async startWithPortal(attempt: number): Promise<void> {
    const { log, kernelQuota, sessions } = this.options;
    try {
      const expected = sessions.list({ state: 'ACTIVE' }).reduce((n, s) => n + devicesOf(s).length, 0);
      const listedAfter = this.opens.listingMark();
      const snapshot = await this.options.valve.snapshot('snapshot', expected);
      for (const c of snapshot.clients) {
        const s = c.ip ? sessions.byMac(c.mac) : null;
        if (s !== null && isLive(s)) sessions.noteIp(s.id, c.ip!);
      }
      await relimitFoundOpen(snapshot, this.options, this.held);
      const report = await this.reconcile(snapshot, listedAfter);
      await quotaFoundOpen(snapshot, kernelQuota, sessions, (mac) => this.gateOf(mac), this.clock);
      log.info('reconciled with portal', reconcileCounts(report));
    } catch (err) {
      const { code, message: reason } = toSluiceError(err);
      if (code === 'ERR_VALVE_CLOSED') return;
      // Warned once: a portal starting after sluice is expected (docs/quickstart.md).
      log[attempt === 0 ? 'warn' : 'debug']('cannot reconcile with portal yet', { code, reason, attempt: attempt + 1 });
      this.timers.setTimeout(() => void this.startWithPortal(attempt + 1), reconcileRetryMs(attempt));
    }
  }

  /**
   * After every good tick, with the clients that snapshot showed with an open gate and no live session, or a held one
   * (Trusted ones excluded by the caller), read at `snapshotAt`: closes each, again if an earlier close did not take
   * (gate-closes.ts).
   */
  enforce(openUnpaid: readonly string[], snapshotAt: number): Promise<void> {
    return this.closes.enforce(openUnpaid, snapshotAt);
  }

  /**
   * On start: authenticated clients without a live session are deauthed (a crash must never leave free access);
   * live sessions whose client is present but not authenticated are re-opened (a new counter epoch); live sessions
   * whose client is absent stay pending. A gate whose opening began after the listing or was in flight at it (numbered
   * above `listedAfter`) is that opening's: a purchase answered while the start-up listed the portal keeps its gate.
   */
  async reconcile(snapshot?: PortalSnapshot, listedAfter = this.opens.listingMark()): Promise<ReconcileReport> {
    const report: ReconcileReport = { deauthed: [], reopened: [], pending: [], alreadyOpen: 0 };
    const snap = snapshot ?? (await this.options.valve.snapshot());
    const present = new Map(snap.clients.map((c) => [c.mac, c]));
    for (const client of snap.clients) {
      // Trusted MACs are the admin's own free list in the portal's config: not sluice's to close.
      if (!AUTHED_STATES.has(client.state) || client.state === 'Trusted') continue;
      const session = this.options.sessions.byMac(client.mac);
      if (session && isLive(session)) continue;
      await this.closes.close(client.mac);
      report.deauthed.push(client.mac);
    }
    for (const session of this.options.sessions
      .list({ state: 'ACTIVE' })
      .flatMap((s) => devicesOf(s).map((mac) => ({ ...s, mac })))) {
      const client = present.get(session.mac);
      if (this.opens.begun(session.mac) > listedAfter) continue;
      if (this.held.has(session.mac)) {
        // Held for an escrow receipt: stays closed (hold() asked already; a gate still shown open is closed).
        if (client && AUTHED_STATES.has(client.state)) await this.closes.close(session.mac);
        report.pending.push(session.mac);
        continue;
      }
      if (client && AUTHED_STATES.has(client.state)) {
        this.gates.set(session.mac, 'open');
        report.alreadyOpen++;
      } else if (client) {
        const gate = await this.opens.open(session);
        (gate === 'pending' ? report.pending : report.reopened).push(session.mac);
      } else {
        this.gates.set(session.mac, 'pending');
        report.pending.push(session.mac);
      }
    }
    return report;
  }

  stats(): Record<string, number> {
    let open = 0;
    let pending = 0;
    for (const g of this.gates.values()) g === 'open' ? open++ : pending++;
    // What the portal was asked since start (portal_auth, portal_deauth, portal_json_one, portal_json_all, …).
    const calls = Object.entries(this.options.valve.callCounts?.() ?? {}).map(([k, n]) => [`portal_${k}`, n]);
    return { open, pending, closing: this.closes.unconfirmedCount, ...this.counters, ...Object.fromEntries(calls) };
  }

  /** Whether sluice has a close for this MAC that no portal listing has confirmed yet. */
  closeUnconfirmed(mac: string): boolean {
    return this.closes.unconfirmed(mac);
  }
}
