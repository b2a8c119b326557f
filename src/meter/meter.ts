/**
 * The usage engine's main-thread half: schedules ticks, hands each to the worker pool (which fetches and scans the
 * snapshot itself), commits the shared table, applies the deltas of paying clients to their sessions, and reports.
 *
 * Billing rules (docs/performance.md, "Baseline"):
 *  - Only paying clients are billed: a delta for a MAC without an ACTIVE session is dropped. Data sessions are
 *    enforced; time sessions get their octets counted too (upstream accounting).
 *  - A delta covers (previous committed tick, this tick]. It is billed only if the previous tick was dispatched at or
 *    after the session's start, so bytes before a purchase are never billed. `sessionStarted(mac)` asks for a tick at
 *    once, so the bytes forgiven after a purchase are one fetch's worth, not one poll interval's.
 *  - The table is committed before the deltas are applied: if applying throws, those bytes are lost rather than ever
 *    counted twice.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import { GATE_OPEN_STATES, STATE_CODES, type PortalFlavour as Flavour } from '../portal/index.ts';
import { createPoolRunner } from './pool.ts';
import type { ExclusivePort, MeteredSession, SessionsPort, Timers, UsageReport, UsageTaskRunner } from './ports.ts';
import { MeterStatsRecorder, type MeterStats } from './stats.ts';
import { committedMarks, createTable, FLAG_PRESENT, seedTable, TableView, type CounterMark, type CounterTable } from './table.ts';
import type { SkipReason, TaskSource, UsageResult, UsageTask } from './task.ts';

export interface MeterOptions {
  /** Where the worker fetches snapshots: `{kind:'command', argv: main.ndsctl}` or `{kind:'socket', path}`. */
  source: TaskSource;
  /** `main.portal`: 'auto' detects the format per snapshot. */
  flavour?: Flavour | 'auto';
  /** `main.poll_interval`. */
  pollIntervalMs: number;
  /** `main.ndsctl_timeout`: bound on one fetch (busy retries included). Default 5000. */
  fetchTimeoutMs?: number;
  /** The most bytes one snapshot may have (`main.portal_output_max`); default 32 MiB (output-bound.ts). */
  maxSnapshotBytes?: number;
  /**
   * Adaptive precision never ticks more often than this, nor more often than twice the last tick's duration (so the
   * meter never spends more than half its time ticking). Default 20 ms.
   */
  minIntervalMs?: number;
  /**
   * A live session whose gate must stay closed for now (escrow credit: Gatekeeper.hold): reported with the open unpaid
   * clients when the portal shows it open, so the tick's enforce closes it again like any gate that did not take.
   */
  gateHeld?: (mac: string) => boolean;
  /** A data session's first reading after its gate opened is taken this soon (no blind first interval). Default 1000. */
  firstReadingMs?: number;
  /**
   * The fastest a client is assumed able to go (bytes/s) until a faster one is seen: a data session is read again no
   * later than its remaining bytes would last at that rate, so a client that was idle at its last reading (or at its
   * first) and then downloads at full speed cannot run far past its allotment unseen. Default 12.5e6 (100 Mbit/s).
   */
  peakRateBytesPerS?: number;
  /**
   * How long a gate takes to close after the reading that ends its session (the reading's share of a fetch, applying
   * it, the deauth until the portal stops the client's traffic). A data session whose remaining bytes would pass in
   * that time at its own rate is ended at that reading, its remainder billed ahead: the bytes that pass while the gate
   * closes fill the allotment instead of running past it. Default: closeOf(the median of the last five fetches).
   */
  closeLatencyMs?: () => number;
  /**
   * One client's reading (`ndsctl json <mac>`, ranked after the deauths, before the snapshots): the final reading of a cut between ticks.
   * Without it that reading is a whole tick. On openNDS a snapshot runs a script per client (get_client_interface.sh)
   * after reading the counters, so one client's reading is fresher and cheaper than a tick's by the number of clients.
   */
  readClient?: (mac: string, onStart: () => void) => Promise<{ downloadBytes: number; uploadBytes: number; state: string } | null>;
  /**
   * The kernel quota (portal/kernel-quota.ts): the kernel itself stops a client with one at its allotment, so its data
   * session is never billed ahead or cut on a prediction: it is read just after its predicted crossing and ended when
   * its quota is used up (billing the few bytes the kernel's last dropped packet left, at most one segment).
   */
  kernelQuota?: KernelQuotaPort;
  sessions: SessionsPort;
  /** The valve: the worker's fetch runs inside runExclusive, so no ndsctl auth overlaps a snapshot. */
  portal?: ExclusivePort;
  /** Pool settings (ignored when `runner` is given). */
  workers?: number;
  workerPath?: string | URL;
  workerExecArgv?: string[];
  runner?: UsageTaskRunner;
  clock?: () => number;
  timers?: Timers;
  /** Initial table capacity (clients); it grows on demand. */
  initialCapacity?: number;
  /**
   * Counter readings persisted with the last usage checkpoint (sessions' meterMark), by MAC: after a restart the meter
   * continues those epochs, so the bytes that passed while sluice was down are billed.
   */
  initialMarks?: ReadonlyArray<readonly [mac: string, mark: CounterMark]>;
  /** A paying client seen unauthenticated is reported for re-opening at most this often. Default 5000. */
  reopenBackoffMs?: number;
  /**
   * Sessions younger than this are not judged gone/closed. Default 0: a session whose gate is being opened is told
   * apart by `authStarting`/`authFinished`, not by age (an age-based grace delayed the gate of a client the portal
   * had not listed yet by that long).
   */
  newSessionGraceMs?: number;
  /** One batch per tick with every billed data session. */
  onUsage?: (batch: UsageReport[]) => void;
  /**
   * The safety net for a portal whose auth takes no limits (nodogsplash): metering has lagged (no reading for two poll
   * intervals) past the moment these data sessions could have used up what they had left (at twice their last rate,
   * or the peak rate): close their gates now. Their sessions stay ACTIVE; once readings resume, the gate is re-opened
   * like any paying client's (onPayingClientNeedsGate). Checked every poll interval while the meter runs.
   */
  onBlindOverdue?: (macs: string[]) => void;
  /** A paying client is back in the portal but not authenticated (portal restart, idle timeout): re-open its gate. */
  onPayingClientNeedsGate?: (mac: string) => void;
  /** After every tick (skipped ones too): the full report, including `gone` for the portal-lost grace period. */
  onTick?: (report: TickReport) => void;
  onError?: (err: SluiceError) => void;
}

export interface TickReport {
  tick: number;
  ok: boolean;
  skipped?: SkipReason;
  message?: string;
  clients: number;
  usage: UsageReport[];
  /** Paying clients present but not authenticated: re-open (same calls as onPayingClientNeedsGate). */
  reopen: string[];
  /** Paying clients absent from the portal (portal-lost grace applies); `goneSince(mac)` says since when. */
  gone: string[];
  /**
   * Clients this snapshot showed with an open gate (Authenticated, AuthBlocked; never Trusted) and no ACTIVE session:
   * the gatekeeper closes them (Gatekeeper.enforce). Empty for a skipped tick.
   */
  openUnpaid: string[];
  /** When the snapshot was asked for (clock ms): a close that ended after this is not judged by it. */
  at: number;
  /** Deltas of clients without an active data session, dropped. */
  dropped: number;
  /** Deltas of sessions whose previous reading predates their start, dropped (the purchase baseline). */
  baselined: number;
  durationMs: number;
  /** Worker: fetching the snapshot, then scanning + accounting it; main thread: applying the result. */
  fetchMs: number;
  scanMs: number;
  applyMs: number;
  /** Delay chosen for the next tick (shorter than poll_interval when a session is about to run out). */
  nextInMs: number;
}

type State = 'idle' | 'running' | 'closing' | 'closed';

interface FirstReading { session: MeteredSession; down: number; up: number; since: number }

/** A data session that could run out within a poll interval at the peak rate. */
interface NearEnd {
  mac: string;
  /** bytes left at its last reading */
  remaining: number;
  /** bytes/ms, smoothed over its readings (RATE_SMOOTHING_MS): one reading 20 ms after another is mostly noise */
  rate: number;
  /** The portal's counters at that reading (the base of a final reading between ticks), and when it was asked for. */
  reading?: { down: number; up: number; at: number };
}

/** Time constant of a near-end session's rate average. */
const RATE_SMOOTHING_MS = 500;

/** What the meter asks of the kernel quota. */
export interface KernelQuotaPort {
  has(mac: string): boolean;
  /** The clients whose quota is used up (their packets are dropped). */
  usedUp(): Promise<ReadonlySet<string>>;
  /** A fresh quota of `limitBytes` from now for a client the kernel stopped short of its allotment. */
  refill?(mac: string, limitBytes: number): Promise<void>;
}

/**
 * A braked session this close to its allotment is checked against the kernel: the kernel drops the packet that would
 * cross its quota, and a router's packets are GRO/GSO segments of up to 64 KiB, so it can stop up to one segment short.
 */
export const KERNEL_SLACK_BYTES = 64 * 1024;
/** A braked session is read this long after its predicted crossing: after the kernel stopped it, not just before. */
const BRAKE_MARGIN_MS = 20;
/**
 * A braked session the kernel stopped with more than this left (the dropped segment was bigger than what was left) is
 * not ended but given a fresh quota of exactly what is left, up to MAX_BRAKE_REFILLS times: TCP resends the lost data
 * in smaller segments, so each stop comes closer. At most this much of an allotment is ever billed without passing.
 */
const BRAKE_REFILL_MIN_BYTES = 4096;
const MAX_BRAKE_REFILLS = 3;

interface BrakeWatch {
  mac: string;
  /** When (clock) the kernel was seen to stop it with more than BRAKE_REFILL_MIN_BYTES left: a refill is due. */
  stoppedAt?: number;
  refills: number;
}

/**
 * A gate that sluice opens with `auth`. Both portals start a client's counters at 0 when they authenticate it
 * (openNDS iptables_fw_authenticate zeroes them and adds fresh counting rules; nodogsplash counts only through the
 * rules auth adds, on counters client_reset zeroed at deauth or creation), so the first reading that shows the gate
 * open is entirely usage of this session: it is billed in full, whatever the meter saw (or did not see) before.
 */
interface AuthWatch {
  sessionId: string;
  /** 'expected': the auth is in flight (a reading taken now is held until its outcome is known); 'opened': it worked. */
  state: 'expected' | 'opened';
  /** When the auth was started: the epoch's bytes accumulated since then (the first rate estimate). */
  at: number;
  /** The epoch's first reading, taken while the auth's outcome was unknown. */
  held?: { down: number; up: number; at: number };
  /** Tick that consumed this watch's reading (the normal billing skips that slot in that tick). */
  tick?: number;
}

const OPEN_STATES: ReadonlySet<number> = new Set(GATE_OPEN_STATES.map((name) => STATE_CODES[name]));

/** Present in the previous reading, in a state whose traffic the portal does not let through (and does not count). */
function gateWasClosed(previousFlags: number): boolean {
  return previousFlags >= 0 && (previousFlags & FLAG_PRESENT) !== 0 && !OPEN_STATES.has(previousFlags >> 1);
}

/**
 * The main thread's share of a tick is split into slices of this many clients, and it gives the event loop a turn
 * (setImmediate: I/O such as a ubus call runs in between) whenever a slice ends more than SLICE_BUDGET_MS after the
 * last turn: a ubus call waits about a millisecond, not for a whole 100k-client tick, on a fast or a slow router alike.
 */
const SLICE = 256;
const SLICE_BUDGET_MS = 1;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Yields when the current turn has run past the budget. */
class TurnBudget {
  private since = performance.now();
  async pause(): Promise<void> {
    if (performance.now() - this.since < SLICE_BUDGET_MS) return;
    await yieldToEventLoop();
    this.since = performance.now();
  }
}

/**
 * How long a gate takes to close after a reading that took `readMs`: the reading's age when it is decided on (both
 * portals sample their counters early in the call: openNDS runs `iptables -L` first, then a script per client) plus
 * the deauth until the portal stops the client (its first `iptables` calls). Fitted in the openNDS lab: what passed
 * after the reading was 1.0–1.2 × the fetch (44–60 ms after fetches of 43–60 ms, one client at 8 Mbit/s); the earlier
 * 1.5 × the last fetch cut early by up to 62 KiB after one slow fetch.
 */
function closeOf(readMs: number): number {
  return 1.1 * readMs + 5;
}

/**
 * The median of the last few durations (ms), computed when one is added: it is read for every data session of every
 * tick (the close latency), so reading it costs nothing.
 */
class RecentTimes {
  private readonly times: number[] = [];
  private current = NaN;
  constructor(private readonly size: number) {}
  add(ms: number): void {
    this.times.push(ms);
    if (this.times.length > this.size) this.times.shift();
    const sorted = [...this.times].sort((a, b) => a - b);
    this.current = sorted[sorted.length >> 1]!;
  }
  median(fallback: number): number {
    return this.times.length === 0 ? fallback : this.current;
  }
}

export class Meter {
  private state: State = 'idle';
  private readonly runner: UsageTaskRunner;
  private readonly clock: () => number;
  private readonly timers: Timers;
  private readonly fetchTimeoutMs: number;
  private readonly minIntervalMs: number;
  private readonly reopenBackoffMs: number;
  private readonly graceMs: number;
  private readonly firstReadingMs: number;
  /** bytes/ms: the assumed or highest seen rate of one client (peakRateBytesPerS) */
  private peakRate: number;
  /**
   * Data sessions that could run out within a poll interval at the peak rate, by session id: bytes left at their last
   * reading. Each tick is scheduled no later than the earliest of these would run out at the peak rate.
   */
  private readonly nearEnd = new Map<string, NearEnd>();
  /** Cuts scheduled between ticks (session id → timer): see scheduleCut. */
  private readonly cuts = new Map<string, unknown>();
  /** One client's reading (readClient): its time, averaged, and how many were taken. */
  private readonly readTimes = new RecentTimes(5);
  private finalReadings = 0;
  /** Final readings under way, and the timed ends due (clock ms): a tick's fetch waits for both (waitForCuts). */
  private readonly finalReadsInFlight = new Set<Promise<void>>();
  private readonly timedEnds = new Map<string, number>();
  /** Braked data sessions within KERNEL_SLACK_BYTES of their allotment, by id: ended once the kernel says their quota is used. */
  private readonly brakeWatch = new Map<string, BrakeWatch>();
  private brakeEnds = 0;
  private brakeRefills = 0;
  /** Sessions the safety net reported since the last committed tick (reported once each). */
  private readonly blindClosed = new Set<string>();
  private blindTimer: unknown;
  private readonly authWatch = new Map<string, AuthWatch>();
  private readonly observers = new Set<(report: TickReport) => void>();
  /** When the scheduled tick fires (clock ms), for scheduleBy(). */
  private dueAt = Infinity;
  private lastDurationMs = 0;
  private table: CounterTable;
  private view: TableView;
  private readonly fetchSignal = new SharedArrayBuffer(4);
  private readonly slotMacs: string[] = [];
  private readonly macToSlot = new Map<string, number>();
  private readonly goneAt = new Map<string, number>();
  private readonly reopenedAt = new Map<string, number>();
  private readonly statsRecorder = new MeterStatsRecorder();
  private seq = 0;
  private lastCommittedDispatchAt: number | undefined;
  /**
   * The committed readings are restored marks (initialMarks), taken at some checkpoint before a restart, not at
   * lastCommittedDispatchAt: the next tick's deltas bill normally but say nothing about rates.
   */
  private restoredReadings = false;
  private timer: unknown;
  private running: Promise<TickReport> | undefined;
  private again = false;
  /** A tick asked for (scheduleBy) while one ran: the next one starts no later than this (clock ms). */
  private nextBy = Infinity;
  private lastFetchMs = 0;
  /** The last few fetches' times: the close latency follows their median, not one slow fetch. */
  private readonly fetchTimes = new RecentTimes(5);
  /** One slice's billed clients, reused every slice (see apply). */
  private readonly batch = {
    sessions: new Array<MeteredSession | undefined>(SLICE),
    ids: new Array<string>(SLICE).fill(''),
    k: new Int32Array(SLICE),
    bytes: new Float64Array(SLICE),
    remaining: new Float64Array(SLICE),
  };

  constructor(private readonly options: MeterOptions) {
    this.runner = options.runner ?? createPoolRunner({
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      ...(options.workerPath === undefined ? {} : { workerPath: options.workerPath }),
      ...(options.workerExecArgv === undefined ? {} : { execArgv: options.workerExecArgv }),
    });
    this.clock = options.clock ?? Date.now;
    this.timers = options.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 5000;
    this.minIntervalMs = options.minIntervalMs ?? 20;
    this.firstReadingMs = options.firstReadingMs ?? 1000;
    this.peakRate = (options.peakRateBytesPerS ?? 12.5e6) / 1000;
    this.reopenBackoffMs = options.reopenBackoffMs ?? 5000;
    this.graceMs = options.newSessionGraceMs ?? 0;
    const marks = options.initialMarks ?? [];
    if (marks.length > 0) {
      // Tick 1 is the restored readings, committed as of now: every later delta is billable to sessions started before.
      this.table = seedTable(marks, options.initialCapacity ?? 1024, 1);
      this.seq = 1;
      this.lastCommittedDispatchAt = this.clock();
      this.restoredReadings = true;
    } else {
      this.table = createTable(options.initialCapacity ?? 1024);
    }
    this.view = new TableView(this.table);
  }

  /** Starts ticking: the first tick runs at once. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.schedule(0);
    if (this.options.onBlindOverdue !== undefined) this.armBlindWatch();
  }

  /**
   * The safety net's check (run every poll interval once started; tests call it directly): the data sessions whose
   * gates must close because metering lags. Each is returned once until a tick commits again.
   */
  checkBlind(): string[] {
    const since = this.lastCommittedDispatchAt;
    if (since === undefined) return [];
    const blindMs = this.clock() - since;
    if (blindMs < 2 * this.options.pollIntervalMs) return [];
    const port = this.options.sessions;
    const out: string[] = [];
    for (const session of port.activeSessions()) {
      // A braked session is stopped by the kernel at its allotment whether metering lags or not.
      if (session.metric !== 'bytes' || this.blindClosed.has(session.id) || this.braked(session.mac)) continue;
      const near = this.nearEnd.get(session.id);
      const remaining = near?.remaining ?? port.remainingBytes(session.id);
      const rate = near !== undefined && near.rate > 0 ? 2 * near.rate : this.peakRate;
      if (remaining / rate > blindMs) continue;
      this.blindClosed.add(session.id);
      out.push(session.mac);
    }
    return out;
  }

  private armBlindWatch(): void {
    this.blindTimer = this.timers.setTimeout(() => {
      if (this.state !== 'running') return;
      const macs = this.checkBlind();
      if (macs.length > 0) this.options.onBlindOverdue?.(macs);
      this.armBlindWatch();
    }, this.options.pollIntervalMs);
  }

  /** Ticks as soon as possible (after the tick in flight, if any). */
  requestTick(): void {
    if (this.state !== 'running') return;
    if (this.running) { this.again = true; return; }
    this.schedule(0);
  }

  /**
   * A session's gate just opened: its first reading is taken within `firstReadingMs` (its base is the auth's zero, see
   * authStarting, so no tick is needed at once: a burst of purchases does not turn into a burst of ticks), and later
   * ones before it could run out at the peak rate.
   */
  sessionStarted(mac: string): void {
    const session = this.options.sessions.active(mac.toLowerCase());
    if (session !== undefined && session.metric === 'bytes') this.watchRemaining(session, this.options.sessions.remainingBytes(session.id), 0);
    this.scheduleBy(this.firstReadingMs);
  }

  /**
   * The gatekeeper is about to `auth` this MAC for this session: the counters will start at 0, and the first reading
   * that shows the gate open is billed in full (held until authFinished says the auth was ours).
   */
  authStarting(mac: string, sessionId: string): void {
    this.authWatch.set(mac.toLowerCase(), { sessionId, state: 'expected', at: this.clock() });
  }

  /**
   * The outcome of that auth. 'opened': bill the held first reading if a tick already took it, else the next one;
   * read again within `firstReadingMs`. 'already-open' (the portal had it open before: its counters predate this
   * session) or 'failed': forget the watch; the ordinary purchase baseline applies.
   */
  authFinished(mac: string, sessionId: string, result: 'opened' | 'already-open' | 'failed'): void {
    const key = mac.toLowerCase();
    const watch = this.authWatch.get(key);
    if (watch === undefined || watch.sessionId !== sessionId) return;
    if (result !== 'opened') {
      this.authWatch.delete(key);
      return;
    }
    watch.state = 'opened';
    const opened = this.options.sessions.active(key);
    if (opened !== undefined && opened.id === sessionId && opened.metric === 'bytes') {
      this.watchRemaining(opened, this.options.sessions.remainingBytes(sessionId), 0);
    }
    if (watch.held !== undefined) {
      this.authWatch.delete(key);
      const session = this.options.sessions.active(key);
      if (session !== undefined && session.id === sessionId) this.billFirstReadings([{ session, ...watch.held, since: watch.at }], watch.held.at);
    }
    this.scheduleBy(this.firstReadingMs);
  }

  /** Also told of every tick's report (after onTick); returns the unsubscribe (the demo's tick figures). */
  observe(fn: (report: TickReport) => void): () => void {
    this.observers.add(fn);
    return () => { this.observers.delete(fn); };
  }

  /** When a paying client was first seen absent from the portal in the current absence, if it is absent. */
  goneSince(mac: string): number | undefined {
    return this.goneAt.get(mac.toLowerCase());
  }

  /** The last committed reading of every present client (what a usage checkpoint persists). */
  marks(): Map<string, CounterMark> {
    return committedMarks(this.table);
  }

  stats(): MeterStats {
    return { ...this.statsRecorder.snapshot(this.view.slotCount), final_readings: this.finalReadings, kernel_quota_ends: this.brakeEnds, kernel_quota_refills: this.brakeRefills, final_read_ms: Math.round(this.readTimes.median(0) * 10) / 10 };
  }

  /** Stops ticking and waits for the tick in flight, then stops the worker threads. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.timers.clearTimeout(this.timer);
    this.timers.clearTimeout(this.blindTimer);
    for (const id of [...this.cuts.keys()]) this.cancelCut(id);
    await this.running?.catch(() => undefined);
    await this.runner.close();
    this.state = 'closed';
  }

  /** Stops at once; a tick in flight is abandoned (uncommitted, so nothing is lost for a later meter on this table). */
  async destroy(): Promise<void> {
    this.state = 'closed';
    this.timers.clearTimeout(this.timer);
    this.timers.clearTimeout(this.blindTimer);
    for (const id of [...this.cuts.keys()]) this.cancelCut(id);
    await this.runner.destroy();
  }

  /** Runs one tick now (the scheduler uses it; tests and the bench call it directly without start()). */
  tick(): Promise<TickReport> {
    if (this.running) return this.running.then(() => this.tick());
    const run = this.runTick().finally(() => { this.running = undefined; });
    this.running = run;
    return run;
  }

  /**
   * Makes sure a tick starts within `delayMs` (sooner if one is due sooner); when a tick is running, the one after it
   * is brought forward instead.
   */
  private scheduleBy(delayMs: number): void {
    if (this.state !== 'running') return;
    const at = this.clock() + delayMs;
    if (this.running) {
      this.nextBy = Math.min(this.nextBy, at);
      return;
    }
    if (at < this.dueAt) this.schedule(delayMs);
  }

  private schedule(delayMs: number): void {
    this.timers.clearTimeout(this.timer);
    this.dueAt = this.clock() + delayMs;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.dueAt = Infinity;
      void this.tick().then((report) => {
        if (this.state !== 'running') return;
        const by = this.nextBy - this.clock();
        this.nextBy = Infinity;
        if (this.again) { this.again = false; this.schedule(0); }
        else this.schedule(Math.max(0, Math.min(report.nextInMs, by)));
      }, (err: unknown) => {
        // A tick that throws must not end metering: report it and poll again.
        this.options.onError?.(new SluiceError('ERR_METER_WORKER', `tick failed: ${toSluiceError(err).message}`, { cause: err }));
        if (this.state === 'running') this.schedule(this.options.pollIntervalMs);
      });
    }, delayMs);
  }

  private async runTick(): Promise<TickReport> {
    const tick = ++this.seq;
    const started = performance.now();
    const task: UsageTask = {
      tick,
      table: this.table,
      source: this.options.source,
      flavour: this.options.flavour ?? 'auto',
      timeoutMs: this.fetchTimeoutMs,
      ...(this.options.maxSnapshotBytes === undefined ? {} : { maxBytes: this.options.maxSnapshotBytes }),
      fetchSignal: this.fetchSignal,
    };
    let dispatchAt = this.clock();
    let result: UsageResult;
    try {
      result = await this.dispatch(task, (at) => { dispatchAt = at; });
    } catch (err) {
      const error = toSluiceError(err, 'ERR_METER_WORKER');
      this.options.onError?.(new SluiceError('ERR_METER_WORKER', `usage worker failed: ${error.message}`, { cause: err }));
      result = { tick, ok: false, problem: 'worker-error', message: error.message, fetchMs: performance.now() - started };
    }
    const applyStarted = performance.now();
    const report = result.ok ? await this.apply(result, dispatchAt) : this.skip(result);
    report.applyMs = performance.now() - applyStarted;
    report.durationMs = performance.now() - started;
    if (result.ok) this.lastDurationMs = report.durationMs;
    this.statsRecorder.recordTick(report, this.clock(), result.ok ? result : undefined);
    this.options.onTick?.(report);
    for (const observer of this.observers) observer(report);
    return report;
  }

  /** Runs the task; with a portal queue, holds it only until the worker reports the fetch finished. */
  private async dispatch(task: UsageTask, onDispatch: (at: number) => void): Promise<UsageResult> {
    const portal = this.options.portal;
    if (portal === undefined || task.source.kind === 'inline') {
      onDispatch(this.clock());
      return this.runner.run(task);
    }
    await this.waitForCuts();
    let result: Promise<UsageResult> | undefined;
    await portal.runExclusive(async () => {
      const cell = new Int32Array(this.fetchSignal);
      Atomics.store(cell, 0, 0);
      onDispatch(this.clock());
      result = this.runner.run(task);
      const settled = result.then(() => undefined, () => undefined);
      const waiter = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: unknown } })
        .waitAsync(cell, 0, 0, this.fetchTimeoutMs * 2);
      await Promise.race([settled, waiter.async ? waiter.value : undefined]);
    });
    return result!;
  }

  /**
   * A snapshot holds the portal for a whole fetch, and a deauth queued behind one waits for it (the portal takes one
   * call at a time): seen in the openNDS lab, a cut's deauth took 258 ms instead of 121, and 96 KiB more passed. So a
   * tick is not dispatched while a final reading is under way (its deauth, if it ends the session, is queued by the
   * time the reading's promise settles) nor when a timed end is due before its fetch would be over.
   */
  private async waitForCuts(): Promise<void> {
    // Never longer than one fetch may take: a reading that hangs must not stop metering.
    const deadline = this.clock() + this.fetchTimeoutMs;
    for (let round = 0; round < 4 && this.clock() < deadline; round++) {
      if (this.finalReadsInFlight.size > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.allSettled([...this.finalReadsInFlight]),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, deadline - this.clock())); }),
        ]);
        clearTimeout(timer);
        continue;
      }
      let due = Infinity;
      for (const at of this.timedEnds.values()) due = Math.min(due, at);
      const waitMs = due - this.clock();
      if (!(waitMs >= 0 && waitMs < this.lastFetchMs)) return;
      // A real timer: at most one fetch's time, and it must pass even where the meter's own timers are a test's.
      await new Promise<void>((resolve) => setTimeout(resolve, waitMs + 1));
    }
  }

  private skip(result: Extract<UsageResult, { ok: false }>): TickReport {
    return {
      tick: result.tick, ok: false, skipped: result.problem, message: result.message, clients: 0, usage: [], reopen: [], gone: [], openUnpaid: [], at: 0,
      dropped: 0, baselined: 0, durationMs: 0, fetchMs: result.fetchMs, scanMs: 0, applyMs: 0, nextInMs: this.options.pollIntervalMs,
    };
  }

  private async apply(result: Extract<UsageResult, { ok: true }>, dispatchAt: number): Promise<TickReport> {
    if (result.table) {
      this.table = result.table;
      this.view = new TableView(result.table);
    }
    this.syncSlots();
    this.view.commit(result.tick);
    this.blindClosed.clear();
    const since = this.lastCommittedDispatchAt;
    this.lastCommittedDispatchAt = dispatchAt;
    this.lastFetchMs = result.fetchMs;
    this.fetchTimes.add(result.fetchMs);

    const port = this.options.sessions;
    const batch = this.batch;
    let dropped = 0;
    let baselined = 0;
    const usage: UsageReport[] = [];
    let nextInMs = this.options.pollIntervalMs;
    // No rate from restored readings: the bytes since the checkpoint over the ms since the restart would be a rate
    // many times too high, and bill a remainder ahead that never passed.
    const elapsed = since === undefined || this.restoredReadings ? 0 : dispatchAt - since;
    this.restoredReadings = false;
    const deltas = result.deltas;
    const firsts = this.authWatch.size > 0 ? this.settleAuthWatch(result.tick, dispatchAt) : [];
    /** Reports of data sessions whose remainder passes while their gate closes: billed ahead below. */
    const ahead: UsageReport[] = [];
    // One slice at a time: look the sessions up, bill, apply, report, then give the event loop a turn. A slice
    // allocates nothing per client besides its UsageReport (the batch buffers are reused).
    const turn = new TurnBudget();
    for (let start = 0; start < result.count; start += SLICE) {
      if (start > 0) await turn.pause();
      const end = Math.min(result.count, start + SLICE);
      let n = 0;
      for (let k = start; k < end; k++) {
        const slot = deltas[k * 3]!;
        const session = port.active(this.slotMacs[slot]!);
        if (session === undefined) { dropped++; continue; }
        // This reading opened the epoch of a gate sluice authed: billed in full by billFirstReadings, not here.
        if (firsts.length > 0 && this.authWatch.get(session.mac)?.tick === result.tick) continue;
        // The previous reading predates the purchase: its counters may hold bytes used before it, which are never
        // billed, unless the gate was closed then (a portal only counts authenticated clients, and the auth that
        // opened it came later, for this session): then every byte of the delta was bought.
        if ((since === undefined || since < session.startedAt) && !gateWasClosed(this.view.previousFlags(slot))) {
          baselined++;
          continue;
        }
        batch.sessions[n] = session;
        batch.ids[n] = session.id;
        batch.k[n] = k;
        batch.bytes[n] = deltas[k * 3 + 1]! + deltas[k * 3 + 2]!;
        n++;
      }
      if (n === 0) continue;
      this.applySlice(port, n);
      for (let b = 0; b < n; b++) {
        const session = batch.sessions[b]!;
        const k = batch.k[b]!;
        const bytes = batch.bytes[b]!;
        const remainingBytes = session.metric === 'bytes' ? batch.remaining[b]! : Infinity;
        const report: UsageReport = {
          mac: session.mac, sessionId: session.id, slot: session.slot ?? -1, metric: session.metric, deltaBytes: bytes,
          deltaDownloadBytes: deltas[k * 3 + 1]!, deltaUploadBytes: deltas[k * 3 + 2]!,
          remainingBytes, exhausted: session.metric === 'bytes' && remainingBytes <= 0,
        };
        usage.push(report);
        if (session.metric === 'bytes') {
          const before = this.nearEnd.get(session.id)?.rate ?? 0;
          const rate = this.smoothedRate(session.id, bytes, elapsed);
          const now = elapsed > 0 ? bytes / elapsed : 0;
          // Billing ahead errs on the late side: only a flow the previous reading saw too (one burst, then nothing, is
          // not a rate to predict from), at the lowest of its rates (a client that just slowed down is not cut
          // early). The next reading errs on the early side (the higher).
          const cutRate = before > 0 ? Math.min(rate, now, before) : 0;
          this.cancelCut(session.id);
          if (this.braked(session.mac)) {
            // This interval's own rate: a reading too early only costs another, one too late only delays the end.
            nextInMs = Math.min(nextInMs, this.brakedCrossingInMs(session, remainingBytes, now > 0 ? now : rate));
          }
          else if (remainingBytes > 0 && this.endsWhileClosing(remainingBytes, cutRate)) {
            report.cutRate = cutRate;
            report.cutCloseMs = this.closeLatencyMs();
            ahead.push(report);
          }
          else if (remainingBytes > 0) {
            nextInMs = Math.min(nextInMs, this.crossingInMs(remainingBytes, Math.max(rate, now)));
            this.maybeScheduleCut(session, remainingBytes, this.options.readClient !== undefined ? Math.max(rate, now) : cutRate);
          }
          this.watchRemaining(session, remainingBytes, rate);
          const watched = this.nearEnd.get(session.id);
          if (watched !== undefined) {
            const [down, up] = this.view.readingParts(deltas[k * 3]!);
            watched.reading = { down, up, at: dispatchAt };
          }
        }
      }
      batch.sessions.fill(undefined, 0, n);
    }
    if (ahead.length > 0) this.billAhead(port, ahead);
    if (usage.length > 0) this.options.onUsage?.(usage);
    if (this.brakeWatch.size > 0) nextInMs = Math.min(nextInMs, await this.checkBrakes(dispatchAt));
    for (const w of firsts) this.authWatch.delete(w.session.mac);
    if (firsts.length > 0) nextInMs = Math.min(nextInMs, this.billFirstReadings(firsts, dispatchAt));
    // A session that just opened and has shown no traffic yet: read it again soon, not a whole poll interval later.
    if (this.authWatch.size > 0) nextInMs = Math.min(nextInMs, this.firstReadingMs);
    nextInMs = Math.min(nextInMs, this.peakCrossingInMs());
    nextInMs = Math.min(this.options.pollIntervalMs, Math.max(this.minIntervalMs, 2 * this.lastDurationMs, nextInMs));

    const { reopen, gone } = await this.checkGates(port.activeSessions(), result.tick, dispatchAt);
    for (const mac of reopen) this.options.onPayingClientNeedsGate?.(mac);
    const openUnpaid = await this.openUnpaid(result.tick);
    return {
      tick: result.tick, ok: true, clients: result.clients, usage, reopen, gone, openUnpaid, at: dispatchAt, dropped, baselined,
      durationMs: 0, fetchMs: result.fetchMs, scanMs: result.scanMs, applyMs: 0, nextInMs,
    };
  }

  private braked(mac: string): boolean {
    return this.options.kernelQuota?.has(mac) === true;
  }

  /**
   * A braked session's next reading: just after its crossing at this rate, when the kernel has stopped it (a reading
   * before only re-aims). Within KERNEL_SLACK_BYTES it is watched: every tick asks the kernel whether it stopped it.
   */
  private brakedCrossingInMs(session: MeteredSession, remainingBytes: number, rate: number): number {
    if (!(remainingBytes > 0)) return Infinity;
    if (remainingBytes <= KERNEL_SLACK_BYTES && !this.brakeWatch.has(session.id)) this.brakeWatch.set(session.id, { mac: session.mac, refills: 0 });
    return rate > 0 ? remainingBytes / rate + BRAKE_MARGIN_MS : Infinity;
  }

  /**
   * The watched braked sessions whose kernel quota is used up: the kernel drops their packets, so what the portal
   * counted is all that passed. One with at most BRAKE_REFILL_MIN_BYTES left ends (those bytes billed: the allotment is
   * spent for all the client can send). One with more left (the kernel dropped a segment bigger than the rest) waits
   * for a reading taken after the stop, which is final, and gets a fresh quota of exactly what that reading leaves.
   * A session a top-up took out of reach, or ended, leaves the watch. Returns when the next tick is wanted (ms).
   */
  private async checkBrakes(dispatchAt: number): Promise<number> {
    const port = this.options.sessions;
    const kernel = this.options.kernelQuota!;
    const leftOf = (id: string, mac: string): number => (port.active(mac)?.id === id ? port.remainingBytes(id) : 0);
    for (const [id, w] of this.brakeWatch) {
      const left = leftOf(id, w.mac);
      if (!(left > 0) || left > KERNEL_SLACK_BYTES || !this.braked(w.mac)) this.brakeWatch.delete(id);
    }
    // Stopped before this tick's reading was taken: that reading is the last that passed.
    for (const [id, w] of [...this.brakeWatch]) {
      if (w.stoppedAt === undefined || w.stoppedAt > dispatchAt) continue;
      delete w.stoppedAt;
      if (kernel.refill !== undefined && w.refills < MAX_BRAKE_REFILLS) {
        w.refills++;
        this.brakeRefills++;
        await kernel.refill(w.mac, leftOf(id, w.mac));
      } else {
        this.endBraked(id, w.mac);
      }
    }
    const waiting = (): number => [...this.brakeWatch.values()].filter((w) => w.stoppedAt !== undefined).length;
    if (this.brakeWatch.size === 0 || waiting() === this.brakeWatch.size) return waiting() > 0 ? 0 : Infinity;
    const usedUp = await kernel.usedUp();
    if (this.state === 'closing' || this.state === 'closed') return Infinity;
    for (const [id, w] of [...this.brakeWatch]) {
      if (!usedUp.has(w.mac) || w.stoppedAt !== undefined) continue;
      const left = leftOf(id, w.mac);
      if (!(left > 0)) continue;
      if (left <= BRAKE_REFILL_MIN_BYTES || kernel.refill === undefined) this.endBraked(id, w.mac);
      else w.stoppedAt = this.clock();
    }
    return waiting() > 0 ? 0 : Infinity;
  }

  private endBraked(id: string, mac: string): void {
    this.brakeWatch.delete(id);
    this.brakeEnds++;
    this.endAhead(id, mac, 0, 0, 'kernel');
  }

  /**
   * Cut at the crossing: at this rate (bytes over elapsed ms), when must the reading that ends the session be taken?
   * The crossing less the close latency (its remainder then passes while the gate closes and is billed ahead:
   * endsWhileClosing), less half a fetch (the portal reads its counters mid-fetch). A tick aimed at the crossing itself
   * let the whole close run past the allotment (seen in the openNDS lab: 129 KiB unbilled with 1 KiB left at the
   * reading).
   */
  private crossingInMs(remainingBytes: number, rate: number): number {
    if (rate <= 0) return Infinity;
    return remainingBytes / rate - this.closeLatencyMs() - this.lastFetchMs / 2;
  }

  /** This reading's rate (bytes/ms), averaged with the session's earlier ones if it is near its end. */
  private smoothedRate(sessionId: string, bytes: number, elapsedMs: number): number {
    const now = elapsedMs > 0 ? bytes / elapsedMs : 0;
    const before = this.nearEnd.get(sessionId);
    // rate 0: none known yet (a gate just opened); an idle client has no delta and never comes here.
    if (before === undefined || before.rate <= 0 || elapsedMs <= 0) return now;
    const weight = elapsedMs / (elapsedMs + RATE_SMOOTHING_MS);
    return weight * now + (1 - weight) * before.rate;
  }

  /**
   * A data session whose remaining bytes pass, at its rate in this tick, within the time its gate takes to close:
   * ending it at the next reading instead would let that reading's lateness plus the close run past the allotment.
   */
  private endsWhileClosing(remainingBytes: number, rate: number): boolean {
    return rate > 0 && remainingBytes <= rate * this.closeLatencyMs();
  }

  private closeLatencyMs(): number {
    return this.options.closeLatencyMs?.() ?? closeOf(this.fetchTimes.median(this.lastFetchMs));
  }

  /**
   * Cut at the crossing, between ticks: when the next reading cannot come before the moment to start closing the gate
   * (the crossing less the close latency), a final reading is scheduled for that moment less a fetch, instead of
   * waiting for a tick that would already be past it; that reading bills what passed and ends the session with its
   * remainder billed ahead (endsWhileClosing), so only the close itself is predicted. A reading before then re-decides
   * (cancelCut).
   */
  private maybeScheduleCut(session: MeteredSession, remainingBytes: number, rate: number): void {
    if (rate <= 0) return;
    // With one client's reading, it is the one to time: asked for a close and a read before the crossing, and at the
    // higher rate (a read that comes early only re-decides; one that comes late is an overshoot).
    const cutInMs = this.options.readClient !== undefined
      ? remainingBytes / rate - 2.5 * this.finalReadMs()
      : remainingBytes / rate - this.closeLatencyMs() - this.lastFetchMs;
    const soonestReadingMs = Math.max(this.minIntervalMs, 2 * this.lastDurationMs) + this.lastFetchMs / 2;
    if (cutInMs >= soonestReadingMs) return;
    const { id, mac } = session;
    this.cuts.set(id, this.timers.setTimeout(() => this.cutNow(id, mac), Math.max(0, cutInMs)));
  }

  private cancelCut(sessionId: string): void {
    if (this.cuts.size === 0) return;
    this.timedEnds.delete(sessionId);
    const handle = this.cuts.get(sessionId);
    if (handle === undefined) return;
    this.timers.clearTimeout(handle);
    this.cuts.delete(sessionId);
  }

  /**
   * A scheduled cut is due: take the final reading now (one client's reading where the portal port gives one, else a
   * tick at once, not bound by the adaptive minimum).
   */
  private cutNow(sessionId: string, mac: string): void {
    this.cuts.delete(sessionId);
    if (this.options.sessions.active(mac)?.id !== sessionId) return;
    if (this.options.readClient !== undefined && this.nearEnd.get(sessionId)?.reading !== undefined) {
      const reading: Promise<void> = this.finalReading(sessionId, mac)
        .catch((err: unknown) => { this.options.onError?.(new SluiceError('ERR_METER_APPLY', `final reading failed: ${toSluiceError(err).message}`, { cause: err })); })
        .finally(() => this.finalReadsInFlight.delete(reading));
      this.finalReadsInFlight.add(reading);
    } else this.requestTick();
  }

  /** How long one client's reading takes (ms, averaged); the last tick's fetch until one was timed. */
  private finalReadMs(): number {
    return this.readTimes.median(Math.max(this.fetchTimes.median(this.lastFetchMs), 1));
  }

  /**
   * The final reading of a cut between ticks: one client's counters against its last tick's reading. Its remainder
   * passes within the close (closeOf a reading's time: the reading's age when it is decided on, and the deauth until the
   * portal stops the client) → the session ends now, the remainder billed ahead. Otherwise the end is timed: another
   * reading while one can still come in time, or, when the moment to close is nearer than two readings take, a timer
   * that ends it at that moment without one (a short horizon, so a change of rate moves little). Every branch that
   * cannot judge (a tick read it meanwhile, a new counter epoch, the client gone or closed, the read failed) leaves it
   * to the ticks.
   */
  private async finalReading(sessionId: string, mac: string): Promise<void> {
    const port = this.options.sessions;
    const base = this.nearEnd.get(sessionId)?.reading;
    if (base === undefined) return;
    // Timed from when the portal takes the call, not from the queue: a reading that waited behind a snapshot is not slow.
    let askedAt = this.clock();
    let started = performance.now();
    let client: Awaited<ReturnType<NonNullable<MeterOptions['readClient']>>>;
    try {
      client = await this.options.readClient!(mac, () => { askedAt = this.clock(); started = performance.now(); });
    } catch {
      this.requestTick();
      return;
    }
    const readMs = performance.now() - started;
    this.readTimes.add(readMs);
    this.finalReadings++;
    if (this.state === 'closing' || this.state === 'closed') return;
    if (port.active(mac)?.id !== sessionId || this.nearEnd.get(sessionId)?.reading !== base || this.cuts.has(sessionId)) return;
    if (client === null || !(GATE_OPEN_STATES as readonly string[]).includes(client.state)) { this.requestTick(); return; }
    const down = client.downloadBytes - base.down;
    const up = client.uploadBytes - base.up;
    if (down < 0 || up < 0) { this.requestTick(); return; }
    const read = down + up;
    const elapsed = askedAt - base.at;
    const rate = elapsed > 0 ? read / elapsed : 0;
    if (rate <= 0) return; // idle since the tick's reading: the ticks go on watching it
    const remaining = port.remainingBytes(sessionId) - read;
    const closeMs = closeOf(this.finalReadMs());
    if (remaining <= rate * closeMs) { this.endAhead(sessionId, mac, down, up, { rate, closeMs }); return; }
    // From now: the moment the deauth must go out (the crossing less the deauth's share of the close).
    const endInMs = askedAt + remaining / rate - (closeMs - this.finalReadMs()) - this.clock();
    const reading = this.finalReadMs();
    if (endInMs < 2 * reading) {
      const dueAt = this.clock() + Math.max(0, endInMs);
      this.timedEnds.set(sessionId, dueAt);
      this.cuts.set(sessionId, this.timers.setTimeout(() => {
        this.cuts.delete(sessionId);
        this.timedEnds.delete(sessionId);
        this.endAhead(sessionId, mac, down, up, { rate, closeMs });
      }, Math.max(0, endInMs)));
    } else {
      this.cuts.set(sessionId, this.timers.setTimeout(() => this.cutNow(sessionId, mac), endInMs - 1.5 * reading));
    }
  }

  /**
   * Ends a data session between ticks, at its allotment: `read` bytes seen by a final reading and the rest billed ahead
   * (or all of it, for a timed end). Its next readings are dropped like any client's without a session.
   */
  /** `cut`: the rate (bytes/ms) and close latency a reading's decision used, or 'kernel' when the kernel quota stopped it. */
  private endAhead(sessionId: string, mac: string, readDown: number, readUp: number, cut: { rate: number; closeMs: number } | 'kernel'): void {
    const port = this.options.sessions;
    const session = port.active(mac);
    if (session?.id !== sessionId) return;
    const remaining = port.remainingBytes(sessionId);
    if (!(remaining > 0)) return;
    const read = readDown + readUp;
    const bill = Math.max(remaining, read);
    try {
      if (port.applyUsageBatch !== undefined) port.applyUsageBatch([sessionId], Float64Array.of(bill), 1, new Float64Array(1));
      else port.applyUsage([[mac, bill]]);
    } catch (err) {
      this.options.onError?.(new SluiceError('ERR_METER_APPLY', 'applying usage to sessions failed', { cause: err }));
      return;
    }
    this.nearEnd.delete(sessionId);
    this.options.onUsage?.([{
      mac, sessionId, slot: session.slot ?? -1, metric: 'bytes', deltaBytes: bill, deltaDownloadBytes: bill - readUp,
      deltaUploadBytes: readUp, remainingBytes: 0, exhausted: true, billedAheadBytes: bill - read,
      ...(cut === 'kernel' ? { stoppedByKernel: true } : { cutRate: cut.rate, cutCloseMs: cut.closeMs }),
    }]);
  }

  /**
   * Ends those sessions now, billing their remainder (the bytes that will pass while the gate closes; the next
   * readings of that client are dropped, as for any client without a session, so nothing is billed twice).
   */
  private billAhead(port: SessionsPort, reports: UsageReport[]): void {
    const ids = reports.map((r) => r.sessionId);
    const bytes = Float64Array.from(reports, (r) => r.remainingBytes);
    try {
      if (port.applyUsageBatch !== undefined) port.applyUsageBatch(ids, bytes, reports.length, new Float64Array(reports.length));
      else port.applyUsage(reports.map((r, i) => [r.mac, bytes[i]!] as const));
    } catch (err) {
      this.options.onError?.(new SluiceError('ERR_METER_APPLY', 'applying usage to sessions failed', { cause: err }));
      return;
    }
    for (const [i, r] of reports.entries()) {
      r.deltaBytes += bytes[i]!;
      r.deltaDownloadBytes += bytes[i]!;
      r.billedAheadBytes = bytes[i]!;
      r.remainingBytes = 0;
      r.exhausted = true;
      this.nearEnd.delete(r.sessionId);
    }
  }

  /** Remembers a data session's bytes left if it could run out within a poll interval at the peak rate. */
  private watchRemaining(session: MeteredSession, remainingBytes: number, rate: number): void {
    this.peakRate = Math.max(this.peakRate, rate);
    if (remainingBytes > 0 && remainingBytes < this.peakRate * this.options.pollIntervalMs) {
      this.nearEnd.set(session.id, { mac: session.mac, remaining: remainingBytes, rate });
    } else {
      this.nearEnd.delete(session.id);
    }
  }

  /** When the first near-end session could run out at the peak rate (ms from now); forgets ended sessions. */
  private peakCrossingInMs(): number {
    let least = Infinity;
    for (const [id, e] of this.nearEnd) {
      if (this.options.sessions.active(e.mac)?.id !== id) { this.nearEnd.delete(id); continue; }
      if (this.braked(e.mac)) continue; // the kernel stops it however fast it goes
      least = Math.min(least, e.remaining / this.peakRate);
    }
    return least;
  }

  /**
   * The watched gates whose first open reading is in this tick: with the auth known to be sluice's, that reading is
   * returned to be billed in full; while the auth is still in flight it is held (authFinished bills it).
   */
  private settleAuthWatch(tick: number, dispatchAt: number): FirstReading[] {
    const port = this.options.sessions;
    const view = this.view;
    const firsts: FirstReading[] = [];
    for (const [mac, watch] of this.authWatch) {
      const session = port.active(mac);
      if (session === undefined || session.id !== watch.sessionId) { this.authWatch.delete(mac); continue; }
      const slot = this.macToSlot.get(mac);
      if (slot === undefined) continue;
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0 || !OPEN_STATES.has(flags >> 1)) continue;
      if (!view.startsEpoch(slot)) {
        // Open and continuing what an earlier reading saw: that reading (held, or billed) was the epoch's first.
        if (watch.held === undefined) this.authWatch.delete(mac);
        continue;
      }
      const [down, up] = view.readingParts(slot);
      watch.tick = tick;
      if (watch.state === 'expected') watch.held = { down, up, at: dispatchAt };
      else firsts.push({ session, down, up, since: watch.at });
    }
    return firsts;
  }

  /** Bills epochs' first readings in full; returns the earliest predicted crossing among them (ms from now). */
  private billFirstReadings(firsts: FirstReading[], at: number): number {
    const port = this.options.sessions;
    const usage: UsageReport[] = [];
    let next = Infinity;
    for (const f of firsts) {
      const bytes = f.down + f.up;
      if (bytes <= 0) continue;
      const session = f.session;
      let remainingBytes = Infinity;
      try {
        if (port.applyUsageBatch !== undefined) {
          const out = new Float64Array(1);
          port.applyUsageBatch([session.id], Float64Array.of(bytes), 1, out);
          remainingBytes = session.metric === 'bytes' ? out[0]! : Infinity;
        } else {
          port.applyUsage([[session.mac, bytes]]);
          remainingBytes = session.metric === 'bytes' ? port.remainingBytes(session.id) : Infinity;
        }
      } catch (err) {
        this.options.onError?.(new SluiceError('ERR_METER_APPLY', 'applying usage to sessions failed', { cause: err }));
        continue;
      }
      usage.push({
        mac: session.mac, sessionId: session.id, slot: session.slot ?? -1, metric: session.metric, deltaBytes: bytes, deltaDownloadBytes: f.down,
        deltaUploadBytes: f.up, remainingBytes, exhausted: session.metric === 'bytes' && remainingBytes <= 0,
      });
      if (session.metric === 'bytes') {
        const rate = at > f.since ? bytes / (at - f.since) : 0;
        if (this.braked(session.mac)) next = Math.min(next, this.brakedCrossingInMs(session, remainingBytes, rate));
        else if (remainingBytes > 0) next = Math.min(next, this.crossingInMs(remainingBytes, rate));
        this.watchRemaining(session, remainingBytes, rate);
      }
    }
    if (usage.length > 0) this.options.onUsage?.(usage);
    return next;
  }

  /**
   * Adds the slice's bytes to the sessions (ending the data sessions that ran out) and fills `batch.remaining`.
   * A throw loses this slice's bytes rather than ever counting them twice: the table is already committed.
   */
  private applySlice(port: SessionsPort, n: number): void {
    const batch = this.batch;
    try {
      if (port.applyUsageBatch !== undefined) {
        port.applyUsageBatch(batch.ids, batch.bytes, n, batch.remaining);
        return;
      }
      const tuples: Array<readonly [string, number]> = [];
      for (let b = 0; b < n; b++) tuples.push([batch.sessions[b]!.mac, batch.bytes[b]!]);
      port.applyUsage(tuples);
    } catch (err) {
      this.options.onError?.(new SluiceError('ERR_METER_APPLY', 'applying usage to sessions failed', { cause: err }));
    }
    if (port.applyUsageBatch !== undefined) return;
    for (let b = 0; b < n; b++) {
      const session = batch.sessions[b]!;
      batch.remaining[b] = session.metric === 'bytes' ? port.remainingBytes(session.id) : Infinity;
    }
  }

  /** Paying clients (data and time) whose gate the portal dropped: absent (gone) or back unauthenticated (reopen). */
  private async checkGates(sessions: Iterable<MeteredSession>, tick: number, dispatchAt: number): Promise<{ reopen: string[]; gone: string[] }> {
    const reopen: string[] = [];
    const gone: string[] = [];
    const now = this.clock();
    const newest = dispatchAt - this.graceMs;
    const view = this.view;
    let n = 0;
    const turn = new TurnBudget();
    // No copy of the sessions: a Map iterator survives entries added or deleted between slices.
    for (const session of sessions) {
      if (++n % SLICE === 0) await turn.pause();
      if (session.startedAt > newest) continue;
      const mac = session.mac;
      const slot = this.macToSlot.get(mac);
      const flags = slot === undefined ? -1 : view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) {
        if (!this.goneAt.has(mac)) this.goneAt.set(mac, now);
        gone.push(mac);
        continue;
      }
      if (this.goneAt.size > 0) this.goneAt.delete(mac);
      if (flags >> 1 === STATE_CODES.Preauthenticated) {
        const last = this.reopenedAt.get(mac);
        if (last === undefined || now - last >= this.reopenBackoffMs) {
          this.reopenedAt.set(mac, now);
          reopen.push(mac);
        }
      } else if (this.reopenedAt.size > 0) {
        this.reopenedAt.delete(mac);
      }
    }
    // Forget clients that stopped paying (reopenedAt holds a few entries at a time; goneAt all absent paying clients).
    const port = this.options.sessions;
    for (const mac of this.goneAt.keys()) {
      if (++n % SLICE === 0) await turn.pause();
      if (port.active(mac) === undefined) this.goneAt.delete(mac);
    }
    for (const mac of this.reopenedAt.keys()) if (port.active(mac) === undefined) this.reopenedAt.delete(mac);
    return { reopen, gone };
  }

  /** Clients present with an open gate (not Trusted: the portal admin's own list) and no ACTIVE session. */
  private async openUnpaid(tick: number): Promise<string[]> {
    const out: string[] = [];
    const view = this.view;
    const port = this.options.sessions;
    const count = view.slotCount;
    const turn = new TurnBudget();
    for (let slot = 0; slot < count; slot++) {
      if ((slot & (SLICE - 1)) === SLICE - 1) await turn.pause();
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) continue;
      const state = flags >> 1;
      if (state !== STATE_CODES.Authenticated && state !== STATE_CODES.AuthBlocked) continue;
      const mac = this.slotMacs[slot]!;
      if (port.active(mac) === undefined || this.options.gateHeld?.(mac) === true) out.push(mac);
    }
    return out;
  }

  private syncSlots(): void {
    const count = this.view.slotCount;
    for (let slot = this.slotMacs.length; slot < count; slot++) {
      const mac = this.view.mac(slot);
      this.slotMacs.push(mac);
      this.macToSlot.set(mac, slot);
    }
  }
}
