/**
 * Every portal client's address as the tick's own reading of the list showed it, for the LAN endpoint's IP → MAC
 * lookups: a lookup then needs no read of the portal's list of its own, which on openNDS runs a script per listed
 * client (docs/captive-portal.md "What a poll costs openNDS"). While lookups come (ADDRESS_INTEREST_MS after the
 * last), each tick's task asks the worker to hand back the MAC and IP of every client of the snapshot it read anyway.
 * A lookup takes the list of a tick dispatched at most `maxAgeMs` ago, or asks for a tick now and takes its list;
 * null (that tick was skipped, or none came in time) tells the caller to read the portal itself.
 */
import type { Timers } from '../time.ts';

export interface ListedAddress {
  mac: string;
  ip: string | null;
}

/** How long after a lookup the ticks keep handing back addresses. */
export const ADDRESS_INTEREST_MS = 60_000;

/** A lookup waiting for a list: `since`, the earliest dispatch time of a tick whose list answers it. */
interface Waiter {
  since: number;
  finish(list: ListedAddress[] | null): void;
}

/**
 * A tick's list as the worker handed it back (mac, ip, …), and the forms lookups read, made on the first read: while
 * the interest lasts every tick brings one, and most are replaced unread (the tick's main-thread turn stays short).
 */
class TickList {
  #list: ListedAddress[] | undefined;
  #byMac: Map<string, string | null> | undefined;

  constructor(
    readonly at: number,
    private readonly flat: readonly string[],
  ) {}

  get list(): ListedAddress[] {
    if (this.#list === undefined) {
      const list: ListedAddress[] = [];
      for (let i = 0; i + 1 < this.flat.length; i += 2)
        list.push({ mac: this.flat[i]!, ip: this.flat[i + 1] === '' ? null : this.flat[i + 1]! });
      this.#list = list;
    }
    return this.#list;
  }

  ipOf(mac: string): string | null {
    this.#byMac ??= new Map(this.list.map((a) => [a.mac, a.ip]));
    return this.#byMac.get(mac) ?? null;
  }
}

export class AddressBook {
  #wantedUntil = 0;
  #latest: TickList | undefined;
  #waiters: Waiter[] = [];

  constructor(
    private readonly timers: Timers,
    private readonly requestTick: () => void,
  ) {}

  /** Whether a tick dispatched at `now` should hand back addresses. */
  wanted(now: number): boolean {
    return now < this.#wantedUntil || this.#waiters.length > 0;
  }

  /** Whether a lookup waits for a list (a tick that lists the portal only when asked lists for it). */
  waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /**
   * A tick's outcome. `asked`: its task asked for addresses; `flat`: what it handed back (mac, ip, mac, ip, …; '' for
   * no address), undefined when the tick was skipped. A tick that was not asked leaves the waiters for the next one,
   * and so does one dispatched before a waiter's `since` (it was in flight when the lookup came, and read an older
   * list).
   */
  record(at: number, asked: boolean, flat: readonly string[] | undefined): void {
    if (!asked) return;
    const waiters = this.#waiters.filter((w) => w.since <= at);
    this.#waiters = this.#waiters.filter((w) => w.since > at);
    if (flat === undefined) {
      for (const w of waiters) w.finish(null);
      return;
    }
    const read = new TickList(at, flat);
    if (this.#latest === undefined || this.#latest.at <= at) this.#latest = read;
    for (const w of waiters) w.finish(read.list);
  }

  /**
   * The address the latest list shows for `mac`, if a tick dispatched at most `maxAgeMs` before `now` read it; null
   * when it shows none or no list is that fresh. Asks for nothing.
   */
  ipOf(mac: string, now: number, maxAgeMs: number): string | null {
    const latest = this.#latest;
    return latest === undefined || now - latest.at > maxAgeMs ? null : latest.ipOf(mac);
  }

  /**
   * The list of a tick dispatched at most `maxAgeMs` before `now`: the latest one's, else the next such tick's (null
   * after `waitMs`). `maxAgeMs` 0 asks for the list of a tick dispatched from `now` on.
   */
  get(now: number, maxAgeMs: number, waitMs: number): Promise<ListedAddress[] | null> {
    this.#wantedUntil = now + ADDRESS_INTEREST_MS;
    if (this.#latest !== undefined && now - this.#latest.at <= maxAgeMs) return Promise.resolve(this.#latest.list);
    return new Promise((resolve) => {
      let done = false;
      const waiter: Waiter = {
        since: now - maxAgeMs,
        finish: (list) => {
          if (done) return;
          done = true;
          this.timers.clearTimeout(timer);
          resolve(list);
        },
      };
      const timer = this.timers.setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.finish(null);
      }, waitMs);
      this.#waiters.push(waiter);
      this.requestTick();
    });
  }
}
