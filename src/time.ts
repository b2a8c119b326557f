/**
 * The one clock and timer interface every part that takes time is given, so tests drive it with fake time
 * (test/helpers/fake-time.ts) instead of sleeping. Pure logic never reads Date.now or arms a timer itself.
 */

export interface Clock {
  /** Wall-clock ms since the epoch (deadlines are wall-clock: they survive restarts). */
  now(): number;
}

/** Opaque: only the Timers that made it can clear it (the fake returns numbers, Node an object). */
export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Node's own timers: a pending one keeps the process alive, as a caller awaiting it (an ndsctl timeout, a busy retry,
 * a ubus reconnect) expects.
 */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Timers for background work nobody awaits (session deadlines, checkpoints): unref'd, so they alone never keep the
 * daemon (or a test) alive; sockets do that.
 */
export const backgroundTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * `fn` once the I/O callbacks due now and those of the next poll have run (setImmediate twice): the work of one moment
 * goes together. A burst of calls that the bus hands over in pieces arrives in two reads, the second while the first's
 * work runs (32 grants in one burst, read as 20 and 12, or 4 and 28); the journal's write and the nft batcher's run
 * wait for both, so that the 32 share one write and one run instead of the second read's waiting for the first's.
 */
export function afterNextPoll(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}
