/**
 * The cut planner: ends a data session at its allotment rather than a poll interval past it. From each reading it
 * predicts the crossing (when the remainder runs out at the session's rate), aims the next tick at it, bills ahead a
 * remainder that passes while the gate closes, and when no tick can come in time schedules a cut between ticks: one
 * client's final reading (readClient) or a tick at once. It reports facts (usage, exhausted) and ends sessions only
 * through the sessions port; the gatekeeper closes the gate.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import { GATE_OPEN_STATES } from '../portal/index.ts';
import type { BrakeWatch } from './brake-watch.ts';
import { billUsage, stopping, type MeterContext } from './context.ts';
import type { MeteredSession, ReadClient, UsageReport } from './ports.ts';
import { closeOf, RecentTimes, type TickTimes } from './timing.ts';

/** A data session that could run out within a poll interval at the peak rate. */
export interface NearEnd {
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

export interface CutPlannerOptions {
  readClient?: ReadClient | undefined;
  /** MeterOptions.closeLatencyMs: overrides closeOf(the median fetch). */
  closeLatencyMs?: (() => number) | undefined;
  minIntervalMs: number;
  peakRateBytesPerS: number;
}

export class CutPlanner {
  /** bytes/ms: the assumed or highest seen rate of one client (peakRateBytesPerS) */
  private peakRate: number;
  /**
   * Data sessions that could run out within a poll interval at the peak rate, by session id: bytes left at their last
   * reading. Each tick is scheduled no later than the earliest of these would run out at the peak rate.
   */
  private readonly nearEnd = new Map<string, NearEnd>();
  /** Cuts scheduled between ticks (session id → timer): see maybeScheduleCut. */
  private readonly cuts = new Map<string, unknown>();
  /** One client's reading (readClient): its time, averaged, and how many were taken. */
  private readonly readTimes = new RecentTimes(5);
  finalReadings = 0;
  /** Final readings under way, and the timed ends due (clock ms): a tick's fetch waits for both (waitForCuts). */
  private readonly finalReadsInFlight = new Set<Promise<void>>();
  private readonly timedEnds = new Map<string, number>();

  constructor(
    private readonly ctx: MeterContext,
    private readonly brakes: BrakeWatch,
    private readonly times: TickTimes,
    private readonly options: CutPlannerOptions,
  ) {
    this.peakRate = options.peakRateBytesPerS / 1000;
  }

  /** The near-end record of a session, if watched: a tick stores its reading there (NearEnd.reading). */
  watched(sessionId: string): NearEnd | undefined {
    return this.nearEnd.get(sessionId);
  }

  /**
   * A tick's reading of a data session (`bytes` over `elapsedMs`, `remainingBytes` left after billing them): a
   * remainder that passes while its gate closes goes on `ahead` (billAhead); otherwise the next reading is aimed at the
   * crossing, and a cut between ticks planned when no tick can come in time. Returns when the next tick is wanted (ms).
   */
  onReading(
    session: MeteredSession,
    report: UsageReport,
    bytes: number,
    elapsedMs: number,
    remainingBytes: number,
    ahead: UsageReport[],
  ): number {
    let next = Infinity;
    const before = this.nearEnd.get(session.id)?.rate ?? 0;
    const rate = this.smoothedRate(session.id, bytes, elapsedMs);
    const now = elapsedMs > 0 ? bytes / elapsedMs : 0;
    // Billing ahead errs on the late side: only a flow the previous reading saw too (one burst, then nothing, is
    // not a rate to predict from), at the lowest of its rates (a client that just slowed down is not cut
    // early). The next reading errs on the early side (the higher).
    const cutRate = before > 0 ? Math.min(rate, now, before) : 0;
    this.cancelCut(session.id);
    if (this.brakes.braked(session.mac)) {
      // This interval's own rate: a reading too early only costs another, one too late only delays the end.
      next = this.brakes.crossingInMs(session, remainingBytes, now > 0 ? now : rate);
    } else if (remainingBytes > 0 && this.endsWhileClosing(remainingBytes, cutRate)) {
      report.cutRate = cutRate;
      report.cutCloseMs = this.closeLatencyMs();
      ahead.push(report);
    } else if (remainingBytes > 0) {
      next = this.crossingInMs(remainingBytes, Math.max(rate, now));
      this.maybeScheduleCut(
        session,
        remainingBytes,
        this.options.readClient !== undefined ? Math.max(rate, now) : cutRate,
      );
    }
    this.watchRemaining(session, remainingBytes, rate);
    return next;
  }

  /**
   * How far a data session's remainder must reach, at the peak rate, for its reading to change nothing here
   * (farFromEnd): past the next tick's crossing aim (a poll interval, the close latency and half a fetch) and past any
   * cut or final reading one could plan (the soonest next reading and 2.5 readings of one client). Doubled: the
   * fetch and reading times it reads may move while a tick yields.
   */
  farHorizonMs(): number {
    const soonest = Math.max(this.options.minIntervalMs, 2 * this.times.lastDurationMs) + this.times.lastFetchMs / 2;
    const read = this.options.readClient !== undefined ? 2.5 * this.finalReadMs() : 0;
    return (
      2 * Math.max(this.ctx.pollIntervalMs + this.closeLatencyMs() + this.times.lastFetchMs / 2, soonest + read) + 1
    );
  }

  /**
   * Whether onReading would do nothing for this reading of a data session (its next-tick aim is past the poll
   * interval, no cut, no bill-ahead, not watched): not near its end, no cut planned, not braked, a rate no higher than
   * the peak, and a remainder the peak rate cannot use up within `horizonMs` (farHorizonMs). The tick then skips it:
   * most data sessions are far from their end, and onReading costs each of them several Map lookups per tick.
   */
  farFromEnd(
    session: MeteredSession,
    bytes: number,
    elapsedMs: number,
    remainingBytes: number,
    horizonMs: number,
  ): boolean {
    if (!(remainingBytes > 0)) return false;
    const rate = elapsedMs > 0 ? bytes / elapsedMs : 0;
    if (rate > this.peakRate || remainingBytes < this.peakRate * horizonMs) return false;
    if (this.nearEnd.size > 0 && this.nearEnd.has(session.id)) return false;
    if (this.cuts.size > 0 && (this.cuts.has(session.id) || this.timedEnds.has(session.id))) return false;
    return !this.brakes.braked(session.mac);
  }

  /** A data session's first reading after its gate opened, billed in full: when to read it next (ms from now). */
  onFirstReading(session: MeteredSession, remainingBytes: number, rate: number): number {
    let next = Infinity;
    if (this.brakes.braked(session.mac)) next = this.brakes.crossingInMs(session, remainingBytes, rate);
    else if (remainingBytes > 0) next = this.crossingInMs(remainingBytes, rate);
    this.watchRemaining(session, remainingBytes, rate);
    return next;
  }

  /**
   * Ends those sessions now, billing their remainder (the bytes that will pass while the gate closes; the next
   * readings of that client are dropped, as for any client without a session, so nothing is billed twice).
   */
  billAhead(reports: UsageReport[]): void {
    const ids = reports.map((r) => r.sessionId);
    const bytes = Float64Array.from(reports, (r) => r.remainingBytes);
    if (!billUsage(this.ctx, ids, bytes, reports.length, new Float64Array(reports.length))) return;
    for (const [i, r] of reports.entries()) {
      r.deltaBytes += bytes[i]!;
      r.deltaDownloadBytes += bytes[i]!;
      r.billedAheadBytes = bytes[i]!;
      r.remainingBytes = 0;
      r.exhausted = true;
      this.nearEnd.delete(r.sessionId);
    }
  }

  /**
   * Ends a data session between ticks, at its allotment: `read` bytes seen by a final reading and the rest billed ahead
   * (or all of it, for a timed end). Its next readings are dropped like any client's without a session. `cut`: the
   * rate (bytes/ms) and close latency a reading's decision used, or 'kernel' when the kernel quota stopped it.
   */
  endAhead(
    sessionId: string,
    mac: string,
    readDown: number,
    readUp: number,
    cut: { rate: number; closeMs: number } | 'kernel',
  ): void {
    const port = this.ctx.sessions;
    const session = port.active(mac);
    if (session?.id !== sessionId) return;
    const remaining = port.remainingBytes(sessionId);
    if (!(remaining > 0)) return;
    const read = readDown + readUp;
    const bill = Math.max(remaining, read);
    if (!billUsage(this.ctx, [sessionId], Float64Array.of(bill), 1, new Float64Array(1))) return;
    this.nearEnd.delete(sessionId);
    this.ctx.onUsage([
      {
        mac,
        sessionId,
        slot: session.slot ?? -1,
        metric: 'bytes',
        deltaBytes: bill,
        deltaDownloadBytes: bill - readUp,
        deltaUploadBytes: readUp,
        remainingBytes: 0,
        exhausted: true,
        billedAheadBytes: bill - read,
        ...(cut === 'kernel' ? { stoppedByKernel: true } : { cutRate: cut.rate, cutCloseMs: cut.closeMs }),
      },
    ]);
  }

  /** Remembers a data session's bytes left if it could run out within a poll interval at the peak rate. */
  watchRemaining(session: MeteredSession, remainingBytes: number, rate: number): void {
    this.peakRate = Math.max(this.peakRate, rate);
    if (remainingBytes > 0 && remainingBytes < this.peakRate * this.ctx.pollIntervalMs) {
      this.nearEnd.set(session.id, { mac: session.mac, remaining: remainingBytes, rate });
    } else {
      this.nearEnd.delete(session.id);
    }
  }

  /** When the first near-end session could run out at the peak rate (ms from now); forgets ended sessions. */
  peakCrossingInMs(): number {
    let least = Infinity;
    for (const [id, e] of this.nearEnd) {
      if (this.ctx.sessions.active(e.mac)?.id !== id) {
        this.nearEnd.delete(id);
        continue;
      }
      if (this.brakes.braked(e.mac)) continue; // the kernel stops it however fast it goes
      least = Math.min(least, e.remaining / this.peakRate);
    }
    return least;
  }

  /**
   * Whether a data session could have used up what it had left in `blindMs` without a reading: at twice its last rate
   * if it is near its end and moving, else at the peak rate (the safety net, blind-watch.ts).
   */
  couldRunOutWithin(session: MeteredSession, blindMs: number): boolean {
    const near = this.nearEnd.get(session.id);
    const remaining = near?.remaining ?? this.ctx.sessions.remainingBytes(session.id);
    const rate = near !== undefined && near.rate > 0 ? 2 * near.rate : this.peakRate;
    return !(remaining / rate > blindMs);
  }

  /** How long one client's reading takes (ms, averaged); 0 before one was timed (MeterStats.final_read_ms). */
  readMsMedian(): number {
    return this.readTimes.median(0);
  }

  /** Stops every scheduled cut (the meter closes). */
  cancelAll(): void {
    for (const id of [...this.cuts.keys()]) this.cancelCut(id);
  }

  /**
   * A snapshot holds the portal for a whole fetch, and a deauth queued behind one waits for it (the portal takes one
   * call at a time): seen in the openNDS lab, a cut's deauth took 258 ms instead of 121, and 96 KiB more passed. So a
   * tick is not dispatched while a final reading is under way (its deauth, if it ends the session, is queued by the
   * time the reading's promise settles) nor when a timed end is due before its fetch would be over.
   */
  async waitForCuts(fetchTimeoutMs: number): Promise<void> {
    // Never longer than one fetch may take: a reading that hangs must not stop metering.
    const deadline = this.ctx.clock.now() + fetchTimeoutMs;
    for (let round = 0; round < 4 && this.ctx.clock.now() < deadline; round++) {
      if (this.finalReadsInFlight.size > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.allSettled([...this.finalReadsInFlight]),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.max(0, deadline - this.ctx.clock.now()));
          }),
        ]);
        clearTimeout(timer);
        continue;
      }
      let due = Infinity;
      for (const at of this.timedEnds.values()) due = Math.min(due, at);
      const waitMs = due - this.ctx.clock.now();
      if (!(waitMs >= 0 && waitMs < this.times.lastFetchMs)) return;
      // A real timer: at most one fetch's time, and it must pass even where the meter's own timers are a test's.
      await new Promise<void>((resolve) => setTimeout(resolve, waitMs + 1));
    }
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
    return remainingBytes / rate - this.closeLatencyMs() - this.times.lastFetchMs / 2;
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
    return this.options.closeLatencyMs?.() ?? this.times.closeOfFetch();
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
    const cutInMs =
      this.options.readClient !== undefined
        ? remainingBytes / rate - 2.5 * this.finalReadMs()
        : remainingBytes / rate - this.closeLatencyMs() - this.times.lastFetchMs;
    const soonestReadingMs =
      Math.max(this.options.minIntervalMs, 2 * this.times.lastDurationMs) + this.times.lastFetchMs / 2;
    if (cutInMs >= soonestReadingMs) return;
    const { id, mac } = session;
    this.cuts.set(
      id,
      this.ctx.timers.setTimeout(() => this.cutNow(id, mac), Math.max(0, cutInMs)),
    );
  }

  private cancelCut(sessionId: string): void {
    if (this.cuts.size === 0) return;
    this.timedEnds.delete(sessionId);
    const handle = this.cuts.get(sessionId);
    if (handle === undefined) return;
    this.ctx.timers.clearTimeout(handle);
    this.cuts.delete(sessionId);
  }

  /**
   * A scheduled cut is due: take the final reading now (one client's reading where the portal port gives one, else a
   * tick at once, not bound by the adaptive minimum).
   */
  private cutNow(sessionId: string, mac: string): void {
    this.cuts.delete(sessionId);
    if (this.ctx.sessions.active(mac)?.id !== sessionId) return;
    if (this.options.readClient !== undefined && this.nearEnd.get(sessionId)?.reading !== undefined) {
      const reading: Promise<void> = this.finalReading(sessionId, mac, this.options.readClient)
        .catch((err: unknown) => {
          this.ctx.onError(
            new SluiceError('ERR_METER_APPLY', `final reading failed: ${toSluiceError(err).message}`, { cause: err }),
          );
        })
        .finally(() => this.finalReadsInFlight.delete(reading));
      this.finalReadsInFlight.add(reading);
    } else this.ctx.requestTick();
  }

  /** How long one client's reading takes (ms, averaged); the last tick's fetch until one was timed. */
  private finalReadMs(): number {
    return this.readTimes.median(Math.max(this.times.fetches.median(this.times.lastFetchMs), 1));
  }

  /**
   * The final reading of a cut between ticks: one client's counters against its last tick's reading. Its remainder
   * passes within the close (closeOf a reading's time: the reading's age when it is decided on, and the deauth until
   * the portal stops the client) → the session ends now, the remainder billed ahead. Otherwise the end is timed:
   * another reading while one can still come in time, or, when the moment to close is nearer than two readings take, a
   * timer that ends it at that moment without one (a short horizon, so a change of rate moves little). Every branch
   * that cannot judge (a tick read it meanwhile, a new counter epoch, the client gone or closed, the read failed)
   * leaves it to the ticks.
   */
  private async finalReading(sessionId: string, mac: string, readClient: ReadClient): Promise<void> {
    const port = this.ctx.sessions;
    const clock = this.ctx.clock;
    const base = this.nearEnd.get(sessionId)?.reading;
    if (base === undefined) return;
    // Timed from when the portal takes the call, not from the queue: a reading that waited behind a snapshot is not
    // slow.
    let askedAt = clock.now();
    let started = performance.now();
    let client: Awaited<ReturnType<ReadClient>>;
    try {
      client = await readClient(mac, () => {
        askedAt = clock.now();
        started = performance.now();
      });
    } catch {
      this.ctx.requestTick();
      return;
    }
    const readMs = performance.now() - started;
    this.readTimes.add(readMs);
    this.finalReadings++;
    if (stopping(this.ctx)) return;
    if (port.active(mac)?.id !== sessionId || this.nearEnd.get(sessionId)?.reading !== base || this.cuts.has(sessionId))
      return;
    if (client === null || !(GATE_OPEN_STATES as readonly string[]).includes(client.state)) {
      this.ctx.requestTick();
      return;
    }
    const down = client.downloadBytes - base.down;
    const up = client.uploadBytes - base.up;
    if (down < 0 || up < 0) {
      this.ctx.requestTick();
      return;
    }
    const read = down + up;
    const elapsed = askedAt - base.at;
    const rate = elapsed > 0 ? read / elapsed : 0;
    if (rate <= 0) return; // idle since the tick's reading: the ticks go on watching it
    const remaining = port.remainingBytes(sessionId) - read;
    const closeMs = closeOf(this.finalReadMs());
    if (remaining <= rate * closeMs) {
      this.endAhead(sessionId, mac, down, up, { rate, closeMs });
      return;
    }
    // From now: the moment the deauth must go out (the crossing less the deauth's share of the close).
    const endInMs = askedAt + remaining / rate - (closeMs - this.finalReadMs()) - clock.now();
    const reading = this.finalReadMs();
    if (endInMs < 2 * reading) {
      const dueAt = clock.now() + Math.max(0, endInMs);
      this.timedEnds.set(sessionId, dueAt);
      this.cuts.set(
        sessionId,
        this.ctx.timers.setTimeout(
          () => {
            this.cuts.delete(sessionId);
            this.timedEnds.delete(sessionId);
            this.endAhead(sessionId, mac, down, up, { rate, closeMs });
          },
          Math.max(0, endInMs),
        ),
      );
    } else {
      this.cuts.set(
        sessionId,
        this.ctx.timers.setTimeout(() => this.cutNow(sessionId, mac), endInMs - 1.5 * reading),
      );
    }
  }
}
