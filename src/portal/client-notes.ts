/**
 * What the valve remembers of each client between its calls to the portal, and what it decides from that alone: the
 * clients the portal did not list at their last open (looked up before an auth for a while: UNLISTED_LOOKUP_MS), those
 * whose last auth's outcome is unknown (looked up first at their next open), and the address each had at the valve's
 * last look. Bounded, no I/O: the valve's open (valve-open.ts) and its lookups write and read it.
 */

/**
 * How long open() looks up first a client the portal did not know (the gate's retries of an unlisted client last a
 * minute: gate/options.ts LISTING_WAIT_MS), and how many such clients it remembers.
 */
export const UNLISTED_LOOKUP_MS = 60_000;
export const UNLISTED_MAX = 256;

export class ClientNotes {
  /** Clients the portal did not know at their last open, and when: looked up before an auth until it lists them. */
  readonly #unlisted = new Map<string, number>();
  /**
   * Clients whose last auth's outcome is unknown (ERR_NDSCTL_TIMEOUT: openNDS still does a request whose caller left;
   * ERR_PORTAL_AUTH_UNKNOWN: an abnormal reply or a dropped connection no look answered after): their next open asks
   * first whether that auth took. Bounded as
   * #unlisted.
   */
  readonly #authUnknown = new Set<string>();
  /**
   * The address each client had when the valve last looked it up (open, close, client): what the gate tells a session.
   */
  readonly #ips = new Map<string, string>();

  /** The portal did not list `mac` at a lookup. */
  unlisted(mac: string): void {
    // Bounded: the oldest go first (a Map keeps the order they were noted in).
    if (this.#unlisted.size >= UNLISTED_MAX) this.#unlisted.delete(this.#unlisted.keys().next().value!);
    this.#unlisted.set(mac, Date.now());
  }

  /** The portal listed `mac` at a lookup. */
  listed(mac: string): void {
    this.#unlisted.delete(mac);
  }

  /** Whether `mac` was unlisted within UNLISTED_LOOKUP_MS (a mark older than that is dropped). */
  recentlyUnlisted(mac: string): boolean {
    const since = this.#unlisted.get(mac);
    if (since !== undefined && Date.now() - since < UNLISTED_LOOKUP_MS) return true;
    this.#unlisted.delete(mac);
    return false;
  }

  /** An auth of `mac` whose outcome is unknown. */
  authUnknown(mac: string): void {
    if (this.#authUnknown.size >= UNLISTED_MAX) this.#authUnknown.delete(this.#authUnknown.values().next().value!);
    this.#authUnknown.add(mac);
  }

  /** Whether the last auth of `mac` had an unknown outcome; the mark goes (the open that asks looks first). */
  takeAuthUnknown(mac: string): boolean {
    return this.#authUnknown.delete(mac);
  }

  /** The client's address as the portal last showed it (or authed it with); none: forgotten. */
  ip(mac: string, ip: string | null | undefined): void {
    if (ip) this.#ips.set(mac, ip);
    else this.#ips.delete(mac);
  }

  lastIp(mac: string): string | null {
    return this.#ips.get(mac) ?? null;
  }
}
