/**
 * The tick loop: runs each tick (tick-scheduler.ts says when), hands it to the worker pool (which fetches and scans
 * the snapshot itself; tick-dispatch.ts holds the portal's queue meanwhile), commits the shared table, bills the deltas
 * of paying clients, and reports.
 *
 * Billing rules (docs/metering.md, "Baseline"):
 *  - Only paying clients are billed: a delta for a MAC without an ACTIVE session is dropped. Data sessions are
 *    enforced; time sessions get their octets counted too (upstream accounting).
 *  - A delta covers (previous committed tick, this tick]. It is billed only if the previous tick was dispatched at or
 *    after the session's start, so bytes before a purchase are never billed (the first-reading watch bills a gate
 *    sluice opened from its first byte instead).
 *  - The table is committed before the deltas are applied: if applying throws, those bytes are lost rather than ever
 *    counted twice.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import { TickDispatch } from './tick-dispatch.ts';
import { TickScheduler } from './tick-scheduler.ts';
import type { BlindWatch } from './blind-watch.ts';
import type { BrakeWatch } from './brake-watch.ts';
import { billUsage, OPEN_GATE_CODES, type MeterContext } from './context.ts';
import type { CutPlanner } from './cut-planner.ts';
import type { FirstReadingWatch } from './first-readings.ts';
import type { GateChecks } from './gate-checks.ts';
import type { MeterOptions, TickReport } from './options.ts';
import type { MeteredSession, UsageReport, UsageTaskRunner } from './ports.ts';
import { SlotSessions } from './slot-sessions.ts';
import { AddressBook } from './address-book.ts';
import { MeterStatsRecorder } from './stats.ts';
import {
  committedMarks,
  committedReading,
  createTable,
  FLAG_PRESENT,
  seedTable,
  TableView,
  type CounterMark,
  type CounterTable,
} from './table.ts';
import type { UsageResult, UsageTask } from './task.ts';
import { KernelMode } from './kernel-mode.ts';
import type { KernelUsageResult, KernelUsageTask } from './kernel-task.ts';
import { SLICE, TurnBudget, type TickTimes } from './timing.ts';
import { PurchaseBases } from './purchase-bases.ts';

/** A kernel tick's listing of the portal may take this many fetch timeouts (`main.ndsctl_timeout`). */
const KERNEL_LISTING_TIMEOUT_FACTOR = 4;
/** What the tick loop works with: the other parts of the meter, and the options it reads. */
export interface TickLoopParts {
  runner: UsageTaskRunner;
  times: TickTimes;
  planner: CutPlanner;
  brakes: BrakeWatch;
  firsts: FirstReadingWatch;
  gates: GateChecks;
  blind: BlindWatch;
}

export type TickLoopOptions = Pick<
  MeterOptions,
  | 'source'
  | 'flavour'
  | 'maxSnapshotBytes'
  | 'portal'
  | 'initialMarks'
  | 'initialCapacity'
  | 'kernelCounters'
  | 'portalIdentity'
  | 'neighbours'
  | 'portalDeauths'
> & { fetchTimeoutMs: number; minIntervalMs: number; firstReadingMs: number };

export class TickLoop {
  private table: CounterTable;
  view: TableView;
  /** The MAC of each table slot, and back: grown as the workers add slots (syncSlots). */
  private readonly slotMacs: string[] = [];
  private readonly macToSlot = new Map<string, number>();
  /** Each slot's ACTIVE session: billing and the gate checks read it instead of a lookup per client. */
  private readonly index: SlotSessions;
  readonly statsRecorder = new MeterStatsRecorder();
  private seq = 0;
  /** When the last committed tick's snapshot was asked for (clock ms). */
  lastReadingAt: number | undefined;
  /**
   * The committed readings are restored marks (initialMarks), taken at some checkpoint before a restart, not at
   * lastReadingAt: the next tick's deltas bill normally but say nothing about rates.
   */
  private restoredReadings = false;
  /** The clients' addresses from the ticks' own readings, for the LAN endpoint's lookups. */
  readonly addresses: AddressBook;
  /** Usage from the kernel's counters while they are on (kernel-mode.ts); undefined: every tick lists the portal. */
  readonly kernel: KernelMode | undefined;
  /**
   * The table may hold the kernel's readings: a tick read its counters, and no tick listing the portal has committed
   * since. The next tick that lists the portal must not bill (see runTick).
   */
  private lastFromKernel = false;
  /** When each tick runs (tick-scheduler.ts). */
  readonly scheduler: TickScheduler;
  /** What a tick waits on: the worker, and the portal's queue while it reads (tick-dispatch.ts). */
  private readonly dispatcher: TickDispatch;
  /**
   * While a committed tick's deltas are being billed: the tick committed before it, whose readings the sessions' bytes
   * left are still billed through (billedMarks).
   */
  private billingAfter: number | undefined;
  /** Readings failed ticks took after a purchase, for the next committed tick's baseline (purchase-bases.ts). */
  private readonly purchaseBases = new PurchaseBases();
  /** One slice's billed clients, reused every slice (see apply). */
  private readonly batch = {
    sessions: new Array<MeteredSession | undefined>(SLICE),
    ids: new Array<string>(SLICE).fill(''),
    /** The sessions' manager slots (MeteredSession.slot): billing reads each session by index, not by id. */
    slots: new Int32Array(SLICE),
    k: new Int32Array(SLICE),
    down: new Float64Array(SLICE),
    up: new Float64Array(SLICE),
    bytes: new Float64Array(SLICE),
    remaining: new Float64Array(SLICE),
  };

  constructor(
    private readonly ctx: MeterContext,
    private readonly parts: TickLoopParts,
    private readonly options: TickLoopOptions,
  ) {
    const marks = options.initialMarks ?? [];
    if (marks.length > 0) {
      // Tick 1 is the restored readings, committed as of now: every later delta is billable to sessions started before.
      this.table = seedTable(marks, options.initialCapacity ?? 1024, 1);
      this.seq = 1;
      this.lastReadingAt = ctx.clock.now();
      this.restoredReadings = true;
    } else {
      this.table = createTable(options.initialCapacity ?? 1024);
    }
    this.view = new TableView(this.table);
    this.index = new SlotSessions(ctx.sessions);
    this.scheduler = new TickScheduler(ctx, () => this.runTick());
    this.dispatcher = new TickDispatch(ctx.clock, parts.planner, options.portal, options.fetchTimeoutMs);
    this.addresses = new AddressBook(ctx.timers, () => this.scheduler.requestTick());
    this.kernel =
      options.kernelCounters === undefined
        ? undefined
        : new KernelMode(options.kernelCounters, {
            portalIdentity: options.portalIdentity,
            neighbours: options.neighbours,
            deauthsReportedSince: () => options.portalDeauths?.liveSince,
          });
  }

  get counterTable(): CounterTable {
    return this.table;
  }

  /**
   * The counter reading a session opened for `mac` now starts from (sessions journal it with the purchase:
   * MarkingStore). The last committed reading shows the gate open: the portal's counters predate the session, so only
   * bytes past them are its own (the restart's delta), and a re-auth before the session's gate opens is a new epoch
   * anyway. Otherwise (absent, never read, gate closed) the auth that opens the gate starts the counters at 0, as the
   * first-reading watch bills them: a zero mark (any reading of the new epoch is the session's, in full; the token
   * is the closed gate's, kept by a portal that keeps it across the auth, else a new epoch, counted from 0 as well).
   */
  openingMark(mac: string): CounterMark {
    const slot = this.macToSlot.get(mac);
    const reading = slot === undefined ? undefined : committedReading(this.table, slot);
    if (reading === undefined) return { token: 0, down: 0, up: 0 };
    if (OPEN_GATE_CODES.has(reading.state)) return reading.mark;
    return { token: reading.mark.token, down: 0, up: 0 };
  }

  /**
   * The counter reading each present client's session is billed through, as kernel counter epochs (counted-since.ts);
   * null while the table holds no kernel readings (the meter lists the portal). The last committed tick's, or while its
   * deltas are being billed, the one's before: read in one go, it pairs with the sessions' bytes left of the same
   * moment. A session's first reading held by the first-reading watch is not billed yet: its mark is ahead by it.
   */
  billedMarks(): Map<string, CounterMark> | null {
    if (this.kernel?.on !== true || !this.lastFromKernel) return null;
    return committedMarks(this.table, this.billingAfter);
  }

  private async runTick(): Promise<TickReport> {
    const tick = ++this.seq;
    const started = performance.now();
    const kernel = this.kernel?.on === true && this.parts.runner.runKernel !== undefined ? this.kernel : undefined;
    // Counters turned off under a running meter (their table could not be made again): the portal's tokens and
    // counters replace the kernel's epochs in the table, so the first such tick's deltas are whole portal counters,
    // already billed from the kernel's: not billed (what passed since the last kernel reading is lost, not doubled).
    // Until one such tick commits: the next after one that failed measures from the kernel's readings as well (from
    // an uncommitted kernel tick's too, which may have written them before it failed).
    const switched = kernel === undefined && this.lastFromKernel;
    if (kernel !== undefined) this.lastFromKernel = true;
    let dispatchAt = this.ctx.clock.now();
    let listed = false;
    let result: UsageResult;
    try {
      if (kernel !== undefined) {
        listed = kernel.wantsListing(dispatchAt, this.addresses.waiting());
        // A listing bills nothing here (the counters do), so it may take longer than a fetch: one cut short by the
        // timeout cost openNDS as much as a whole one (it runs its per-client script regardless) and is tried again,
        // which on a busy router meant no listing ever finished (32 clients at load 25 in the lab).
        const timeoutMs = listed
          ? KERNEL_LISTING_TIMEOUT_FACTOR * this.options.fetchTimeoutMs
          : this.options.fetchTimeoutMs;
        let task = kernel.task(
          tick,
          this.table,
          timeoutMs,
          this.dispatcher.fetchSignal,
          listed
            ? {
                source: this.options.source,
                flavour: this.options.flavour ?? 'auto',
                ...(this.options.maxSnapshotBytes === undefined ? {} : { maxBytes: this.options.maxSnapshotBytes }),
              }
            : undefined,
        );
        const run = (t: KernelUsageTask): Promise<KernelUsageResult> =>
          this.dispatcher.dispatch(
            () => this.parts.runner.runKernel!(t),
            listed && t.listing?.source.kind !== 'inline',
            (at) => {
              dispatchAt = at;
            },
            timeoutMs,
          );
        let raw = await run(task);
        // The thread did not hold the roster the task named (it read nothing): the same tick with the roster itself.
        const again = kernel.resend(task, raw);
        if (again !== undefined) raw = await run((task = again));
        result = kernel.settle(raw, listed, dispatchAt, raw.fetchMs, this.ctx.sessions);
        if (raw.ok && raw.listed !== undefined)
          this.options.portal?.noteListing?.(raw.listed.tokens, raw.listed.flavour, raw.fetchMs);
      } else {
        const task: UsageTask = {
          tick,
          table: this.table,
          source: this.options.source,
          flavour: this.options.flavour ?? 'auto',
          timeoutMs: this.options.fetchTimeoutMs,
          ...(this.options.maxSnapshotBytes === undefined ? {} : { maxBytes: this.options.maxSnapshotBytes }),
          fetchSignal: this.dispatcher.fetchSignal,
          ...(this.addresses.wanted(this.ctx.clock.now()) && { addresses: true }),
        };
        listed = task.addresses === true;
        const holdsPortal = task.source.kind !== 'inline';
        result = await this.dispatcher.dispatch(
          () => this.parts.runner.run(task),
          holdsPortal,
          (at) => {
            dispatchAt = at;
          },
          task.timeoutMs,
        );
        if (holdsPortal && (result.ok || result.problem === 'timeout')) this.options.portal?.noteFetch?.(result.ok);
      }
    } catch (err) {
      const error = toSluiceError(err, 'ERR_METER_WORKER');
      this.ctx.onError(new SluiceError('ERR_METER_WORKER', `usage worker failed: ${error.message}`, { cause: err }));
      result = {
        tick,
        ok: false,
        problem: 'worker-error',
        message: error.message,
        fetchMs: performance.now() - started,
      };
    }
    if (kernel === undefined && result.ok) this.lastFromKernel = false;
    this.addresses.record(dispatchAt, listed, result.ok ? result.addresses : undefined);
    const applyStarted = performance.now();
    // The gate facts of a kernel tick are the last listing's, as of when it was read.
    let report: TickReport;
    if (result.ok) {
      try {
        report = await this.apply(result, dispatchAt, kernel?.rosterAt ?? dispatchAt, switched, kernel);
      } finally {
        // Committed (apply's first step, or it threw before: then this tick's readings stay pending for the next).
        if (this.view.committedTick === result.tick) this.view.settle(result.tick);
        this.billingAfter = undefined; // an apply that threw mid-way lost the rest of its deltas: none to wait for
      }
    } else {
      report = this.skip(result);
      this.purchaseBases.noteFailedTick(
        this.view,
        tick,
        dispatchAt,
        this.lastReadingAt,
        (slot) => this.slotMacs[slot] ?? this.view.mac(slot),
        (mac) => this.ctx.sessions.active(mac),
      );
    }
    if (kernel !== undefined && result.ok) {
      const moved = new Set<string>();
      for (let k = 0; k < result.count; k++) moved.add(this.slotMacs[result.deltas[k * 3]!]!);
      await kernel.watchAddresses(this.ctx.clock.now(), this.ctx.sessions);
      kernel.afterBilling(this.ctx.clock.now(), moved, this.ctx.sessions, (mac) => this.parts.firsts.authing(mac));
      report.nextInMs = Math.min(
        report.nextInMs,
        Math.max(this.options.minIntervalMs, kernel.listingInMs(this.ctx.clock.now())),
      );
    }
    report.applyMs = performance.now() - applyStarted;
    report.durationMs = performance.now() - started;
    if (result.ok) this.parts.times.lastDurationMs = report.durationMs;
    this.statsRecorder.recordTick(report, this.ctx.clock.now(), result.ok ? result : undefined);
    this.ctx.emit('tick', report);
    return report;
  }

  private skip(result: Extract<UsageResult, { ok: false }>): TickReport {
    return {
      tick: result.tick,
      ok: false,
      skipped: result.problem,
      message: result.message,
      clients: 0,
      usage: [],
      reopen: [],
      gone: [],
      openUnpaid: [],
      at: 0,
      dropped: 0,
      baselined: 0,
      durationMs: 0,
      fetchMs: result.fetchMs,
      scanMs: 0,
      applyMs: 0,
      nextInMs: this.ctx.pollIntervalMs,
    };
  }

  /**
   * `gateAt`: when the portal's states in the table were read (dispatchAt, or a kernel tick's last listing). `kernel`:
   * this tick read the kernel's counters; a gate sluice opened after its listing was read shows closed in it (the
   * auth's outcome is newer): not one to re-open.
   */
  private async apply(
    result: Extract<UsageResult, { ok: true }>,
    dispatchAt: number,
    gateAt: number,
    unbilled: boolean,
    kernel: KernelMode | undefined,
  ): Promise<TickReport> {
    if (result.table) {
      this.table = result.table;
      this.view = new TableView(result.table);
    }
    this.syncSlots();
    this.billingAfter = this.view.committedTick;
    this.view.commit(result.tick);
    const { planner, brakes, firsts: firstWatch, gates, blind, times } = this.parts;
    blind.committed();
    const since = this.lastReadingAt;
    this.lastReadingAt = dispatchAt;
    const bases = this.purchaseBases.take();
    times.recordFetch(result.fetchMs);

    const port = this.ctx.sessions;
    const batch = this.batch;
    let dropped = 0;
    let baselined = 0;
    const usage: UsageReport[] = [];
    let nextInMs = this.ctx.pollIntervalMs;
    // No rate from restored readings: the bytes since the checkpoint over the ms since the restart would be a rate
    // many times too high, and bill a remainder ahead that never passed.
    const elapsed = since === undefined || this.restoredReadings ? 0 : dispatchAt - since;
    this.restoredReadings = false;
    const deltas = result.deltas;
    const firsts =
      firstWatch.size > 0
        ? firstWatch.settle(this.view, this.macToSlot, result.tick, { dispatchAt, previousAt: since })
        : [];
    /** Reports of data sessions whose remainder passes while their gate closes: billed ahead below. */
    const ahead: UsageReport[] = [];
    // One slice at a time: look the sessions up, bill, report, then give the event loop a turn. A slice allocates
    // nothing per client besides its UsageReport (the batch buffers are reused).
    const turn = new TurnBudget();
    const index = this.index;
    const horizonMs = planner.farHorizonMs();
    await index.refresh(this.macToSlot, this.slotMacs, this.view.slotCount);
    if (unbilled) baselined += result.count;
    for (let start = 0; start < (unbilled ? 0 : result.count); start += SLICE) {
      if (start > 0) await turn.pause();
      const end = Math.min(result.count, start + SLICE);
      // Billing the last slice may have ended sessions, and a turn may have started some: then ask the port.
      const fresh = index.fresh();
      let n = 0;
      for (let k = start; k < end; k++) {
        const slot = deltas[k * 3]!;
        const session = fresh && slot < index.slots ? index.at(slot) : port.active(this.slotMacs[slot]!);
        if (session === undefined) {
          dropped++;
          continue;
        }
        // A reading of a gate sluice is opening (held, first open, or still closed): the first-reading watch's alone.
        if (firstWatch.owns(session.mac, result.tick)) continue;
        // The previous reading predates the purchase: its counters may hold bytes used before it, which are never
        // billed, unless the gate was closed then (a portal only counts authenticated clients, and the auth that
        // opened it came later, for this session): then every byte of the delta was bought.
        let down = deltas[k * 3 + 1]!;
        let up = deltas[k * 3 + 2]!;
        if ((since === undefined || since < session.startedAt) && !gateWasClosed(this.view.previousFlags(slot))) {
          baselined++;
          // A failed tick read the client after the purchase: what passed since that reading is billed.
          const base = bases.get(session.mac);
          if (base === undefined || base.sessionId !== session.id) continue;
          down = Math.max(0, down - base.down);
          up = Math.max(0, up - base.up);
          if (down + up === 0) continue;
        }
        batch.sessions[n] = session;
        batch.ids[n] = session.id;
        batch.slots[n] = session.slot ?? -1;
        batch.k[n] = k;
        batch.down[n] = down;
        batch.up[n] = up;
        batch.bytes[n] = down + up;
        n++;
      }
      if (n === 0) continue;
      // Adds the slice's bytes to the sessions (ending the data sessions that ran out) and fills batch.remaining.
      billUsage(this.ctx, batch.ids, batch.bytes, n, batch.remaining, batch.slots);
      for (let b = 0; b < n; b++) {
        const session = batch.sessions[b]!;
        const k = batch.k[b]!;
        const bytes = batch.bytes[b]!;
        const remainingBytes = session.metric === 'bytes' ? batch.remaining[b]! : Infinity;
        const report: UsageReport = {
          mac: session.mac,
          sessionId: session.id,
          slot: session.slot ?? -1,
          metric: session.metric,
          deltaBytes: bytes,
          deltaDownloadBytes: batch.down[b]!,
          deltaUploadBytes: batch.up[b]!,
          remainingBytes,
          exhausted: session.metric === 'bytes' && remainingBytes <= 0,
        };
        usage.push(report);
        if (session.metric === 'bytes' && !planner.farFromEnd(session, bytes, elapsed, remainingBytes, horizonMs)) {
          nextInMs = Math.min(nextInMs, planner.onReading(session, report, bytes, elapsed, remainingBytes, ahead));
          const watched = planner.watched(session.id);
          if (watched !== undefined) {
            const [down, up] = this.view.readingParts(deltas[k * 3]!);
            watched.reading = { down, up, at: dispatchAt };
          }
        }
      }
      batch.sessions.fill(undefined, 0, n);
    }
    if (ahead.length > 0) planner.billAhead(ahead);
    if (usage.length > 0) this.ctx.onUsage(usage);
    this.billingAfter = undefined;
    if (brakes.size > 0) nextInMs = Math.min(nextInMs, await brakes.check(dispatchAt));
    await brakes.audit(this.ctx.clock.now());
    firstWatch.done(firsts);
    if (firsts.length > 0) nextInMs = Math.min(nextInMs, firstWatch.bill(firsts, dispatchAt));
    // A data session just opened, no traffic shown yet: read it again soon, not a whole poll interval later.
    if (firstWatch.size > 0 && firstWatch.wantsEarlyReading())
      nextInMs = Math.min(nextInMs, this.options.firstReadingMs);
    nextInMs = Math.min(nextInMs, planner.peakCrossingInMs());
    nextInMs = Math.min(
      this.ctx.pollIntervalMs,
      Math.max(this.options.minIntervalMs, 2 * times.lastDurationMs, nextInMs),
    );

    const paying = await gates.paying(this.view, this.macToSlot, this.slotMacs, index, result.tick, gateAt);
    const { gone } = paying;
    const reopen = kernel === undefined ? paying.reopen : paying.reopen.filter((m) => !kernel.openedSinceListing(m));
    for (const mac of reopen) this.ctx.emit('paying-client-needs-gate', mac);
    const openUnpaid = await gates.openUnpaid(this.view, this.slotMacs, index, result.tick);
    return {
      tick: result.tick,
      ok: true,
      clients: result.clients,
      usage,
      reopen,
      gone,
      openUnpaid,
      at: gateAt,
      dropped,
      baselined,
      durationMs: 0,
      fetchMs: result.fetchMs,
      scanMs: result.scanMs,
      applyMs: 0,
      nextInMs,
    };
  }

  /** The first-reading watch billed this session's first reading: its next delta is not held up as a base. */
  firstReadingBilled(mac: string, sessionId: string): void {
    this.purchaseBases.noteFirstReading(mac, sessionId);
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

/** Present in the previous reading, in a state whose traffic the portal does not let through (and does not count). */
function gateWasClosed(previousFlags: number): boolean {
  return previousFlags >= 0 && (previousFlags & FLAG_PRESENT) !== 0 && !OPEN_GATE_CODES.has(previousFlags >> 1);
}
