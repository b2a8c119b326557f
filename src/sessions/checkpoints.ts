/**
 * Usage checkpoint bookkeeping: which sessions' usage changed since the last write, and one timer that fires
 * `checkpointIntervalMs` after the first change. Armed only while there is something to write, so an idle router
 * neither wakes up nor writes, and flash sees at most one usage record per interval — except a data session's first
 * usage, written within FIRST_CHECKPOINT_MS (one extra write a session). A restart bills from a session's counter mark;
 * its purchase already carries the one it starts from (meter/marking-store.ts), so this write is no longer what keeps
 * its first bytes: it replaces an already-open gate's pre-purchase mark early, and bounds what a new portal epoch in
 * the first interval (a re-auth) would leave unbilled.
 */
import type { TimerHandle, Timers } from './time.ts';

/** A data session's first usage reaches flash this soon (ms): after the tick that billed it has finished. */
export const FIRST_CHECKPOINT_MS = 1000;

export class CheckpointSchedule {
  private readonly dirty = new Set<string>();
  private timer: TimerHandle | null = null;
  /** The armed timer is the short one (a first usage). */
  private soon = false;

  constructor(
    private readonly timers: Timers,
    private intervalMs: number,
    private readonly onDue: () => void,
  ) {}

  setInterval(ms: number): void {
    this.intervalMs = ms;
  }

  /** Notes a usage change and arms the timer if it is not running; `first`: this session's first usage (write soon). */
  mark(id: string, first = false): void {
    this.dirty.add(id);
    const soon = first && FIRST_CHECKPOINT_MS < this.intervalMs;
    if (this.timer !== null && (this.soon || !soon)) return;
    this.stop();
    this.soon = soon;
    this.timer = this.timers.setTimeout(
      () => {
        this.timer = null;
        this.soon = false;
        this.onDue();
      },
      soon ? FIRST_CHECKPOINT_MS : this.intervalMs,
    );
  }

  /** An ended session's final usage goes in its end record instead. */
  forget(id: string): void {
    this.dirty.delete(id);
  }

  /** The ids to write now; the set starts over. */
  take(): string[] {
    this.stop();
    const ids = [...this.dirty];
    this.dirty.clear();
    return ids;
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.soon = false;
  }
}
