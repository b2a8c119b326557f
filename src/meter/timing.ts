/**
 * The meter's sense of time: how long a gate takes to close after a reading, the recent fetch and tick durations the
 * predictions use, and the turn budget that keeps the main thread's share of a tick from holding the event loop.
 */

/**
 * How long a gate takes to close after a reading that took `readMs`: the reading's age when it is decided on (both
 * portals sample their counters early in the call: openNDS runs `iptables -L` first, then a script per client) plus
 * the deauth until the portal stops the client (its first `iptables` calls). Fitted in the openNDS lab: what passed
 * after the reading was 1.0–1.2 × the fetch (44–60 ms after fetches of 43–60 ms, one client at 8 Mbit/s); the earlier
 * 1.5 × the last fetch cut early by up to 62 KiB after one slow fetch.
 */
export function closeOf(readMs: number): number {
  return 1.1 * readMs + 5;
}

/**
 * The median of the last few durations (ms), computed when one is added: it is read for every data session of every
 * tick (the close latency), so reading it costs nothing.
 */
export class RecentTimes {
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

/** The last ticks' durations, written by the tick loop, read by the cut planner's predictions. */
export class TickTimes {
  /** The last committed tick's fetch (ms). */
  lastFetchMs = 0;
  /** The last good tick's whole duration (ms): ticks come no more often than twice this. */
  lastDurationMs = 0;
  /** The last few fetches' times: the close latency follows their median, not one slow fetch. */
  readonly fetches = new RecentTimes(5);

  recordFetch(ms: number): void {
    this.lastFetchMs = ms;
    this.fetches.add(ms);
  }

  /** The close latency a tick's reading implies (closeOf the median fetch). */
  closeOfFetch(): number {
    return closeOf(this.fetches.median(this.lastFetchMs));
  }
}

/**
 * The main thread's share of a tick is split into slices of this many clients, and it gives the event loop a turn
 * (setImmediate: I/O such as a ubus call runs in between) whenever a slice ends more than SLICE_BUDGET_MS after the
 * last turn: a ubus call waits about a millisecond, not for a whole 100k-client tick, on a fast or a slow router alike.
 */
export const SLICE = 256;
const SLICE_BUDGET_MS = 1;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Yields when the current turn has run past the budget. */
export class TurnBudget {
  private since = performance.now();
  async pause(): Promise<void> {
    if (performance.now() - this.since < SLICE_BUDGET_MS) return;
    await yieldToEventLoop();
    this.since = performance.now();
  }
}
