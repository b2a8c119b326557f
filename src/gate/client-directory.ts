/**
 * Which portal client sent a LAN request: its source IP → its MAC, from the portal's client list.
 *
 * Anyone on the LAN can send requests, and each one needs this answer, so lookups share reads: one list read answers
 * every lookup for `maxAgeMs` after it was asked for, and lookups that arrive while a read is under way wait for that
 * read instead of starting another. The read itself is the caller's (the daemon passes the valve's snapshot at
 * 'lookup' priority, behind every gate command and meter read).
 *
 * A list may predate the device: a phone that joined a moment ago is not on a list read before it came. So an IP the
 * list in hand does not name gets one more look, at a list read after the lookup began, before "not a client"; those
 * reads wait until `maxAgeMs` after the last read was asked for and are shared too, so requests from addresses the
 * portal does not know (anyone on the LAN can send them) add at most one portal read per `maxAgeMs`.
 *
 * An IP that two clients share (a stale DHCP lease, a spoofed address) names no one: the payment would be credited to
 * whichever the portal lists first, so the lookup refuses it instead.
 */
import { SluiceError } from '../errors.ts';
import { systemClock, systemTimers, type Clock, type Timers } from '../time.ts';

/** How long one list answers lookups, by default (a list the meter's ticks read may be as old). */
export const LOOKUP_LIST_MAX_AGE_MS = 1000;

/** What a lookup needs of a portal client. */
export interface ListedClient {
  mac: string;
  ip: string | null;
}

export interface ClientDirectoryOptions {
  /**
   * One read of the portal's whole client list, at most `maxAgeMs` old (a list already read for something else may
   * serve); `maxAgeMs` 0 asks for a list read from now on.
   */
  read(maxAgeMs: number): Promise<readonly ListedClient[]>;
  /** How long one read answers lookups, from when it was asked for. Default 1000 ms. */
  maxAgeMs?: number;
  clock?: Clock;
  timers?: Timers;
}

/** IP → the distinct MACs listed with it. */
type ByIp = ReadonlyMap<string, readonly string[]>;

/**
 * A read of the list for lookups that missed: asked for at `at` (planned, then started), for a list read from then on.
 */
interface Recheck {
  at: number;
  byIp: Promise<ByIp>;
}

export class ClientDirectory {
  readonly #read: (maxAgeMs: number) => Promise<readonly ListedClient[]>;
  readonly #maxAgeMs: number;
  readonly #clock: Clock;
  readonly #timers: Timers;
  #last: { askedAt: number; byIp: ByIp } | undefined;
  #reading: Promise<ByIp> | undefined;
  #lastAskedAt = -Infinity;
  #recheck: Recheck | undefined;
  #reads = 0;

  constructor(options: ClientDirectoryOptions) {
    this.#read = options.read;
    this.#maxAgeMs = options.maxAgeMs ?? LOOKUP_LIST_MAX_AGE_MS;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
  }

  /** List reads started so far (stats, tests). */
  get reads(): number {
    return this.#reads;
  }

  /**
   * The MAC of the one portal client with this IP, or null when none has it. Throws ERR_HTTP_CLIENT_AMBIGUOUS when
   * more than one has it; a failed read rejects every lookup that waited for it (the next lookup reads again).
   */
  async macOf(ip: string): Promise<string | null> {
    const began = this.#clock.now();
    let macs = (await this.#current()).get(ip);
    if (macs === undefined) macs = (await this.#listReadSince(began)).get(ip);
    if (macs === undefined) return null;
    if (macs.length > 1) {
      throw new SluiceError(
        'ERR_HTTP_CLIENT_AMBIGUOUS',
        `more than one device on this WiFi has your address (${ip}), so a payment could reach the wrong one: ` +
          'reconnect to the WiFi and try again',
        { details: { ip, clients: macs.length } },
      );
    }
    return macs[0]!;
  }

  #current(): Promise<ByIp> {
    const now = this.#clock.now();
    if (this.#last !== undefined && now - this.#last.askedAt < this.#maxAgeMs) return Promise.resolve(this.#last.byIp);
    if (this.#reading !== undefined) return this.#reading;
    const reading = this.#readAt(now, this.#maxAgeMs).finally(() => {
      this.#reading = undefined;
    });
    this.#reading = reading;
    return reading;
  }

  /**
   * A list read from `since` on: the planned recheck if it starts then or later, else a new one, spaced from the last
   * read.
   */
  #listReadSince(since: number): Promise<ByIp> {
    if (this.#recheck !== undefined && this.#recheck.at >= since) return this.#recheck.byIp;
    const now = this.#clock.now();
    const at = Math.max(now, this.#lastAskedAt + this.#maxAgeMs, (this.#recheck?.at ?? -Infinity) + this.#maxAgeMs);
    const byIp = new Promise<void>((resolve) => {
      if (at <= now) resolve();
      else this.#timers.setTimeout(resolve, at - now);
    }).then(() => this.#readAt(this.#clock.now(), 0));
    const recheck: Recheck = { at, byIp };
    this.#recheck = recheck;
    // A failed read answers the lookups that waited for it, not the ones that come after.
    byIp.catch(() => {
      if (this.#recheck === recheck) this.#recheck = undefined;
    });
    return byIp;
  }

  #readAt(now: number, maxAgeMs: number): Promise<ByIp> {
    this.#reads++;
    this.#lastAskedAt = Math.max(this.#lastAskedAt, now);
    return this.#read(maxAgeMs).then((clients) => {
      const byIp = indexByIp(clients);
      if (this.#last === undefined || this.#last.askedAt <= now) this.#last = { askedAt: now, byIp };
      return byIp;
    });
  }
}

function indexByIp(clients: readonly ListedClient[]): ByIp {
  const byIp = new Map<string, string[]>();
  for (const { mac, ip } of clients) {
    if (ip === null || ip === '') continue;
    const macs = byIp.get(ip);
    if (macs === undefined) byIp.set(ip, [mac]);
    else if (!macs.includes(mac)) macs.push(mac);
  }
  return byIp;
}
