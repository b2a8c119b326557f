import { systemClock, type Clock } from '../time.ts';

/**
 * Every request per minute per client IP, payment or not (page loads, /portal.js, plans, the page's status polls):
 * one page view is about four requests and the page polls /session twice a minute, so a customer reloading in a
 * hurry stays far below it while a flood from one IP is still bounded.
 */
export const REQUESTS_PER_MINUTE = 600;

/**
 * A token bucket per client IP: `perMinute` requests a minute, bursts up to the same. Bounded: at most 4096 IPs
 * tracked.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly clock: Clock = systemClock,
    private readonly maxIps = 4096,
  ) {}

  take(ip: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(ip);
    if (b) {
      b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
      b.at = now;
      this.buckets.delete(ip); // re-insert: the Map's order is least recently used first
    } else {
      b = { tokens: this.perMinute, at: now };
      if (this.buckets.size >= this.maxIps) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(ip, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/**
 * Every LAN door's per-IP rule, written once: each request takes from one bucket (`REQUESTS_PER_MINUTE`, or the
 * payments' rate when that is higher), a payment attempt also from its own (`http.rate_limit` a minute).
 */
export class DoorLimits {
  private readonly requests: RateLimiter;
  private readonly payments: RateLimiter;

  constructor(paymentsPerMinute: number) {
    this.payments = new RateLimiter(paymentsPerMinute);
    this.requests = new RateLimiter(Math.max(REQUESTS_PER_MINUTE, paymentsPerMinute));
  }

  /** Whether a request from `ip` may go on; `paying`: it is a payment attempt (or as costly to repeat). */
  admit(ip: string, paying: boolean): boolean {
    return this.requests.take(ip) && (!paying || this.payments.take(ip));
  }
}
