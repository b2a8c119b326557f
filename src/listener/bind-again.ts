/**
 * A door whose address could not be bound is tried again, on its own, until it binds: at boot the LAN bridge may have
 * no address yet when the daemon starts (EADDRNOTAVAIL), and a port may still be held by the process that had it
 * (EADDRINUSE). Without this the door stayed shut until an operator's reload. Each keeper (the LAN endpoint, TollGate's
 * door) calls `refused()` when a bind is refused and `done()` when it binds, is stopped, or has nothing to serve; the
 * tries wait FIRST_MS, doubling to MAX_MS, so a door that never binds costs a try every few minutes, and the log says
 * it once (the tries after the first refusal at debug), not at every try.
 */
import type { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { TimerHandle, Timers } from '../time.ts';
import { backgroundTimers } from '../time.ts';

/** The first wait after a refused bind. */
export const FIRST_MS = 2_000;
/** The longest wait between two tries. */
export const MAX_MS = 120_000;

export class BindAgain {
  private timer: TimerHandle | null = null;
  private waitMs = FIRST_MS;
  /** This series of refusals was said already. */
  private said = false;

  /** `attempt`: the keeper's own step, which binds when it can (and calls failed() or done() again). */
  constructor(
    private readonly attempt: () => void,
    private readonly timers: Timers = backgroundTimers,
  ) {}

  /** The bind was refused: the next try is armed (one at a time). Returns the wait before it, ms. */
  failed(): number {
    const wait = this.waitMs;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.attempt();
    }, wait);
    this.waitMs = Math.min(this.waitMs * 2, MAX_MS);
    return wait;
  }

  /** `door`'s bind refused with `e`: said (an error the first time, at debug after that), the next try armed. */
  refused(log: Log, door: string, e: SluiceError): void {
    const fields = { code: e.code, reason: e.message, again_in_s: this.failed() / 1000 };
    if (this.said) log.debug(`${door} still not started`, fields);
    else log.error(`${door} not started: tried again until it binds`, fields);
    this.said = true;
  }

  /** Bound, stopped or nothing to serve: no try is pending, and the next refusal starts at FIRST_MS again. */
  done(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.waitMs = FIRST_MS;
    this.said = false;
  }

  /** Whether a try is armed. */
  get pending(): boolean {
    return this.timer !== null;
  }
}
