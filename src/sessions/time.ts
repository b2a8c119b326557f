/** The clock and timer the sessions area runs on, injected so tests drive fake time. */
export interface Clock {
  /** Wall-clock ms since the epoch (deadlines are wall-clock: they survive restarts). */
  now(): number;
}

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    // Timers alone must not keep the daemon (or a test) alive; sockets do that.
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
