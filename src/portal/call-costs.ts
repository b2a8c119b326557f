/**
 * What the portal's calls take, as the valve sees them, and what follows for a burst of gates whose tokens are not
 * known: one listing first (its tokens then let each auth go by token) or each auth by its MAC. On openNDS a listing
 * costs ≈ 11 ms + 22 ms per listed client, an auth by MAC ≈ 28 ms + 2.5 ms per listed client and one by token ≈ 28 ms
 * flat (docs/captive-portal.md "What a call costs openNDS"), so on paper a listing pays from ~10 auths waiting. But a
 * listing's cost on a real router varies far more than an auth's (1 s more for each listed client that left the
 * neighbour table, pings to clients on another radio), so the choice is made on the durations seen, not on the model:
 * list first when the last listing's duration and `k` auths by token take less than `k` auths by MAC. Pure.
 */

/** Never list first for fewer gates waiting than this. */
export const BURST_MIN = 4;

/** An auth by token before one was timed is taken as this share of one by MAC (a guess on the safe side: 0.5). */
const TOKEN_GUESS = 0.5;

/** Weight of the newest duration in the running estimate. */
const NEW_WEIGHT = 0.5;

export class CallCosts {
  #byMacMs: number | undefined;
  #byTokenMs: number | undefined;
  #listingMs: number | undefined;

  /** An auth, deauth or lookup by MAC took `ms` (the call alone, not its wait in the queue). */
  byMac(ms: number): void {
    this.#byMacMs = blend(this.#byMacMs, ms);
  }

  /** The same by token. */
  byToken(ms: number): void {
    this.#byTokenMs = blend(this.#byTokenMs, ms);
  }

  /** A whole listing took `ms` (the last one counts: the list's length and the portal's state change). */
  listing(ms: number): void {
    this.#listingMs = ms;
  }

  /** Whether one listing first, then `k` auths by token, takes less than `k` auths by MAC. */
  listFirst(k: number): boolean {
    const mac = this.#byMacMs;
    const listing = this.#listingMs;
    if (k < BURST_MIN || mac === undefined || listing === undefined) return false;
    const token = this.#byTokenMs ?? mac * TOKEN_GUESS;
    return listing + k * token < k * mac;
  }
}

function blend(old: number | undefined, ms: number): number {
  return old === undefined ? ms : old + NEW_WEIGHT * (ms - old);
}
