/**
 * Background timers (unref'd, as src/time.ts's backgroundTimers) that a test clears as it closes what it started: a
 * part that retries on its own (the gatekeeper's listing retries) would otherwise fire after its file ended, in the
 * next file's time when a worker thread runs several (docs/testing.md "The edit loop").
 */
import type { TimerHandle, Timers } from '../../src/time.ts';

export class OwnedTimers implements Timers {
  readonly #pending = new Set<ReturnType<typeof setTimeout>>();

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = setTimeout(() => {
      this.#pending.delete(handle);
      fn();
    }, ms);
    handle.unref();
    this.#pending.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#pending.delete(handle as ReturnType<typeof setTimeout>);
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  /** Clears every timer still pending. */
  stop(): void {
    for (const handle of this.#pending) clearTimeout(handle);
    this.#pending.clear();
  }
}
