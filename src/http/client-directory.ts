/**
 * Which portal client sent a LAN request: its source IP → its MAC, from the portal's client list.
 *
 * Anyone on the LAN can send requests, and each one needs this answer, so lookups share reads: one list read answers
 * every lookup for `maxAgeMs` after it was asked for, and lookups that arrive while a read is under way wait for that
 * read instead of starting another. The read itself is the caller's (the daemon passes the valve's snapshot at
 * 'lookup' priority, behind every gate command and meter read).
 *
 * An IP that two clients share (a stale DHCP lease, a spoofed address) names no one: the payment would be credited to
 * whichever the portal lists first, so the lookup refuses it instead.
 */
import { SluiceError } from '../errors.ts';
import { systemClock, type Clock } from '../time.ts';

/** How long one list answers lookups, by default: also how old a list the meter's ticks read may be (daemon.ts). */
export const LOOKUP_LIST_MAX_AGE_MS = 1000;

/** What a lookup needs of a portal client. */
export interface ListedClient {
  mac: string;
  ip: string | null;
}

export interface ClientDirectoryOptions {
  /** One read of the portal's whole client list. */
  read(): Promise<readonly ListedClient[]>;
  /** How long one read answers lookups, from when it was asked for. Default 1000 ms. */
  maxAgeMs?: number;
  clock?: Clock;
}

/** IP → the distinct MACs listed with it. */
type ByIp = ReadonlyMap<string, readonly string[]>;

export class ClientDirectory {
  readonly #read: () => Promise<readonly ListedClient[]>;
  readonly #maxAgeMs: number;
  readonly #clock: Clock;
  #last: { askedAt: number; byIp: ByIp } | undefined;
  #reading: Promise<ByIp> | undefined;
  #reads = 0;

  constructor(options: ClientDirectoryOptions) {
    this.#read = options.read;
    this.#maxAgeMs = options.maxAgeMs ?? LOOKUP_LIST_MAX_AGE_MS;
    this.#clock = options.clock ?? systemClock;
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
    const macs = (await this.#current()).get(ip);
    if (macs === undefined) return null;
    if (macs.length > 1) {
      throw new SluiceError('ERR_HTTP_CLIENT_AMBIGUOUS',
        `more than one device on this WiFi has your address (${ip}), so a payment could reach the wrong one: reconnect to the WiFi and try again`,
        { details: { ip, clients: macs.length } });
    }
    return macs[0]!;
  }

  #current(): Promise<ByIp> {
    const now = this.#clock.now();
    if (this.#last !== undefined && now - this.#last.askedAt < this.#maxAgeMs) return Promise.resolve(this.#last.byIp);
    if (this.#reading !== undefined) return this.#reading;
    this.#reads++;
    const reading = this.#read().then((clients) => {
      const byIp = indexByIp(clients);
      this.#last = { askedAt: now, byIp };
      return byIp;
    }).finally(() => { this.#reading = undefined; });
    this.#reading = reading;
    return reading;
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
