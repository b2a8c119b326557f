/**
 * The safety net for a portal whose auth takes no limits (nodogsplash): when metering lags (no committed reading for
 * two poll intervals) past the moment a data session could have used up what it had left, that session is reported
 * (the meter's `metering-overdue` event) so its gate can be closed. A braked session is not: the kernel stops it at its
 * allotment whether metering lags or not. Checked every poll interval while the meter runs.
 */
import type { BrakeWatch } from './brake-watch.ts';
import type { MeterContext } from './context.ts';
import type { CutPlanner } from './cut-planner.ts';

export class BlindWatch {
  /** Sessions reported since the last committed tick (reported once each). */
  private readonly reported = new Set<string>();
  private timer: unknown;

  constructor(
    private readonly ctx: MeterContext,
    private readonly planner: CutPlanner,
    private readonly brakes: BrakeWatch,
    /** When the last committed tick was dispatched (clock ms), if any. */
    private readonly lastReadingAt: () => number | undefined,
  ) {}

  /** The data sessions whose gates must close because metering lags; each once until a tick commits again. */
  check(): string[] {
    const since = this.lastReadingAt();
    if (since === undefined) return [];
    const blindMs = this.ctx.clock.now() - since;
    if (blindMs < 2 * this.ctx.pollIntervalMs) return [];
    const out: string[] = [];
    for (const session of this.ctx.sessions.activeSessions()) {
      if (session.metric !== 'bytes' || this.reported.has(session.id) || this.brakes.braked(session.mac)) continue;
      if (!this.planner.couldRunOutWithin(session, blindMs)) continue;
      this.reported.add(session.id);
      out.push(session.mac);
    }
    return out;
  }

  /** A tick committed: readings resumed, and a session that lags again is reported again. */
  committed(): void {
    this.reported.clear();
  }

  /** Checks every poll interval while the meter runs, reporting to `onOverdue`. */
  start(onOverdue: (macs: string[]) => void): void {
    this.timer = this.ctx.timers.setTimeout(() => {
      if (this.ctx.state !== 'running') return;
      const macs = this.check();
      if (macs.length > 0) onOverdue(macs);
      this.start(onOverdue);
    }, this.ctx.pollIntervalMs);
  }

  stop(): void {
    this.ctx.timers.clearTimeout(this.timer);
  }
}
