/**
 * A method's background pass, written once: x402 `exact`'s resolver of unanswered settles, escrow's closes and
 * consumes, batch-settlement's settler (claim, settle, refund) and withdrawal watch, upto's due settles. Each was a
 * hand-written timer; the rules they share live here:
 *  - a pass never overlaps itself: a caller of run() joins the pass in flight; a timer that comes due during a pass
 *    runs one more pass right after it (what arrived meanwhile is not left for a later event);
 *  - soon(ms) asks for a pass within ms: the earliest request wins, one timer at a time;
 *  - start() arms the first pass due at once (or after `firstInMs`; null: none until asked): a timer, so the owner's
 *    caller returns first;
 *  - a pass that fails is told (`failed`, the owner's log line) and tried again after a pause from src/backoff.ts
 *    (`retry`: doubling from minMs to maxMs, back to minMs after a pass that succeeds); one that succeeds may ask for
 *    the next (`next`);
 *  - stop() arms no more timers, aborts `signal` (the owner's exchanges in flight end: its facilitator clients take
 *    this signal) and resolves once the pass in flight has ended. A run() after stop() still runs (an explicit call:
 *    a refund request), it only schedules nothing.
 */
import { Backoff, type BackoffOptions } from '../backoff.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../time.ts';
import { stopController } from '../stop-signal.ts';

export type RetryBounds = Pick<BackoffOptions, 'minMs' | 'maxMs'>;

export interface ScheduledPassOptions<T> {
  /** One pass. `signal` is the pass's own (aborted by stop()). */
  run(signal: AbortSignal): Promise<T>;
  /** After a pass that succeeded: ms until the next one, or undefined for none until asked (soon, run). */
  next?(result: T): number | undefined;
  /**
   * The pauses after a pass that failed (maxMs equal to minMs: a fixed pause); a function is read at each failure (a
   * pause that follows the owner's settings).
   */
  retry: RetryBounds | (() => RetryBounds);
  /** A pass failed and is tried again in `retryInMs` (the owner says so in its log). */
  failed(err: unknown, retryInMs: number): void;
  /** The owner has stopped by other means (its method closed): no timer is armed then. */
  halted?(): boolean;
  clock?: Clock;
  /** Background timers by default: a pending pass alone never keeps the daemon (or a test) alive. */
  timers?: Timers;
}

export class ScheduledPass<T> {
  private readonly clock: Clock;
  private readonly timers: Timers;
  /** Made at the first failure (a function's bounds are read then). */
  private backoff: Backoff | undefined;
  private readonly stopping = stopController();
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private timer: TimerHandle | undefined;
  private timerAt = 0;
  private inFlight: Promise<T> | undefined;
  /** A timer came due during the pass in flight: one more pass after it. */
  private again = false;

  constructor(private readonly options: ScheduledPassOptions<T>) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
  }

  /** Aborted by stop(): what the owner's exchanges take, so the stop ends them. */
  get signal(): AbortSignal {
    return this.stopping.signal;
  }

  /** 'started' once start() ran, until stop(). */
  get started(): boolean {
    return this.state === 'started';
  }

  /** The first pass due now (or after `firstInMs`; null: none until asked), then as passes ask. Once only. */
  start(firstInMs: number | null = 0): void {
    if (this.state !== 'idle') return;
    this.state = 'started';
    if (firstInMs !== null) this.soon(firstInMs);
  }

  /** A pass within `ms` (an earlier request stands; a later one moves nothing). */
  soon(ms: number): void {
    if (this.state === 'stopped' || this.options.halted?.()) return;
    const at = this.clock.now() + ms;
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.timers.setTimeout(
      () => {
        this.timer = undefined;
        if (this.inFlight) {
          this.again = true;
          return;
        }
        void this.run().catch(() => undefined);
      },
      Math.max(0, ms),
    );
  }

  /** A pass now, or the one in flight. Rejects when it fails (it is tried again all the same). */
  run(): Promise<T> {
    this.inFlight ??= this.once().finally(() => {
      this.inFlight = undefined;
      if (this.again) {
        this.again = false;
        this.soon(0);
      }
    });
    return this.inFlight;
  }

  private async once(): Promise<T> {
    let result: T;
    try {
      result = await this.options.run(this.stopping.signal);
    } catch (err) {
      const pause = this.pauseAfterFailure();
      if (this.state !== 'stopped') this.options.failed(err, pause);
      this.soon(pause);
      throw err;
    }
    this.backoff?.reset();
    const next = this.options.next?.(result);
    if (next !== undefined) this.soon(next);
    return result;
  }

  private pauseAfterFailure(): number {
    const { retry } = this.options;
    const bounds = typeof retry === 'function' ? retry() : retry;
    if (!this.backoff) this.backoff = new Backoff({ minMs: bounds.minMs, maxMs: bounds.maxMs });
    else if (typeof retry === 'function') this.backoff.configure(bounds);
    return this.backoff.next();
  }

  /** No more timers; the exchanges in flight are aborted; resolves once the pass in flight has ended. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.again = false;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.inFlight?.catch(() => undefined);
  }
}
