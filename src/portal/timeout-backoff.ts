/**
 * After a call the portal did not answer in time, the next call waits before it starts: openNDS serves its socket one
 * request at a time and still does the work of a request whose caller gave up (openNDS 10.3.1 at 64 clients on a loaded
 * machine took ≈ 30 s per call), so asking again at once only lengthens its queue. Over the socket the runner first
 * waits for the portal's late answer to that call (runner.ts #execSocket); this pause follows when none came (the
 * portal frozen, gone). The pause doubles with each timeout
 * in a row, `firstMs`, 2×, 4× … up to `maxMs`, and the deadline of the calls after it doubles with it (up to
 * MAX_DEADLINE_FACTOR × the configured one), so that a portal that answers slowly is answered at last instead of
 * being asked again and again; the first answer of any kind (a yes, a no, busy) ends both. Pure.
 */
export class TimeoutBackoff {
  #inARow = 0;
  #pending = false;

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {}

  /** Timeouts in a row so far (0: the portal answered the last call). */
  get inARow(): number {
    return this.#inARow;
  }

  /** A call timed out. */
  timedOut(): void {
    this.#inARow++;
    this.#pending = true;
  }

  /**
   * The portal answered a call (in whatever way). `late`: only after nudges of its accept (accept-nudge.ts): its queue
   * is behind for good, so the longer deadline stays (a call that needs the second nudge is not cut short).
   */
  answered(late = false): void {
    this.#pending = false;
    if (!late) this.#inARow = 0;
  }

  /** How long the next call waits before it starts (0: not at all), taken once per timeout. */
  takePause(): number {
    if (!this.#pending) return 0;
    this.#pending = false;
    return Math.min(this.maxMs, this.firstMs * 2 ** Math.min(30, this.#inARow - 1));
  }

  /** A call's deadline: the configured one, doubled for each timeout in a row, at most MAX_DEADLINE_FACTOR times it. */
  deadline(timeoutMs: number): number {
    return timeoutMs * Math.min(MAX_DEADLINE_FACTOR, 2 ** Math.min(30, this.#inARow));
  }
}

/** A deadline grows at most to this many times `main.ndsctl_timeout` after timeouts in a row (5 s → 40 s). */
export const MAX_DEADLINE_FACTOR = 8;
