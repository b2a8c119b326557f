/**
 * Wrong voucher codes per client: a token bucket of GUESSES_PER_MINUTE, far below http.rate_limit's payment attempts
 * (a customer mistypes a code or two; a guesser needs ~2^50 / live codes tries). A client is its MAC and, when the
 * door knows it, its IP: a wrong code costs both, and either one empty refuses, so rotating the MAC alone buys no
 * more tries. Time comes from the purchase (PaymentContext.now): pure, tested on fake time.
 */
import { SluiceError } from '../../errors.ts';

export const GUESSES_PER_MINUTE = 5;
/** Clients remembered; past it the longest-untouched goes (a flood of invented MACs cannot grow the map). */
const MAX_CLIENTS = 4096;
const REFILL_MS = 60_000 / GUESSES_PER_MINUTE;

interface Bucket {
  tokens: number;
  at: number;
}

export class GuessLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** Throws ERR_VOUCHER_GUESS_LIMIT when any of the client's keys has no guess left. */
  check(keys: readonly string[], now: number): void {
    let waitMs = 0;
    for (const k of keys) {
      const b = this.current(k, now);
      if (b.tokens < 1) waitMs = Math.max(waitMs, Math.ceil((1 - b.tokens) * REFILL_MS));
    }
    if (waitMs > 0) {
      const retryAfter = Math.ceil(waitMs / 1000);
      throw new SluiceError(
        'ERR_VOUCHER_GUESS_LIMIT',
        `too many wrong voucher codes from this device: please wait ${retryAfter} seconds, then type the code again`,
        {
          details: { httpStatus: 429, retry_after: retryAfter },
        },
      );
    }
  }

  /** A wrong code: one guess less for each key. */
  charge(keys: readonly string[], now: number): void {
    for (const k of keys) {
      const b = this.current(k, now);
      b.tokens -= 1;
      this.buckets.delete(k);
      this.buckets.set(k, b);
    }
    while (this.buckets.size > MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private current(key: string, now: number): Bucket {
    const b = this.buckets.get(key) ?? { tokens: GUESSES_PER_MINUTE, at: now };
    b.tokens = Math.min(GUESSES_PER_MINUTE, b.tokens + Math.max(0, now - b.at) / REFILL_MS);
    b.at = now;
    return b;
  }
}
