/**
 * Usage checkpoint bookkeeping: which sessions' usage changed since the last write, and one timer, due
 * `checkpointIntervalMs` after the last write (at once when a change comes later than that). Armed only while there is
 * something to write, so an idle router neither wakes up nor writes, and flash sees at most one usage record per
 * interval — except a data session's first usage, written within FIRST_CHECKPOINT_MS (one extra write a session).
 * Due from the last write, not from the first change after it (the meter's next bill, up to a poll later, would put
 * it off by that much): a crash or a power cut loses at most an interval of billing, the traffic of an interval and a
 * poll (docs/configuration.md). A restart bills from a session's counter mark; its purchase already carries the one it
 * starts from (marking-store.ts), so this write is no longer what keeps its first bytes: it replaces an already-open
 * gate's pre-purchase mark early, and bounds what a new portal epoch in the first interval (a re-auth) would leave
 * unbilled.
 */
import type { Clock, TimerHandle, Timers } from './time.ts';

/** A data session's first usage reaches flash this soon (ms): after the tick that billed it has finished. */
export const FIRST_CHECKPOINT_MS = 1000;

export class CheckpointSchedule {
  private readonly dirty = new Set<string>();
  /**
   * By registry slot: the id marked there since the timer was last stopped, so markAt skips the Set for a session
   * already in it with the timer armed (the meter marks every billed session every tick: a Set lookup each was a fifth
   * of a 10k tick's billing, docs/performance.md). Emptied whenever the timer stops (take() stops it too), so a name
   * here always means: in the Set, timer armed. A forgotten (ended) session may still be named: ids are never reused,
   * and an ended session is not billed.
   */
  private readonly markedIds: Array<string | undefined> = [];
  private timer: TimerHandle | null = null;
  /** The armed timer is the short one (a first usage). */
  private soon = false;
  /** When the usage was last taken for a write (or the schedule began). */
  private lastTakenAt: number;

  constructor(
    private readonly timers: Timers,
    private readonly clock: Clock,
    private intervalMs: number,
    private readonly onDue: () => void,
  ) {
    this.lastTakenAt = clock.now();
  }

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
    // Bounded by the interval: a wall clock set back (NTP at boot) must not put the next write off for that long.
    const regular = Math.min(this.intervalMs, Math.max(0, this.lastTakenAt + this.intervalMs - this.clock.now()));
    this.timer = this.timers.setTimeout(
      () => {
        this.timer = null;
        this.stop();
        this.onDue();
      },
      soon ? Math.min(FIRST_CHECKPOINT_MS, regular) : regular,
    );
  }

  /**
   * mark() for a session in registry slot `slot` (-1: unknown): the same effect, without the Set when it is a no-op.
   */
  markAt(id: string, slot: number, first = false): void {
    if (!first && slot >= 0 && this.markedIds[slot] === id) return;
    this.mark(id, first);
    if (slot >= 0) this.markedIds[slot] = id;
  }

  /** An ended session's final usage goes in its end record instead. */
  forget(id: string): void {
    this.dirty.delete(id);
  }

  /** The ids to write now; the set starts over. */
  take(): string[] {
    this.stop();
    this.lastTakenAt = this.clock.now();
    const ids = [...this.dirty];
    this.dirty.clear();
    return ids;
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.soon = false;
    this.markedIds.length = 0;
  }
}
