/**
 * The one owner of the portal's gates: it follows the sessions itself (a start opens, an end closes, a top-up raises
 * the kernel quota), keeps held gates closed (escrow credit), and follows the meter's facts (follow: a paying client
 * needs its gate, metering is overdue, the clients a tick saw open without a session). Nothing else opens or closes a
 * gate; the others wait for what the gate did (opened(), closed()). The valve does the ndsctl work; this decides
 * when. Failures never lose a paid session: a gate that cannot be opened now (the portal has not seen the MAC, or is
 * down) is `pending` and opens when the meter sees the client again, or the session ends `portal-lost` after a grace
 * period.
 *
 * A close is done when the portal's own list says so, not when ndsctl says so: every tick hands `enforce()` the
 * clients the portal shows with an open gate, and any of them without a live session is deauthed (again), counted,
 * until a listing no longer shows it open. That also closes gates opened behind sluice's back (unless
 * `leaveForeign`), as the start-up reconcile does. The portal's Trusted clients are never touched.
 */
import { toSluiceError } from '../errors.ts';
import { devicesOf, Emitter, isLive, type Session } from '../sessions/index.ts';
import { hasRates, type PortalClient, type PortalSnapshot } from '../portal/index.ts';
import { backgroundTimers, systemClock, type Clock, type Timers } from '../time.ts';
import type { GateState } from './states.ts';
import { safetyNetFor } from './safety-net.ts';
import {
  AUTHED_STATES,
  LISTED_IP_MAX_AGE_MS,
  LISTING_RETRY_MS,
  LISTING_WAIT_MS,
  LISTING_WAITERS,
  type CloseOutcome,
  type FollowedMeter,
  type GateEvents,
  type GatekeeperOptions,
  type ReconcileReport,
} from './options.ts';
import { RateFollower } from './rate-follower.ts';
import { listingMark, quotaFoundOpen, reconcileCounts, reconcileRetryMs, relimitFoundOpen } from './startup.ts';

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
  /** MACs deauthed (or tried) whose closed gate no portal listing has confirmed yet → when that attempt ended. */
  private readonly toClose = new Map<string, number>();
  /** Closes in flight, by MAC: a second close of the same MAC waits for the first. */
  private readonly closing = new Map<string, Promise<CloseOutcome>>();
  /** Opens in flight, by MAC: the meter's re-open request for a gate that is being opened is not a second auth. */
  private readonly opening = new Map<string, Promise<GateState>>();
  /** Live sessions whose gate is kept closed on purpose (escrow credit exhausted): reopen() leaves them alone. */
  private readonly held = new Set<string>();
  /** The held whose hold is a venue handover's (closeAndCount): it goes with the session's end. */
  private readonly handingOver = new Set<string>();
  /** MACs whose gate sluice opened (leaveForeign: the only ones enforce() closes). */
  private readonly ours = new Set<string>();
  /** Outcome of the last close of each MAC still awaiting confirmation. */
  private readonly lastClose = new Map<string, CloseOutcome>();
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
  /** Sessions waiting for the portal to list their client (LISTING_RETRY_MS): when the first try found it unlisted. */
  private readonly unlisted = new Map<string, number>();
  /** The opening of each live session's gate at its start, by session id (a purchase reply waits for it). */
  private readonly starts = new Map<string, Promise<GateState>>();
  /** Each session's rate changes, set on its open gates (a `change` reply waits for them). */
  private readonly rates: RateFollower;
  /** Openings begun since start, and each MAC's latest number: a listing before or during it says nothing of it. */
  private opensBegun = 0;
  private readonly openBegun = new Map<string, number>();
  /** The meter followed (follow): the address its ticks listed for a client whose gate opens. */
  private meter: FollowedMeter | undefined;
  private readonly events = new Emitter<GateEvents>((err, event) =>
    this.options.log.warn('gate listener failed', { event: String(event), reason: toSluiceError(err).message }),
  );

  constructor(private readonly options: GatekeeperOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    const { sessions } = options;
    this.rates = new RateFollower({
      ...options,
      openingOf: (mac) => this.opening.get(mac),
      passes: (mac) => this.gates.get(mac) === 'open' && !this.held.has(mac),
    });
    sessions.on('started', (s) => {
      // Not for top-ups: their gate is already open or pending, and a re-auth fails on an Authenticated client.
      this.starts.set(
        s.id,
        this.open(s).then((gate) => {
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
      this.unlisted.delete(s.id);
      const held = this.held.delete(from);
      void this.close(from);
      if (held) {
        this.events.emit('held', from, false);
        this.held.add(s.mac);
        this.events.emit('held', s.mac, true);
        this.starts.set(s.id, Promise.resolve('pending'));
        return;
      }
      this.starts.set(
        s.id,
        this.open(s).then((gate) => {
          if (gate !== 'pending') this.events.emit('opened', s);
          return gate;
        }),
      );
    });
    sessions.on('rates', (s) => this.rates.changed(s));
    sessions.on('ended', (s) => {
      this.starts.delete(s.id);
      this.unlisted.delete(s.id);
      for (const mac of devicesOf(s))
        if (this.handingOver.delete(mac) && this.held.delete(mac)) this.events.emit('held', mac, false);
      // A close still unconfirmed (a held gate, a failed deauth) stands for this end: enforce() retries it.
      // Every device's gate closes at the end, as the buyer's does.
      for (const mac of devicesOf(s)) if (this.closeInFlight(mac) === undefined) void this.close(mac);
    });
    // A device joined a multi-device session: its gate opens as a start's does (the session seen from that device).
    sessions.on('joined', (s, mac) => {
      void this.open({ ...s, mac });
    });
    sessions.on('left', (_s, mac) => {
      if (this.closeInFlight(mac) === undefined) void this.close(mac);
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
    return this.closeInFlight(mac) ?? this.close(mac);
  }

  /** The kernel's side of the session's last rate change: done (or nothing to do) when this resolves. */
  ratesApplied(sessionId: string): Promise<void> {
    return this.rates.applied(sessionId);
  }

  private open(session: Session): Promise<GateState> {
    const inFlight = this.opening.get(session.mac);
    if (inFlight) return inFlight;
    const run = this.doOpen(session).finally(() => {
      this.opening.delete(session.mac);
    });
    this.opening.set(session.mac, run);
    return run;
  }

  private async doOpen(session: Session): Promise<GateState> {
    if (!isLive(session)) return 'pending';
    // A close in flight for this MAC (the previous session's end) goes first: opening now would race its deauth.
    await this.closing.get(session.mac);
    this.toClose.delete(session.mac);
    this.lastClose.delete(session.mac);
    this.events.emit('auth-starting', session.mac, session.id);
    this.openBegun.set(session.mac, ++this.opensBegun);
    try {
      // The session's journaled rates (its plan's, a voucher's, or a live change's).
      const rates = this.options.shaper ? session.rates : undefined;
      const net = safetyNetFor(session, this.clock.now());
      // The session's address (the LAN endpoint's purchases carry it) is its buyer's, not a joined device's: only
      // then may the valve skip its lookup of the client (Valve.open).
      const own = this.options.sessions.byMac(session.mac);
      const knownIp = own !== null && own.id === session.id && own.mac === session.mac ? own.ip : null;
      const listed = knownIp !== null && this.meter?.listedIp(session.mac, LISTED_IP_MAX_AGE_MS) === knownIp;
      const startedAt = performance.now();
      const result = await this.options.valve.open(
        session.mac,
        hasRates(rates) ? { ...net, rates: { downBps: rates.downBps, upBps: rates.upBps } } : net,
        knownIp,
        listed,
      );
      const ip = this.options.valve.lastIp?.(session.mac);
      this.events.emit('auth-finished', session.mac, session.id, result, ip ?? null);
      this.ours.add(session.mac);
      if (ip) this.options.sessions.noteIp(session.id, ip);
      // A time session's clock starts now that its gate is open (not at the request).
      if (session.metric === 'seconds')
        await this.options.sessions.startClock(session.id, this.clock.now()).catch(() => undefined);
      // The session may have ended while ndsctl ran (a terminate racing the purchase): do not leave the gate open.
      if (!this.isStillLive(session)) {
        await this.close(session.mac);
        return 'pending';
      }
      this.gates.set(session.mac, 'open');
      this.failingSince.delete(session.mac);
      this.counters.opened++;
      this.options.log.info('gate open', {
        mac: session.mac,
        session: session.id,
        result,
        took_ms: Math.round(performance.now() - startedAt),
      });
      return result;
    } catch (err) {
      this.events.emit('auth-finished', session.mac, session.id, 'failed', null);
      const e = toSluiceError(err);
      this.gates.set(session.mac, 'pending');
      this.counters.openFailures++;
      const unknown = e.code === 'ERR_PORTAL_CLIENT_UNKNOWN';
      // An auth cut short by the deadline (the portal may do it later or never), refused at the socket (the portal
      // restarting: procd brings it back in seconds), or of unknown outcome (the valve's next open looks first). Tried
      // again like an unlisted client's: with the kernel's counters no listing may come for minutes to reopen it.
      const late =
        e.code === 'ERR_NDSCTL_TIMEOUT' || e.code === 'ERR_PORTAL_DOWN' || e.details?.['outcome'] === 'unknown';
      const retrying = (unknown || late) && this.unlisted.has(session.id);
      if (!retrying)
        this.options.log[unknown ? 'info' : 'warn']('gate pending', {
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

  /**
   * Tries the gate of a session whose client the portal does not list again soon (LISTING_RETRY_MS), up to
   * LISTING_WAIT_MS.
   */
  private awaitListing(session: Session): void {
    const now = this.clock.now();
    if (!this.unlisted.has(session.id) && this.unlisted.size >= LISTING_WAITERS) return;
    const since = this.unlisted.get(session.id) ?? now;
    if (now - since >= LISTING_WAIT_MS) {
      this.unlisted.delete(session.id);
      return;
    }
    this.unlisted.set(session.id, since);
    this.timers.setTimeout(() => {
      const mac = session.mac;
      // Opened meanwhile (the meter's re-open), ended, held, or being opened: nothing to try.
      if (
        !this.isStillLive(session) ||
        this.held.has(mac) ||
        this.gates.get(mac) !== 'pending' ||
        this.opening.has(mac)
      ) {
        if (!this.opening.has(mac)) this.unlisted.delete(session.id);
        return;
      }
      void this.open(session).then((gate) => {
        if (gate !== 'pending') this.unlisted.delete(session.id);
      });
    }, LISTING_RETRY_MS);
  }

  /**
   * Closes the MAC's gate unless a live session needs it. Resolves when the portal answered: 'closed' (deauthed, or
   * nothing open to deauth) or 'failed' (retried by enforce() on every tick until a listing confirms it).
   */
  private close(mac: string): Promise<CloseOutcome> {
    const inFlight = this.closing.get(mac);
    if (inFlight) return inFlight;
    const run = this.doClose(mac).finally(() => {
      this.closing.delete(mac);
    });
    this.closing.set(mac, run);
    return run;
  }

  /** The close in flight for this MAC, or the outcome of its last one while unconfirmed. */
  private closeInFlight(mac: string): Promise<CloseOutcome> | undefined {
    const inFlight = this.closing.get(mac);
    if (inFlight) return inFlight;
    const last = this.lastClose.get(mac);
    return last === undefined ? undefined : Promise.resolve(last);
  }

  private async doClose(mac: string): Promise<CloseOutcome> {
    const live = this.options.sessions.byMac(mac);
    if (live && isLive(live) && !this.held.has(mac)) return 'kept-open';
    this.gates.delete(mac);
    this.openBegun.delete(mac);
    this.failingSince.delete(mac);
    // Unconfirmed until a portal listing no longer shows it open (ndsctl's answer alone can be wrong: garbage, exit 0).
    this.toClose.set(mac, Infinity);
    const startedAt = performance.now();
    const { valve, confirmByLook } = this.options;
    try {
      const look = valve.closeAndLook !== undefined && confirmByLook?.() === true;
      const { result, state } = look
        ? await valve.closeAndLook!(mac)
        : { result: await valve.close(mac), state: undefined };
      this.toClose.set(mac, this.clock.now());
      this.lastClose.set(mac, 'closed');
      this.counters.closed++;
      // The portal's word on this one client confirms the close as a listing would (enforce).
      if (state !== undefined && !AUTHED_STATES.has(state ?? '')) this.confirmClosed(mac);
      this.options.log.info('gate closed', { mac, result, took_ms: Math.round(performance.now() - startedAt) });
      this.events.emit('closed', mac, state);
      return 'closed';
    } catch (err) {
      const e = toSluiceError(err);
      this.toClose.set(mac, this.clock.now());
      this.lastClose.set(mac, 'failed');
      this.counters.closeFailures++;
      this.options.log.warn('gate close failed, will retry', { mac, code: e.code, reason: e.message });
      this.events.emit('closed', mac, undefined);
      return 'failed';
    }
  }

  /** The portal no longer shows this MAC's gate open after sluice closed it: that close is done. */
  private confirmClosed(mac: string): void {
    this.toClose.delete(mac);
    this.ours.delete(mac);
    this.lastClose.delete(mac);
    // A close whose deauth failed kept the client stopped in sluice's own table: the portal gates it now.
    void this.options.valve.released?.(mac);
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
    await this.close(mac);
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
    await Promise.all([this.opening.get(mac), this.closing.get(mac)]);
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
    if (this.opening.has(mac)) return; // its gate is being opened right now
    // The session as seen from this device (a joined device of a multi-device session has its own gate).
    const gate = await this.open({ ...session, mac });
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
    for (const s of endedWhileDown) await this.close(s.mac);
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
      const listedAfter = listingMark(this.opensBegun, this.opening.keys(), this.openBegun);
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
   * (Trusted ones excluded by the caller), read at `snapshotAt`: closes each, again if an earlier close did not take,
   * and counts it. A MAC awaiting confirmation that is no longer among them is confirmed closed. A listing taken before
   * a close ended says nothing about it.
   */
  async enforce(openUnpaid: readonly string[], snapshotAt: number): Promise<void> {
    const stillOpen = new Set(openUnpaid);
    for (const [mac, endedAt] of this.toClose) {
      if (!stillOpen.has(mac) && endedAt <= snapshotAt) this.confirmClosed(mac);
    }
    for (const mac of openUnpaid) {
      if (this.closing.has(mac)) continue;
      const live = this.options.sessions.byMac(mac);
      if (live && isLive(live) && !this.held.has(mac)) continue;
      const endedAt = this.toClose.get(mac);
      if (endedAt !== undefined && endedAt > snapshotAt) continue;
      if (endedAt !== undefined) this.counters.closeRetries++;
      else if (this.held.has(mac)) this.options.log.warn('held gate found open: closing', { mac });
      else if (this.options.leaveForeign && !this.ours.has(mac)) continue;
      else {
        this.counters.unpaidClosed++;
        this.options.log.warn('gate open without a session: closing', { mac });
      }
      await this.close(mac);
    }
  }

  /**
   * On start: authenticated clients without a live session are deauthed (a crash must never leave free access);
   * live sessions whose client is present but not authenticated are re-opened (a new counter epoch); live sessions
   * whose client is absent stay pending. A gate whose opening began after the listing or was in flight at it (numbered
   * above `listedAfter`) is that opening's: a purchase answered while the start-up listed the portal keeps its gate.
   */
  async reconcile(
    snapshot?: PortalSnapshot,
    listedAfter = listingMark(this.opensBegun, this.opening.keys(), this.openBegun),
  ): Promise<ReconcileReport> {
    const report: ReconcileReport = { deauthed: [], reopened: [], pending: [], alreadyOpen: 0 };
    const snap = snapshot ?? (await this.options.valve.snapshot());
    const present = new Map(snap.clients.map((c) => [c.mac, c]));
    for (const client of snap.clients) {
      // Trusted MACs are the admin's own free list in the portal's config: not sluice's to close.
      if (!AUTHED_STATES.has(client.state) || client.state === 'Trusted') continue;
      const session = this.options.sessions.byMac(client.mac);
      if (session && isLive(session)) continue;
      await this.close(client.mac);
      report.deauthed.push(client.mac);
    }
    for (const session of this.options.sessions
      .list({ state: 'ACTIVE' })
      .flatMap((s) => devicesOf(s).map((mac) => ({ ...s, mac })))) {
      const client = present.get(session.mac);
      if ((this.openBegun.get(session.mac) ?? 0) > listedAfter) continue;
      if (this.held.has(session.mac)) {
        // Held for an escrow receipt: stays closed (hold() asked already; a gate still shown open is closed).
        if (client && AUTHED_STATES.has(client.state)) await this.close(session.mac);
        report.pending.push(session.mac);
        continue;
      }
      if (client && AUTHED_STATES.has(client.state)) {
        this.gates.set(session.mac, 'open');
        report.alreadyOpen++;
      } else if (client) {
        const gate = await this.open(session);
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
    return { open, pending, closing: this.toClose.size, ...this.counters, ...Object.fromEntries(calls) };
  }

  /** Whether sluice has a close for this MAC that no portal listing has confirmed yet. */
  closeUnconfirmed(mac: string): boolean {
    return this.toClose.has(mac);
  }

  private isStillLive(session: Session): boolean {
    const current = this.options.sessions.byMac(session.mac);
    return current !== null && current.id === session.id && isLive(current);
  }
}
