/**
 * Each client's MAC and token from openNDS's `ndsctl status` (9.10 and 10.3.1, src/util.c ndsctl_status): a client
 * section per listed client, `  IP: <ip> MAC: <mac>` and later `  Token: <token>`. It is the one call that shows every
 * client's token without running a script per client: at 36 listed clients it cost openNDS 9.10 20–40 ms of CPU and
 * 10.3.1 340–400 ms (a gateway check and its firewall's counters, then a few lines per client), against 0.8 s and
 * 3.2 s for `json` (docs/captive-portal.md "What a call costs openNDS"). Pure.
 */
import { tryNormalizeMac } from '../mac.ts';
import { isPortalToken } from './tokens.ts';

/** The clients' (mac, token) pairs, flat, in the order listed; a section without a MAC or a token of openNDS's form
 *  gives none. */
export function statusTokens(text: string): string[] {
  const pairs: string[] = [];
  let mac: string | null = null;
  for (const line of text.split('\n')) {
    const at = /^\s+IP: \S+ MAC: (\S+)\s*$/.exec(line);
    if (at !== null) {
      mac = tryNormalizeMac(at[1]!);
      continue;
    }
    if (/^Client \d+\s*$/.test(line)) mac = null;
    const token = /^\s+Token: (\S+)\s*$/.exec(line);
    if (token !== null && mac !== null) {
      if (isPortalToken(token[1]!)) pairs.push(mac, token[1]!);
      mac = null;
    }
  }
  return pairs;
}
