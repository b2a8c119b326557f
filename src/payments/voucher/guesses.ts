/**
 * Wrong voucher codes: the one limit of every voucher door (POST /voucher and ubus `purchase` alike, printed codes and
 * RADIUS's: the RADIUS voucher method owns one and the printed-voucher method in front of it shares it, so the bound
 * holds whichever of the two sells, the book damaged or not), on two bounds, both token buckets on the purchase's
 * clock (PaymentContext.now: pure, tested on fake time):
 *
 * - per client, GUESSES_PER_MINUTE, far below http.rate_limit's payment attempts (a customer mistypes a code or two).
 *   A client is its MAC and, when the door knows it, its IP: a wrong code costs both, and either one empty refuses,
 *   so rotating the MAC alone buys no more tries;
 * - for the whole router, ROUTER_GUESSES_PER_MINUTE, so that an attacker with many addresses (rotated MACs and every
 *   IP of a /24) gets no more guesses than that between them: the time to a hit is stated for him (docs/vouchers.md).
 *
 * A check passes before the code is looked at, right or wrong (else the refusal itself would tell a right code), and
 * takes one of the router's guesses then (so requests in flight at once cannot overdraw it); a code that turns out to
 * be a real ticket gives it back (notAGuess), a wrong one keeps it. While
 * the router's bucket is empty, clients take its guesses in turn, told how long to wait (Retry-After): first those who
 * typed no wrong code for MARK_MS (a customer with his ticket), then those who did, each in the order they were first
 * refused (one turn per client; one that stops asking leaves after WAITER_STALE_MS). A flood from many addresses is
 * all wrong codes, so its addresses queue behind a customer who has typed none: he waits a second or two; one who
 * mistyped waits at most one refill per address ahead of him (≈ 4 min behind a whole /24), never for good.
 */
import { SluiceError } from '../../errors.ts';

export const GUESSES_PER_MINUTE = 5;
/** Wrong codes a minute on the whole router: 60 spread over a minute, one more each second. */
export const ROUTER_GUESSES_PER_MINUTE = 60;
/** Clients remembered; past it the longest-untouched goes (a flood of invented MACs cannot grow the map). */
const MAX_CLIENTS = 4096;
const REFILL_MS = 60_000 / GUESSES_PER_MINUTE;
const ROUTER_REFILL_MS = 60_000 / ROUTER_GUESSES_PER_MINUTE;
/** A client refused by the router's bound that has not asked again within this leaves the turn order. */
const WAITER_STALE_MS = 30_000;
/** How long a wrong code puts a client behind those who typed none. */
const MARK_MS = 10 * 60_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class GuessLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly router: Bucket = { tokens: ROUTER_GUESSES_PER_MINUTE, at: -Infinity };
  /**
   * Clients refused by the router's bound, in the order of their first refusal: when each last asked, and whether it
   * had typed no wrong code then (it goes first).
   */
  private readonly waiting = new Map<string, { at: number; clean: boolean }>();
  /** When each client (turnKey) last typed a wrong code, the longest-untouched first. */
  private readonly wrongAt = new Map<string, number>();

  /**
   * Throws ERR_VOUCHER_GUESS_LIMIT (429, Retry-After) when any of the client's keys has no guess left, or when the
   * router's bound has none for it (its turn has not come).
   */
  check(keys: readonly string[], now: number): void {
    let waitMs = 0;
    for (const k of keys) {
      const b = this.current(k, now);
      if (b.tokens < 1) waitMs = Math.max(waitMs, Math.ceil((1 - b.tokens) * REFILL_MS));
    }
    if (waitMs > 0) {
      throw refusal(`too many wrong voucher codes from this device: please wait ${seconds(waitMs)} seconds`, waitMs);
    }
    const routerWait = this.turn(turnKey(keys), now);
    if (routerWait > 0) {
      throw refusal(
        `too many wrong voucher codes on this network right now: please wait ${seconds(routerWait)} seconds`,
        routerWait,
        'router',
      );
    }
  }

  /** A wrong code: one guess less for each key (the router's was taken by the check). */
  charge(keys: readonly string[], now: number): void {
    for (const k of keys) {
      const b = this.current(k, now);
      b.tokens -= 1;
      this.buckets.delete(k);
      this.buckets.set(k, b);
    }
    while (this.buckets.size > MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
    const client = turnKey(keys);
    this.wrongAt.delete(client);
    this.wrongAt.set(client, now);
    while (this.wrongAt.size > MAX_CLIENTS) this.wrongAt.delete(this.wrongAt.keys().next().value!);
  }

  /** The code checked was a real ticket (sold, or refused as used, expired, revoked): the router's guess comes back. */
  notAGuess(now: number): void {
    this.refillRouter(now);
    this.router.tokens = Math.min(ROUTER_GUESSES_PER_MINUTE, this.router.tokens + 1);
  }

  /**
   * 0 when the router's bound lets `client` guess now, else how long until its turn. The router's guesses left go to
   * the clients waiting in their order (clean ones first); one not waiting may take what those ahead of it leave.
   */
  private turn(client: string, now: number): number {
    this.refillRouter(now);
    for (const [k, w] of this.waiting) if (now - w.at > WAITER_STALE_MS) this.waiting.delete(k);
    const wrong = this.wrongAt.get(client);
    const clean = wrong === undefined || now - wrong > MARK_MS;
    let ahead = 0;
    let seen = false;
    for (const [k, w] of this.waiting) {
      if (k === client) seen = true;
      // Clean clients ahead of it in order; for a marked one, every clean one too.
      else if (w.clean ? !seen || !clean : !seen && !clean) ahead++;
    }
    if (ahead < Math.floor(this.router.tokens)) {
      this.waiting.delete(client);
      this.router.tokens -= 1;
      return 0;
    }
    this.waiting.set(client, { at: now, clean });
    while (this.waiting.size > MAX_CLIENTS) this.waiting.delete(this.waiting.keys().next().value!);
    return Math.ceil((ahead + 1 - this.router.tokens) * ROUTER_REFILL_MS);
  }

  private refillRouter(now: number): void {
    const r = this.router;
    r.tokens = Math.min(ROUTER_GUESSES_PER_MINUTE, r.tokens + Math.max(0, now - r.at) / ROUTER_REFILL_MS);
    r.at = now;
  }

  private current(key: string, now: number): Bucket {
    const b = this.buckets.get(key) ?? { tokens: GUESSES_PER_MINUTE, at: now };
    b.tokens = Math.min(GUESSES_PER_MINUTE, b.tokens + Math.max(0, now - b.at) / REFILL_MS);
    b.at = now;
    return b;
  }
}

/** The keys a purchase's wrong code costs: its MAC and, when the door knows it, its IP. */
export function clientKeys(request: { mac: string; ip?: string | undefined }): string[] {
  return [`mac:${request.mac.toLowerCase()}`, ...(request.ip ? [`ip:${request.ip}`] : [])];
}

/** A client's place in the router's turn order: its IP when the door knows it (MACs are free to rotate), else MAC. */
function turnKey(keys: readonly string[]): string {
  return keys.find((k) => k.startsWith('ip:')) ?? keys[0] ?? '';
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

function refusal(reason: string, waitMs: number, scope?: 'router'): SluiceError {
  const retryAfter = seconds(waitMs);
  return new SluiceError('ERR_VOUCHER_GUESS_LIMIT', `${reason}, then type the code again`, {
    details: { retry_after: retryAfter, ...(scope && { scope }) },
  });
}
