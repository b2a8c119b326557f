/**
 * Usage checkpoint bookkeeping: which sessions' usage changed since the last write, and one timer that fires
 * `checkpointIntervalMs` after the first change. Armed only while there is something to write, so an idle router
 * neither wakes up nor writes, and flash sees at most one usage record per interval.
 */
import type { TimerHandle, Timers } from './time.ts';

export class CheckpointSchedule {
  private readonly dirty = new Set<string>();
  private timer: TimerHandle | null = null;

  constructor(private readonly timers: Timers, private intervalMs: number, private readonly onDue: () => void) {}

  setInterval(ms: number): void {
    this.intervalMs = ms;
  }

  /** Notes a usage change and arms the timer if it is not running. */
  mark(id: string): void {
    this.dirty.add(id);
    if (this.timer !== null) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.onDue();
    }, this.intervalMs);
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
  }
}
