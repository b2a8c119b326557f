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
 * be a real ticket gives it back (notAGuess), a wrong one keeps it.
 *
 * The honest customer first: a client none of whose keys typed a wrong code for MARK_MS (a customer with his ticket,
 * and every address a flood has not used yet) is looked at at once, even with the router's bucket empty: its guess
 * is taken on credit, the bucket going below zero, down to ROUTER_DEBT_MAX. Marked clients (a wrong code lately)
 * guess only from a bucket of at least one, so the credit is paid back before any of them guesses again: over any
 * span the codes looked at stay within the bound's rate plus one burst (a full bucket and the credit), and the time
 * to a hit is unchanged. A flood's address gets one look on credit, then waits with the marked; the customer's
 * valid code sells at once. Only a flood of more new addresses than the credit and the refill cover (more than
 * ~1,200 in ten minutes: more than a /22, since a mark lasts MARK_MS) brings the credit to its end; clean clients
 * then wait too, ahead of the marked. Waiting clients take the router's guesses in turn, each in the order it was
 * first refused, told how long (Retry-After); its place is kept until then and WAITER_GRACE_MS more (the pay page
 * sends the code again when the wait is over).
 */
import { refusalWithoutStack, type SluiceError } from '../../errors.ts';
import { PlaceCounts } from './place-counts.ts';

export const GUESSES_PER_MINUTE = 5;
/** Wrong codes a minute on the whole router: 60 spread over a minute, one more each second. */
export const ROUTER_GUESSES_PER_MINUTE = 60;
/** Clients remembered; past it the longest-untouched goes (a flood of invented MACs cannot grow the map). */
const MAX_CLIENTS = 4096;
const REFILL_MS = 60_000 / GUESSES_PER_MINUTE;
const ROUTER_REFILL_MS = 60_000 / ROUTER_GUESSES_PER_MINUTE;
/** A client refused by the router's bound keeps its place until the wait it was told is over and this long more. */
const WAITER_GRACE_MS = 30_000;
/** Place numbers in the waiters' order before they are renumbered from 1: twice the waiters there can be. */
const PLACES = 2 * (MAX_CLIENTS + 1);
/** How long a wrong code puts a client behind those who typed none. */
const MARK_MS = 10 * 60_000;
/** The router's guesses clean clients may take on credit: ten minutes of the bound. */
export const ROUTER_DEBT_MAX = 10 * ROUTER_GUESSES_PER_MINUTE;

interface Bucket {
  tokens: number;
  at: number;
}

interface Waiter {
  until: number;
  clean: boolean;
  place: number;
}

export class GuessLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly router: Bucket = { tokens: ROUTER_GUESSES_PER_MINUTE, at: -Infinity };
  /**
   * Clients refused by the router's bound, in the order of their first refusal: until when its place is kept, and
   * whether it had typed no wrong code then (it goes first); its place number, increasing along the order.
   */
  private readonly waiting = new Map<string, Waiter>();
  /** The places `waiting` holds, clean and marked apart: how many of a kind are ahead of a waiter, without a walk. */
  private places: { clean: PlaceCounts; marked: PlaceCounts } | undefined;
  private nextPlace = 1;
  /** How many of `waiting` are clean: a client not waiting is behind them (clean) or all of them (marked). */
  private cleanWaiting = 0;
  /**
   * No waiter's place ends before this (the least `until`, or less once one is moved later): until then nothing is
   * due to leave and a check need not walk the list to drop them; a flood refuses thousands of checks a minute.
   */
  private waitingUntil = Infinity;
  /** When each key (MAC, IP) last typed a wrong code, the longest-untouched first. */
  private readonly wrongAt = new Map<string, number>();

  /**
   * Throws ERR_VOUCHER_GUESS_LIMIT (429, Retry-After) when any of the client's keys has no guess left, or when the
   * router's bound has none for it (its turn has not come).
   */
  check(keys: readonly string[], now: number): void {
    const refused = this.refusal(keys, now);
    if (refused) throw refused;
  }

  /**
   * check's verdict, returned rather than thrown (undefined: the client may guess now): a door that counts its
   * refusals before throwing throws once, where catching check's to count it and throwing again was a second throw a
   * refused guess (a flood's thousands a minute).
   */
  refusal(keys: readonly string[], now: number): SluiceError | undefined {
    let waitMs = 0;
    for (const k of keys) {
      const b = this.current(k, now);
      if (b.tokens < 1) waitMs = Math.max(waitMs, Math.ceil((1 - b.tokens) * REFILL_MS));
    }
    if (waitMs > 0) {
      return refusal(`too many wrong voucher codes from this device: please wait ${seconds(waitMs)} seconds`, waitMs);
    }
    const routerWait = this.turn(keys, now);
    if (routerWait > 0) {
      return refusal(
        `too many wrong voucher codes on this network right now: please wait ${seconds(routerWait)} seconds`,
        routerWait,
        'router',
      );
    }
    return undefined;
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
    for (const k of keys) {
      this.wrongAt.delete(k);
      this.wrongAt.set(k, now);
    }
    while (this.wrongAt.size > MAX_CLIENTS) this.wrongAt.delete(this.wrongAt.keys().next().value!);
  }

  /** The code checked was a real ticket (sold, or refused as used, expired, revoked): the router's guess comes back. */
  notAGuess(now: number): void {
    this.refillRouter(now);
    this.router.tokens = Math.min(ROUTER_GUESSES_PER_MINUTE, this.router.tokens + 1);
  }

  /**
   * 0 when the router's bound lets the client guess now, else how long until its turn. The router's guesses (and for
   * a clean client its credit) go to the clients waiting in their order, clean ones first; one not waiting may take
   * what those ahead of it leave.
   */
  private turn(keys: readonly string[], now: number): number {
    this.refillRouter(now);
    if (now > this.waitingUntil) this.dropExpiredWaiters(now);
    const client = turnKey(keys);
    const clean = keys.every((k) => {
      const wrong = this.wrongAt.get(k);
      return wrong === undefined || now - wrong > MARK_MS;
    });
    const ahead = this.ahead(client, clean);
    // A clean client may also take the router's guesses on credit; a marked one only those it has.
    const available = this.router.tokens + (clean ? ROUTER_DEBT_MAX : 0);
    if (ahead < Math.floor(available)) {
      this.dropWaiter(client);
      this.router.tokens -= 1;
      return 0;
    }
    const waitMs = Math.ceil((ahead + 1 - available) * ROUTER_REFILL_MS);
    this.setWaiter(client, now + waitMs + WAITER_GRACE_MS, clean);
    while (this.waiting.size > MAX_CLIENTS) this.dropWaiter(this.waiting.keys().next().value!);
    return waitMs;
  }

  /**
   * The waiters ahead of `client`: the clean ones before it in order and, for a marked client, every other clean one
   * and the marked before it. One not waiting is behind them all, counted without a walk.
   */
  private ahead(client: string, clean: boolean): number {
    const own = this.waiting.get(client);
    if (own === undefined) return clean ? this.cleanWaiting : this.waiting.size;
    return (clean ? 0 : this.cleanWaiting - (own.clean ? 1 : 0)) + this.placesOf(clean).before(own.place);
  }

  private placesOf(clean: boolean): PlaceCounts {
    this.places ??= { clean: new PlaceCounts(PLACES), marked: new PlaceCounts(PLACES) };
    return clean ? this.places.clean : this.places.marked;
  }

  /** The next place at the end of the order; when the numbers run out, the waiters are renumbered from 1 first. */
  private newPlace(): number {
    if (this.nextPlace > PLACES) {
      this.placesOf(true).clear();
      this.placesOf(false).clear();
      this.nextPlace = 1;
      for (const w of this.waiting.values()) {
        w.place = this.nextPlace++;
        this.placesOf(w.clean).add(w.place, 1);
      }
    }
    return this.nextPlace++;
  }

  private dropExpiredWaiters(now: number): void {
    let until = Infinity;
    for (const [k, w] of this.waiting) {
      if (now > w.until) this.dropWaiter(k);
      else until = Math.min(until, w.until);
    }
    this.waitingUntil = until;
  }

  /** Sets a waiter's place, kept where it is in the order when it already has one. */
  private setWaiter(client: string, until: number, clean: boolean): void {
    const was = this.waiting.get(client);
    this.cleanWaiting += (clean ? 1 : 0) - (was?.clean ? 1 : 0);
    if (was === undefined) {
      const place = this.newPlace();
      this.waiting.set(client, { until, clean, place });
      this.placesOf(clean).add(place, 1);
    } else {
      if (was.clean !== clean) {
        this.placesOf(was.clean).add(was.place, -1);
        this.placesOf(clean).add(was.place, 1);
      }
      was.until = until;
      was.clean = clean;
    }
    this.waitingUntil = Math.min(this.waitingUntil, until);
  }

  private dropWaiter(client: string): void {
    const was = this.waiting.get(client);
    if (was === undefined) return;
    if (was.clean) this.cleanWaiting--;
    this.placesOf(was.clean).add(was.place, -1);
    this.waiting.delete(client);
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
  return refusalWithoutStack('ERR_VOUCHER_GUESS_LIMIT', `${reason}, then type the code again`, {
    details: { retry_after: retryAfter, ...(scope && { scope }) },
  });
}
