/**
 * What the portal's calls take, as the valve sees them, and what follows for a burst of gates whose tokens are not
 * known: one listing first (its tokens then let each auth go by token) or each auth by its MAC. On openNDS a listing
 * costs ≈ 11 ms + 22 ms per listed client, an auth by MAC ≈ 28 ms + 2.5 ms per listed client and one by token ≈ 28 ms
 * flat (docs/captive-portal.md "What a call costs openNDS"), so on paper a listing pays from ~10 auths waiting. But a
 * listing's cost on a real router varies far more than an auth's (1 s more for each listed client that left the
 * neighbour table, pings to clients on another radio), so the choice is made on the durations seen, not on the model:
 * list first when the last listing's duration (scaled up to the clients listed now, when more than then) and `k` auths
 * by token take a fifth less than `k` auths by MAC, or better. Pure.
 */

/** Never list first for fewer gates waiting than this. */
export const BURST_MIN = 4;

/** An auth by token before one was timed is taken as this share of one by MAC (a guess on the safe side: 0.5). */
const TOKEN_GUESS = 0.5;

/**
 * The listing goes first only if it saves at least this share of the auths by MAC: the estimate is rough (a listing's
 * duration moves with the load and the list's length), and a wrong yes costs the whole listing. In the lab a listing
 * for 8 gates took 1.17 s where their auths by MAC would have taken ~1.3 s and by token 0.4 s.
 */
const MARGIN = 0.8;

/** Weight of the newest duration in the running estimate. */
const NEW_WEIGHT = 0.5;

export class CallCosts {
  #byMacMs: number | undefined;
  #byTokenMs: number | undefined;
  #listingMs: number | undefined;
  #listingClients = 0;

  /** An auth, deauth or lookup by MAC took `ms` (the call alone, not its wait in the queue). */
  byMac(ms: number): void {
    this.#byMacMs = blend(this.#byMacMs, ms);
  }

  /** The same by token. */
  byToken(ms: number): void {
    this.#byTokenMs = blend(this.#byTokenMs, ms);
  }

  /** A whole listing of `clients` took `ms` (the last one counts: the portal's load changes). */
  listing(ms: number, clients: number): void {
    this.#listingMs = ms;
    this.#listingClients = clients;
  }

  /**
   * Whether one listing first, then `k` auths by token, takes clearly less than `k` auths by MAC (MARGIN), with
   * `listed` clients in the portal's list now (a listing costs per client: one of fewer clients is scaled up).
   */
  listFirst(k: number, listed: number): boolean {
    const mac = this.#byMacMs;
    const last = this.#listingMs;
    if (k < BURST_MIN || mac === undefined || last === undefined) return false;
    const listing = last * Math.max(1, listed / Math.max(1, this.#listingClients));
    const token = this.#byTokenMs ?? mac * TOKEN_GUESS;
    return listing + k * token < MARGIN * k * mac;
  }
}

function blend(old: number | undefined, ms: number): number {
  return old === undefined ? ms : old + NEW_WEIGHT * (ms - old);
}
