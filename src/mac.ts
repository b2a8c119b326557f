import { SluiceError } from './errors.ts';

const SEPARATED = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/;
const CISCO_DOTTED = /^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/;
const BARE = /^[0-9a-fA-F]{12}$/;
// What the portals print and sluice stores: copied as it is, without the rewrite (a 100k-client list's MACs each tick).
const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/**
 * Canonical MAC form used everywhere in sluice and by the portals themselves: lowercase `aa:bb:cc:dd:ee:ff`
 * (openNDS and nodogsplash look clients up by exact string, and both store lowercase).
 * Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff` and `aabbccddeeff`; mixed separators are refused.
 * Only the syntax is checked: multicast, broadcast and all-zero addresses pass, since refusing them is a policy
 * decision for the caller, not a parsing one.
 */
export function normalizeMac(input: string): string {
  if (typeof input !== 'string') {
    throw new SluiceError('ERR_INVALID_MAC', `MAC address must be a string, got ${typeof input}`);
  }
  // A copy, not the input: that may be a match in a long text (a portal's output), which a kept MAC would keep alive.
  if (CANONICAL.test(input)) return input.slice(0, 9) + input.slice(9);
  let hex: string;
  if (SEPARATED.test(input)) hex = input.replace(/[:-]/g, '');
  else if (CISCO_DOTTED.test(input)) hex = input.replace(/\./g, '');
  else if (BARE.test(input)) hex = input;
  else throw new SluiceError('ERR_INVALID_MAC', `not a MAC address: ${JSON.stringify(input.slice(0, 40))}`);
  hex = hex.toLowerCase();
  return (
    `${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:` +
    `${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`
  );
}

/** Like normalizeMac, but answers null instead of throwing (for filtering untrusted lists). */
export function tryNormalizeMac(input: string): string | null {
  try {
    return normalizeMac(input);
  } catch {
    return null;
  }
}

/**
 * normalizeMac for a string that is a value of its own (JSON.parse's values, a caller's argument; never a part of a
 * longer text): one already canonical is returned as it is, with no copy made (each MAC of a 100k-client listing,
 * each reading), and a Map hashes it as it is (a copy made of two parts is flattened first).
 */
export function normalizeOwnMac(input: string): string {
  return typeof input === 'string' && CANONICAL.test(input) ? input : normalizeMac(input);
}

/** tryNormalizeMac for a string that is a value of its own (normalizeOwnMac). */
export function tryNormalizeOwnMac(input: string): string | null {
  return typeof input === 'string' && CANONICAL.test(input) ? input : tryNormalizeMac(input);
}

/**
 * The policy half of a client MAC: a session is sold only to a unicast station address. The all-zero address,
 * broadcast and every multicast address (the low bit of the first octet set) name no single client; a portal would
 * never report one as its client, and a grant to one is free access nobody can meter. Takes the normal form.
 */
export function assertClientMac(mac: string): void {
  if (mac === '00:00:00:00:00:00') throw new SluiceError('ERR_INVALID_MAC', 'the all-zero MAC address is not a client');
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw new SluiceError(
      'ERR_INVALID_MAC',
      `${mac} is a ${mac === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : 'multicast'} address, not a client`,
    );
  }
}
