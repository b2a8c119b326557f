/**
 * The valve's calls to openNDS by a client's token when the portal showed one beside the client's MAC (tokens.ts):
 * `auth <token>`, `deauth <token>` and `json <token>` cost openNDS ≈ 28 ms flat where the MAC's cost 28 ms + 2.5 ms
 * per listed client (docs/captive-portal.md "What a call costs openNDS"). A token is only ever a way to the MAC's own
 * answer, never a replacement for it:
 * - a lookup by token counts only when its answer names the MAC (else the MAC is asked);
 * - a no to an auth or a deauth by token drops the token, and the caller asks again by MAC (a token the portal no
 *   longer holds answers no, and so does a client in another state: only the MAC's no is the client's).
 * A token no listing showed may come from the package's BinAuth, which keeps each client's token at its auth
 * (binauth-tokens.ts): asked for deauths and lookups, never for an auth. After an auth of the client whose outcome
 * is unknown (a timeout; an abnormal reply or a dropped connection no look answered), a token kept there says the
 * portal did that auth after all (keptAtAuth, which notes it for the lookup; the valve asks only then: a device on a
 * new address is a second client of the same MAC, and the token kept may be the first's). It also times
 * the calls and, for gates whose tokens are unknown, says whether one `ndsctl status` first (every client's token)
 * costs less than their auths by MAC (call-costs.ts).
 */
import { SluiceError } from '../errors.ts';
import { CallCosts } from './call-costs.ts';
import { PortalTokens } from './tokens.ts';
import type { NdsctlExec, NdsctlResult } from './runner.ts';
import type { PortalClient, PortalSnapshot } from './types.ts';

/** The token the portal's BinAuth kept for a MAC (canonical), if any (binauth-tokens.ts). */
export type BinauthTokens = (mac: string) => Promise<string | undefined>;

export class TokenCalls {
  readonly tokens = new PortalTokens();
  readonly costs = new CallCosts();
  /** Gates waiting for their turn in the queue, by MAC (a count: the same MAC may wait twice). */
  readonly #queued = new Map<string, number>();
  readonly #binauth: BinauthTokens | undefined;
  /** Calls made by a token (auths, deauths, lookups), a no included. */
  #calls = 0;

  /** `binauth`: the tokens the portal's BinAuth kept, for deauths and lookups no listing showed a token for. */
  constructor(binauth?: BinauthTokens) {
    this.#binauth = binauth;
  }

  /** A gate of `mac` waits for its turn; the function returned says it left the queue (idempotent). */
  enqueue(mac: string): () => void {
    this.#queued.set(mac, (this.#queued.get(mac) ?? 0) + 1);
    let waiting = true;
    return () => {
      if (!waiting) return;
      waiting = false;
      const n = (this.#queued.get(mac) ?? 1) - 1;
      if (n > 0) this.#queued.set(mac, n);
      else this.#queued.delete(mac);
    };
  }

  /**
   * The token to reach `mac` by for a deauth or a lookup: the one a listing or a lookup showed, else the one the
   * BinAuth kept at the client's auth (noted, so that it is dropped as any other once refused or spent).
   */
  async known(mac: string): Promise<string | undefined> {
    const seen = this.tokens.of(mac);
    if (seen !== undefined || this.#binauth === undefined) return seen;
    const kept = await this.#binauth(mac);
    // A token the book pairs with another MAC is that client's as far as anything the portal showed says.
    if (kept === undefined || (this.tokens.holderOf(kept) ?? mac) !== mac) return undefined;
    this.tokens.note(mac, kept);
    return kept;
  }

  /**
   * Whether the BinAuth kept a token for `mac` at an auth since its last deauth (see the top): the portal may have
   * opened its gate already. The token is noted, so that a lookup goes by it.
   */
  async keptAtAuth(mac: string): Promise<boolean> {
    if (this.#binauth === undefined) return false;
    const kept = await this.#binauth(mac);
    if (kept === undefined || (this.tokens.holderOf(kept) ?? mac) !== mac) return false;
    this.tokens.note(mac, kept);
    return true;
  }

  /**
   * An auth or deauth by token (`args` name the token): its result when the portal said yes; null, the token dropped,
   * when it said no. Any other failure throws, as by MAC.
   */
  async byToken(exec: NdsctlExec, mac: string, args: readonly string[]): Promise<NdsctlResult | null> {
    try {
      return await this.timed(exec, args, 'token');
    } catch (err) {
      if (!(err instanceof SluiceError) || err.code !== 'ERR_NDSCTL_REJECTED') throw err;
      this.tokens.forget(mac);
      return null;
    }
  }

  /** How many calls went by a token since start. */
  get calls(): number {
    return this.#calls;
  }

  /** A call by MAC or by token (`by`), timed (a no too: the portal did the same lookup). */
  async timed(exec: NdsctlExec, args: readonly string[], by: 'mac' | 'token'): Promise<NdsctlResult> {
    if (by === 'token') this.#calls++;
    const started = performance.now();
    const note = (): void => {
      const ms = performance.now() - started;
      if (by === 'mac') this.costs.byMac(ms);
      else this.costs.byToken(ms);
    };
    let result: NdsctlResult;
    try {
      result = await exec(args);
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'ERR_NDSCTL_REJECTED') note();
      throw err;
    }
    note();
    return result;
  }

  /**
   * One client (`read`: `json <target>`): by its token when known and the answer names `mac`, else by `mac`; the token
   * of the answer noted (none: forgotten).
   */
  async lookup(
    exec: NdsctlExec,
    mac: string,
    read: (exec: NdsctlExec, target: string) => Promise<PortalClient | null>,
  ): Promise<PortalClient | null> {
    const token = await this.known(mac);
    if (token !== undefined) {
      this.#calls++;
      const started = performance.now();
      const found = await read(exec, token);
      this.costs.byToken(performance.now() - started);
      if (found?.mac === mac) {
        this.tokens.note(mac, found.token);
        return found;
      }
      this.tokens.forget(mac);
    }
    const started = performance.now();
    const client = await read(exec, mac);
    this.costs.byMac(performance.now() - started);
    if (client === null) this.tokens.forget(mac);
    else this.tokens.note(mac, client.token);
    return client;
  }

  /**
   * Whether the gate of `mac`, whose turn it is, should ask the portal's status first: its token unknown, and one
   * status then auths by token cost less than auths by MAC for it and the gates waiting with no token known either.
   */
  statusFirst(mac: string): { waiting: number } | null {
    if (this.tokens.of(mac) !== undefined) return null;
    let k = 1;
    for (const other of this.#queued.keys()) if (other !== mac && this.tokens.of(other) === undefined) k++;
    // Listed now: at least the clients whose tokens the book holds and the gates waiting with none.
    return this.costs.statusFirst(k, this.tokens.size + k) ? { waiting: k } : null;
  }

  /** What openNDS's `ndsctl status` showed (status-tokens.ts: mac, token, …), read in `tookMs`: a full listing. */
  noteStatus(pairs: readonly string[], tookMs: number): void {
    this.tokens.noteListing(pairs);
    this.costs.status(tookMs, pairs.length / 2);
  }

  /** A listing of openNDS read just now. */
  listed(snapshot: PortalSnapshot): void {
    this.noteListing(snapshot.clients.flatMap((c) => [c.mac, c.token ?? '']));
  }

  /** The same as each listed client's MAC and token, flat (mac, token, …): a listing the meter's worker read. */
  noteListing(pairs: readonly string[]): void {
    this.tokens.noteListing(pairs);
  }
}
