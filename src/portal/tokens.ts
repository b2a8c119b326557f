/**
 * Each openNDS client's token, as the portal itself last showed it beside the client's MAC (its listing, a lookup),
 * so that the gate can call `auth <token>` and `deauth <token>`: openNDS looks a token up by comparing strings, where
 * a MAC or an address costs it a hash of every listed client first (≈ 28 ms flat against 28 ms + 2.5 ms per listed
 * client: docs/captive-portal.md "What a call costs openNDS"; src/client_list.c client_list_find_by_any).
 *
 * A token is openNDS's "%04hx%04hx" of two rand16() (client_reset: at the client's arrival and at every deauth, which
 * also drops the client from the list in 9.x), kept through its auth. Only that form is kept: 8 lowercase hex
 * characters, never an address or a MAC, and at 8 characters openNDS compares it as a token (longer ones it hashes as
 * a FAS hid). One token belongs to one MAC here: a token seen beside another MAC drops the older pairing. A token the
 * portal no longer holds answers "not found", and the valve then goes by the MAC (valve.ts): a stale one costs one
 * flat call. Pure; bounded (the oldest pairing goes first).
 */
import { tryNormalizeMac } from '../mac.ts';

const TOKEN = /^[0-9a-f]{8}$/;

/** Pairings kept at most: a listing of more clients keeps the last ones listed. */
export const TOKENS_MAX = 16_384;

/** Whether `token` is in the form openNDS prints and looks up as a token. */
export function isPortalToken(token: unknown): token is string {
  return typeof token === 'string' && TOKEN.test(token);
}

export class PortalTokens {
  readonly #byMac = new Map<string, string>();
  readonly #macOf = new Map<string, string>();

  constructor(private readonly max = TOKENS_MAX) {}

  get size(): number {
    return this.#byMac.size;
  }

  /** The token the portal last showed beside `mac` (canonical), if any. */
  of(mac: string): string | undefined {
    return this.#byMac.get(mac);
  }

  /** The MAC the book pairs `token` with, if any. */
  holderOf(token: string): string | undefined {
    return this.#macOf.get(token);
  }

  /**
   * The portal showed `token` for `mac` (canonical) just now. Anything but a token of openNDS's form forgets the MAC's.
   */
  note(mac: string, token: string | null | undefined): void {
    if (!isPortalToken(token)) {
      this.forget(mac);
      return;
    }
    const holder = this.#macOf.get(token);
    if (holder !== undefined && holder !== mac) this.#byMac.delete(holder);
    const previous = this.#byMac.get(mac);
    if (previous !== undefined) {
      if (previous === token) return;
      this.#macOf.delete(previous);
    }
    // Bounded: the oldest pairing goes first (a Map keeps the order they were set in).
    if (previous === undefined && this.#byMac.size >= this.max) this.forget(this.#byMac.keys().next().value!);
    this.#byMac.set(mac, token);
    this.#macOf.set(token, mac);
  }

  /** The MAC's token is no longer good (its deauth, a refusal, a lookup that did not find it). */
  forget(mac: string): void {
    const token = this.#byMac.get(mac);
    if (token === undefined) return;
    this.#byMac.delete(mac);
    if (this.#macOf.get(token) === mac) this.#macOf.delete(token);
  }

  /**
   * A whole listing: each listed client's MAC and token, flat (mac, token, mac, token, …). The pairings of MACs it
   * does not list go (the portal dropped them, and their tokens with them); a pair that is not a MAC is skipped.
   */
  noteListing(pairs: readonly string[]): void {
    const listed = new Set<string>();
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const mac = tryNormalizeMac(pairs[i]!);
      if (mac === null) continue;
      listed.add(mac);
      this.note(mac, pairs[i + 1]);
    }
    // A Map may lose the entry its iterator is on: no copy of every key per listing.
    for (const mac of this.#byMac.keys()) if (!listed.has(mac)) this.forget(mac);
  }
}
