/**
 * The one fake clock + timers for tests: any part that takes src/time.ts's Clock/Timers runs on it. Timers run on the
 * monotonic `elapsed`; `now()` is the wall clock = start + elapsed + jumps, so a test can step the wall clock (NTP)
 * without moving timers.
 */
import type { Clock, TimerHandle, Timers } from '../../src/time.ts';

export class FakeTime implements Clock, Timers {
  private elapsed = 0;
  private wallOffset: number;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();
  armed = 0;

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.wallOffset = start;
  }

  now(): number {
    return this.wallOffset + this.elapsed;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { due: this.elapsed + Math.max(0, ms), fn });
    this.armed++;
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** Timers currently armed. */
  pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.elapsed + ms;
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const entry of this.timers)
        if (entry[1].due <= target && (!next || entry[1].due < next[1].due)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.elapsed = Math.max(this.elapsed, next[1].due);
      next[1].fn();
      await settle();
    }
    this.elapsed = target;
    await settle();
  }

  /** Steps the wall clock only (timers keep their monotonic due time). */
  jumpWall(ms: number): void {
    this.wallOffset += ms;
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
