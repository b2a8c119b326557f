/**
 * What the portal's calls take, as the valve sees them, and what follows for gates whose tokens are not known: one
 * `ndsctl status` first (it shows every client's token: status-tokens.ts; then each auth goes by token) or each auth by
 * its MAC. On openNDS an auth by MAC costs the portal a hash of every listed client first (9.10 ≈ 28 ms + 2.5 ms per
 * listed client, 10.3.1 ≈ 4 ms per listed client), one by token a string compare (≈ 28 ms flat on 9.10); `status`
 * costs 9.10 little (20–40 ms of CPU at 36 clients) and 10.3.1 a lot (340–400 ms: its gateway check), so the choice is
 * made on the durations seen, not on a model: status first when its last duration (scaled up to the clients listed
 * now, when more than then) and `k` auths by token take a fifth less than `k` auths by MAC, or better. Before any
 * status was timed: tried once for a burst of BURST_MIN gates, or once the portal lists PROBE_AT clients (a single
 * customer then costs more by MAC than a status may). Pure.
 */

/** A burst of this many gates whose tokens are unknown tries a status first while none was timed. */
export const BURST_MIN = 4;

/** With this many clients listed, one status is timed for a single gate too (its cost tells from then on). */
export const PROBE_AT = 16;

/** An auth by token before one was timed is taken as this share of one by MAC (a guess on the safe side: 0.5). */
const TOKEN_GUESS = 0.5;

/**
 * The status goes first only if it saves at least this share of the auths by MAC: the estimate is rough (a call's
 * duration moves with the load and the list's length), and a wrong yes costs the whole status.
 */
const MARGIN = 0.8;

/** Weight of the newest duration in the running estimate. */
const NEW_WEIGHT = 0.5;

export class CallCosts {
  #byMacMs: number | undefined;
  #byTokenMs: number | undefined;
  #statusMs: number | undefined;
  #statusClients = 0;

  /** An auth, deauth or lookup by MAC took `ms` (the call alone, not its wait in the queue). */
  byMac(ms: number): void {
    this.#byMacMs = blend(this.#byMacMs, ms);
  }

  /** The same by token. */
  byToken(ms: number): void {
    this.#byTokenMs = blend(this.#byTokenMs, ms);
  }

  /** A status listing `clients` took `ms` (the last one counts: the portal's load changes). */
  status(ms: number, clients: number): void {
    this.#statusMs = ms;
    this.#statusClients = clients;
  }

  /**
   * Whether one status first, then `k` auths by token, takes clearly less than `k` auths by MAC (MARGIN), with `listed`
   * clients in the portal's list now (a status of fewer clients is scaled up); untimed, see the top.
   */
  statusFirst(k: number, listed: number): boolean {
    const mac = this.#byMacMs;
    if (mac === undefined) return k >= BURST_MIN;
    const last = this.#statusMs;
    if (last === undefined) return k >= BURST_MIN || listed >= PROBE_AT;
    const status = last * Math.max(1, listed / Math.max(1, this.#statusClients));
    const token = this.#byTokenMs ?? mac * TOKEN_GUESS;
    return status + k * token < MARGIN * k * mac;
  }
}

function blend(old: number | undefined, ms: number): number {
  return old === undefined ? ms : old + NEW_WEIGHT * (ms - old);
}
