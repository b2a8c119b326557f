/**
 * The pause between attempts at an outside system that did not answer (an MQTT broker, a RADIUS server, an escrow
 * facilitator): capped exponential backoff with optional jitter, written once. Pure: the caller owns the timer, and
 * `random` is injected so tests pin the delays. Jitter keeps routers that lost the same server from all coming back
 * to it in the same second.
 */

export interface BackoffOptions {
  /** The first pause, ms. */
  minMs: number;
  /** The pause stops doubling here (jitter applies on top). */
  maxMs: number;
  /** Each pause is scaled by a factor drawn from [1 - jitter, 1 + jitter]. 0 (the default): exact. */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private current: number;
  private pauses = 0;
  /** The last pause before jitter. */
  private last = 0;

  constructor(private options: BackoffOptions) {
    this.current = options.minMs;
  }

  /** The next pause, ms; the one after it is twice as long, up to maxMs. */
  next(): number {
    const jitter = this.options.jitter ?? 0;
    const factor = jitter === 0 ? 1 : 1 - jitter + 2 * jitter * (this.options.random ?? Math.random)();
    const ms = Math.round(this.current * factor);
    this.last = this.current;
    this.current = Math.min(this.current * 2, this.options.maxMs);
    this.pauses++;
    return ms;
  }

  /** After a success: the next pause is minMs again. */
  reset(): void {
    this.current = this.options.minMs;
    this.pauses = 0;
    this.last = 0;
  }

  /** Pauses taken since the last reset. */
  get count(): number {
    return this.pauses;
  }

  /** Whether the last pause was already the longest (a caller logs the first pause and the capped ones). */
  get capped(): boolean {
    return this.pauses > 0 && this.last >= this.options.maxMs;
  }

  /** New bounds (a reload); the pause under way is not shortened, the next one is capped. */
  configure(bounds: { minMs: number; maxMs: number }): void {
    this.options = { ...this.options, ...bounds };
    this.current = Math.min(this.current, bounds.maxMs);
    if (this.pauses === 0) this.current = bounds.minMs;
  }
}

/**
 * Calls `attempt` until `again` says its result is final or `retries` more attempts were made, pausing `backoff`'s
 * delays in between. For idempotent requests only (a retry must not do the thing twice).
 */
export async function retrying<T>(
  attempt: () => Promise<T>,
  options: { retries: number; again: (result: T) => boolean; backoff: Backoff; sleep?: (ms: number) => Promise<void> },
): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last = await attempt();
  for (let i = 0; i < options.retries && options.again(last); i++) {
    await sleep(options.backoff.next());
    last = await attempt();
  }
  return last;
}
