/**
 * One timer for every time session: a min-heap of (deadline, id), the timer armed for the earliest. Entries replaced
 * by a top-up or removed by an end stay in the heap as stale and are skipped when they surface (the `current` map is
 * the truth), which keeps add/extend/remove O(log n) without searching the heap.
 *
 * Deadlines are wall-clock; timers are monotonic. So the timer never sleeps longer than `maxSleepMs`, and on every
 * fire the due set is re-read from the clock: a clock stepped forward (NTP at boot) ends sessions at most
 * `maxSleepMs` late, a clock stepped back just re-arms.
 */
import type { Clock, TimerHandle, Timers } from './time.ts';

interface Entry {
  at: number;
  id: string;
}

export interface DeadlineSchedulerOptions {
  clock: Clock;
  timers: Timers;
  /** Called with the ids whose deadline passed (in deadline order). */
  onDue: (ids: string[], now: number) => void;
  maxSleepMs?: number;
}

export class DeadlineScheduler {
  private readonly heap: Entry[] = [];
  private readonly current = new Map<string, number>();
  private timer: TimerHandle | null = null;
  private armedFor = Infinity;
  private stopped = false;
  private readonly maxSleepMs: number;

  constructor(private readonly options: DeadlineSchedulerOptions) {
    this.maxSleepMs = options.maxSleepMs ?? 30_000;
  }

  get size(): number {
    return this.current.size;
  }

  /** Adds or moves the deadline of `id`. */
  set(id: string, at: number): void {
    if (this.current.get(id) === at) return;
    this.current.set(id, at);
    this.push({ at, id });
    if (this.heap.length > 64 && this.heap.length > 2 * this.current.size) this.rebuild();
    if (at < this.armedFor) this.arm();
  }

  delete(id: string): void {
    // The timer may now fire for nothing; it then re-arms for the next live entry. Cheaper than re-arming here.
    this.current.delete(id);
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    if (this.stopped) return;
    const now = this.options.clock.now();
    const due: string[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const top = this.pop()!;
      if (this.current.get(top.id) !== top.at) continue;
      this.current.delete(top.id);
      due.push(top.id);
    }
    if (due.length > 0) this.options.onDue(due, now);
    this.arm();
  }

  private arm(): void {
    this.disarm();
    if (this.stopped) return;
    while (this.heap.length > 0 && this.current.get(this.heap[0]!.id) !== this.heap[0]!.at) this.pop();
    const top = this.heap[0];
    if (!top) return;
    const now = this.options.clock.now();
    const delay = Math.min(Math.max(0, top.at - now), this.maxSleepMs);
    this.armedFor = top.at;
    this.timer = this.options.timers.setTimeout(() => this.fire(), delay);
  }

  private disarm(): void {
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [id, at] of this.current) this.push({ at, id });
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): Entry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= last.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
