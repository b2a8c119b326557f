/**
 * The usage engine's main-thread half, as the daemon sees it: `new Meter({...})` wires its parts and this class is
 * their one public surface. The parts, each with one job:
 *  - tick-loop.ts: scheduling, dispatch to the worker pool (which fetches and scans the snapshot), billing, reports;
 *  - cut-planner.ts: crossing prediction, billing ahead, cuts between ticks and their final readings;
 *  - brake-watch.ts: sessions the kernel quota stops at their allotment (ends, refills);
 *  - first-readings.ts: billing from the first byte after an auth sluice made;
 *  - gate-checks.ts and blind-watch.ts: the gate facts a tick reports, and the safety net when metering lags.
 * The meter tells facts (its events: MeterEvents) and ends sessions only through the sessions port: it never opens or
 * closes a gate (the gate follows its events: Gatekeeper.follow). It follows the gate's auths in turn
 * (MeterOptions.gate).
 */
import { toSluiceError } from '../errors.ts';
import type { KernelReading } from '../portal/index.ts';
import { Emitter } from '../sessions/index.ts';
import { systemClock, systemTimers } from '../time.ts';
import { BlindWatch } from './blind-watch.ts';
import { BrakeWatch } from './brake-watch.ts';
import type { MeterContext } from './context.ts';
import { CutPlanner } from './cut-planner.ts';
import { FirstReadingWatch } from './first-readings.ts';
import { GateChecks } from './gate-checks.ts';
import type { MeterEvents, MeterOptions, TickReport } from './options.ts';
import { createAdaptiveRunner } from './pool.ts';
import type { UsageTaskRunner } from './ports.ts';
import type { MeterStats } from './stats.ts';
import { committedMarks, type CounterMark } from './table.ts';
import { countedSince } from './counted-since.ts';
import { SharedQuota } from './shared-quota.ts';
import { TickLoop } from './tick-loop.ts';
import type { ListedAddress } from './address-book.ts';
import { TickTimes } from './timing.ts';

export type { MeterEvents, MeterOptions, TickReport } from './options.ts';

export class Meter {
  private readonly ctx: MeterContext;
  private readonly runner: UsageTaskRunner;
  private readonly firstReadingMs: number;
  private readonly planner: CutPlanner;
  private readonly brakes: BrakeWatch;
  /** Splits a shared session's bytes left among its devices' kernel quotas after each tick (shared-quota.ts). */
  private readonly shared: SharedQuota;
  private readonly firsts: FirstReadingWatch;
  private readonly gates: GateChecks;
  private readonly blind: BlindWatch;
  private readonly loop: TickLoop;
  /** A throwing listener is an `error` (one of `error` is dropped: it has nowhere else to go). */
  private readonly events = new Emitter<MeterEvents>((err, event) => {
    if (event !== 'error') this.ctx.onError(toSluiceError(err, 'ERR_LISTENER'));
  });
  /** Stops following the gate's events (close). */
  private readonly unfollow: Array<() => void> = [];

  constructor(private readonly options: MeterOptions) {
    this.runner =
      options.runner ??
      createAdaptiveRunner({
        hasLiveSessions: () => {
          for (const _ of options.sessions.activeSessions()) return true;
          return false;
        },
        ...(options.workers === undefined ? {} : { workers: options.workers }),
        ...(options.workerPath === undefined ? {} : { workerPath: options.workerPath }),
        ...(options.workerExecArgv === undefined ? {} : { execArgv: options.workerExecArgv }),
      });
    const clock = options.clock ?? systemClock;
    const timers = options.timers ?? systemTimers;
    this.ctx = {
      sessions: options.sessions,
      clock,
      timers,
      pollIntervalMs: options.pollIntervalMs,
      state: 'idle',
      emit: (event, ...args) => this.events.emit(event, ...args),
      onUsage: (batch) => {
        // Usage leaves the tick once: as the sessions' `usage` event (the publisher, the sinks, escrow follow it).
        options.sessions.reportUsage?.(batch);
        // Queued in the kernel quota behind earlier changes; the next tick's brake check reads after it.
        void this.shared.onUsage(batch);
      },
      onError: (err) => {
        options.log?.warn('meter', { code: err.code, reason: err.message });
        this.events.emit('error', err);
      },
      requestTick: () => this.loop.scheduler.requestTick(),
    };
    const minIntervalMs = options.minIntervalMs ?? 20;
    this.firstReadingMs = options.firstReadingMs ?? 1000;
    const times = new TickTimes();
    this.shared = new SharedQuota(options.sessions, options.kernelQuota);
    this.brakes = new BrakeWatch(
      this.ctx,
      options.kernelQuota,
      (id, mac) => this.planner.endAhead(id, mac, 0, 0, 'kernel'),
      (id) => this.shared.resplit(id),
    );
    this.planner = new CutPlanner(this.ctx, this.brakes, times, {
      // On the kernel's counters a final reading is a tick (one nft dump): the portal's figure for one client is
      // another count than the kernel's, and asking it costs openNDS more than the dump.
      readClient: options.kernelCounters?.enabled === true ? undefined : options.readClient,
      closeLatencyMs: options.closeLatencyMs,
      minIntervalMs,
      peakRateBytesPerS: options.peakRateBytesPerS ?? 12.5e6,
    });
    this.firsts = new FirstReadingWatch(
      this.ctx,
      this.planner,
      (mac) => this.brakes.braked(mac),
      (mac, sessionId) => this.loop.firstReadingBilled(mac, sessionId),
    );
    this.gates = new GateChecks(options.sessions, clock, {
      reopenBackoffMs: options.reopenBackoffMs ?? 5000,
      graceMs: options.newSessionGraceMs ?? 0,
      gate: options.gate,
    });
    this.blind = new BlindWatch(this.ctx, this.planner, this.brakes, () => this.loop.lastReadingAt);
    this.loop = new TickLoop(
      this.ctx,
      {
        runner: this.runner,
        times,
        planner: this.planner,
        brakes: this.brakes,
        firsts: this.firsts,
        gates: this.gates,
        blind: this.blind,
      },
      {
        ...options,
        fetchTimeoutMs: options.fetchTimeoutMs ?? 5000,
        minIntervalMs,
        firstReadingMs: this.firstReadingMs,
      },
    );
    const { gate, log } = options;
    if (gate) {
      this.unfollow.push(
        gate.on('auth-starting', (mac, id) => this.authStarting(mac, id)),
        gate.on('auth-finished', (mac, id, result, ip) => this.authFinished(mac, id, result, ip)),
        gate.on('opened', (s) => this.sessionStarted(s.mac)),
        gate.on('closed', (mac, state) => this.loop.kernel?.closed(mac.toLowerCase(), state)),
        this.gates.unfollow,
      );
    }
    this.followPortalDeauths();
    if (log) {
      this.on('tick', (r) => {
        if (!r.ok) log.debug('tick skipped', { reason: r.skipped, message: r.message });
      });
    }
  }

  /**
   * A gate the portal closed by itself (its BinAuth ran a deauth, portal/binauth-watch.ts): a client that still pays is
   * reported for re-opening (Gatekeeper.reopen: a gate kept closed on purpose stays closed; sluice's own deauths end
   * their sessions first). The roster is left as it is: the re-opening's auth writes it, and a report written into it
   * as a closed gate would stop the billing of an open one were it ever wrong.
   */
  private followPortalDeauths(): void {
    const { portalDeauths, sessions, log } = this.options;
    portalDeauths?.onDeauth((mac) => {
      if (this.ctx.state === 'closing' || this.ctx.state === 'closed' || this.loop.kernel?.on !== true) return;
      if (sessions.active(mac) === undefined) return;
      log?.info('portal: a paying client deauthed by the portal itself', { mac });
      this.events.emit('paying-client-needs-gate', mac);
    });
  }

  /** Follows one of the meter's events (MeterEvents); returns the unsubscribe. */
  on<K extends keyof MeterEvents>(event: K, listener: (...args: MeterEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Starts ticking: the first tick runs at once. */
  start(): void {
    if (this.ctx.state !== 'idle') return;
    this.ctx.state = 'running';
    this.loop.scheduler.schedule(0);
    if (this.events.listens('metering-overdue')) {
      this.blind.start((macs) => this.events.emit('metering-overdue', macs, this.portalFlavour()));
    }
  }

  /** `main.portal`, or when 'auto' the flavour the snapshots showed ('unknown' before any). */
  private portalFlavour(): string {
    const { flavour } = this.options;
    return flavour === undefined || flavour === 'auto' ? this.stats().flavour : flavour;
  }

  /**
   * The safety net's check (run every poll interval once started; tests call it directly): the data sessions whose
   * gates must close because metering lags. Each is returned once until a tick commits again.
   */
  checkBlind(): string[] {
    return this.blind.check();
  }

  /** Ticks as soon as possible (after the tick in flight, if any). */
  requestTick(): void {
    this.loop.scheduler.requestTick();
  }

  /**
   * A session's gate just opened: a data session's first reading is taken within `firstReadingMs` (its base is the
   * auth's zero, see authStarting, so no tick is needed at once: a burst of purchases does not turn into a burst of
   * ticks), and later ones before it could run out at the peak rate; not one the kernel quota stops, nor a time session
   * (FirstReadingWatch.wantsEarlyReading): the ordinary tick bills the same bytes.
   */
  sessionStarted(mac: string): void {
    const port = this.options.sessions;
    const canonical = mac.toLowerCase();
    const session = port.active(canonical);
    if (session !== undefined && session.metric === 'bytes')
      this.planner.watchRemaining(session, port.remainingBytes(session.id), 0);
    if (this.firsts.wantsEarlyReadingOf(canonical)) this.loop.scheduler.scheduleBy(this.firstReadingMs);
  }

  /**
   * The gatekeeper is about to `auth` this MAC for this session: the counters will start at 0, and the first reading
   * that shows the gate open is billed in full (held until authFinished says the auth was ours).
   */
  authStarting(mac: string, sessionId: string): void {
    this.loop.kernel?.authStarting(mac.toLowerCase());
    this.firsts.starting(mac.toLowerCase(), sessionId);
  }

  /**
   * The outcome of that auth. 'opened': bill the held first reading if a tick already took it, else the next one;
   * read again within `firstReadingMs` if it wants that soon (sessionStarted). 'already-open' (the portal had it open
   * before: its counters predate this session) or 'failed': forget the watch; the ordinary purchase baseline applies.
   */
  authFinished(
    mac: string,
    sessionId: string,
    result: 'opened' | 'already-open' | 'failed',
    ip: string | null = null,
  ): void {
    if (result === 'opened') this.loop.kernel?.opened(mac.toLowerCase(), ip);
    this.loop.kernel?.authEnded(mac.toLowerCase());
    const canonical = mac.toLowerCase();
    if (this.firsts.finished(canonical, sessionId, result) && this.firsts.wantsEarlyReadingOf(canonical))
      this.loop.scheduler.scheduleBy(this.firstReadingMs);
  }

  /** When a paying client was first seen absent from the portal in the current absence, if it is absent. */
  goneSince(mac: string): number | undefined {
    return this.gates.goneSince(mac.toLowerCase());
  }

  /** The last committed reading of every present client (what a usage checkpoint persists). */
  marks(): Map<string, CounterMark> {
    return committedMarks(this.loop.counterTable);
  }

  /**
   * The readings each client's session's bytes left are billed through, taken now, as what its kernel counters counted
   * past them (counted-since.ts) by the readings handed later: the caller pairs them with the sessions' bytes left of
   * this same moment. Null while the meter lists the portal (its readings are not the kernel's).
   */
  sinceBilled(): ((readings: readonly KernelReading[]) => Map<string, number>) | null {
    const marks = this.loop.billedMarks();
    return marks === null ? null : (readings) => countedSince(marks, readings);
  }

  /** The reading a session opened now for `mac` is billed from after a restart (TickLoop.openingMark). */
  openingMark(mac: string): CounterMark {
    return this.loop.openingMark(mac.toLowerCase());
  }

  stats(): MeterStats {
    return {
      ...this.loop.statsRecorder.snapshot(this.loop.view.slotCount),
      final_readings: this.planner.finalReadings,
      kernel_quota_ends: this.brakes.ends,
      kernel_quota_unbilled_ends: this.brakes.auditEnds,
      ...(this.loop.kernel?.on === true && {
        usage_from: 'kernel' as const,
        portal_listings: this.loop.kernel.listings,
        portal_listings_by_reason: { ...this.loop.kernel.listingsBy },
      }),
      ...(this.options.portalDeauths && {
        portal_deauths_watched: this.options.portalDeauths.liveSince !== undefined,
        portal_deauths_reported: this.options.portalDeauths.deauths,
      }),
      kernel_quota_refills: this.brakes.refills,
      kernel_quota_rearms: this.brakes.rearms,
      kernel_quota_splits: this.shared.splits,
      final_read_ms: Math.round(this.planner.readMsMedian() * 10) / 10,
    };
  }

  /** Stops ticking and waits for the tick in flight, then stops the worker threads. */
  async close(): Promise<void> {
    if (this.ctx.state === 'closed' || this.ctx.state === 'closing') return;
    this.ctx.state = 'closing';
    for (const off of this.unfollow.splice(0)) off();
    this.loop.scheduler.stop();
    this.blind.stop();
    this.planner.cancelAll();
    await this.loop.scheduler.settled();
    await this.runner.close();
    this.ctx.state = 'closed';
  }

  /** Stops at once; a tick in flight is abandoned (uncommitted, so nothing is lost for a later meter on this table). */
  async destroy(): Promise<void> {
    this.ctx.state = 'closed';
    for (const off of this.unfollow.splice(0)) off();
    this.loop.scheduler.stop();
    this.blind.stop();
    this.planner.cancelAll();
    await this.runner.destroy();
  }

  /** Runs one tick now (the scheduler uses it; tests and the bench call it directly without start()). */
  tick(): Promise<TickReport> {
    return this.loop.scheduler.tick();
  }

  /**
   * Every portal client's MAC and IP, from a tick dispatched at most `maxAgeMs` ago or the next one (asked for now);
   * null when that tick read no list or none came within `waitMs`: the caller then reads the portal itself.
   */
  clientAddresses(maxAgeMs: number, waitMs: number): Promise<ListedAddress[] | null> {
    if (this.ctx.state !== 'running') return Promise.resolve(null);
    return this.loop.addresses.get(this.ctx.clock.now(), maxAgeMs, waitMs);
  }

  /** The address a tick dispatched at most `maxAgeMs` ago saw for `mac` (only while lookups come); null otherwise. */
  listedIp(mac: string, maxAgeMs: number): string | null {
    return this.loop.addresses.ipOf(mac, this.ctx.clock.now(), maxAgeMs);
  }
}
