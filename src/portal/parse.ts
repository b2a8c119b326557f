import type { PortalClient, PortalFlavour, PortalSnapshot } from './types.ts';
import { isJsonObject, parseJsonText, PortalParseError } from './parse-error.ts';
import { parseOpenNdsClientObject, parseOpenNdsSnapshotText } from './parse-opennds.ts';
import { parseNodogsplashClientObject, parseNodogsplashSnapshotText } from './parse-nodogsplash.ts';

export { PortalParseError } from './parse-error.ts';

/** Keys that appear only in one portal's output; both put them at the very top, so the head is enough. */
const OPENNDS_MARKERS = ['"client_list_length"', '"gatewayname"', '"download_this_session"'];
const NODOGSPLASH_MARKERS = ['"client_length"', '"avg_down_speed"', '"downloaded"'];
const HEAD_CHARS = 4096;

/**
 * Tells openNDS from nodogsplash output by its first keys (looks at the first 4 KiB only: snapshots at
 * 100k clients are ~100 MB). `{}` and unrecognisable text throw PortalParseError.
 */
export function detectFlavour(text: string): PortalFlavour {
  if (typeof text !== 'string') throw new PortalParseError(`ndsctl output: expected text, got ${typeof text}`);
  const head = text.slice(0, HEAD_CHARS);
  let best: { flavour: PortalFlavour; at: number } | null = null;
  for (const [flavour, markers] of [['opennds', OPENNDS_MARKERS], ['nodogsplash', NODOGSPLASH_MARKERS]] as const) {
    for (const marker of markers) {
      const at = head.indexOf(marker);
      if (at >= 0 && (best === null || at < best.at)) best = { flavour, at };
    }
  }
  if (best === null) throw new PortalParseError('cannot tell which portal printed this ndsctl output', { head: head.slice(0, 80) });
  return best.flavour;
}

/** `ndsctl json` (no argument): every client in one reading. */
export function parseSnapshot(text: string, flavour: PortalFlavour | 'auto' = 'auto'): PortalSnapshot {
  const resolved = flavour === 'auto' ? detectFlavour(text) : flavour;
  return resolved === 'opennds' ? parseOpenNdsSnapshotText(text) : parseNodogsplashSnapshotText(text);
}

/** `ndsctl json <mac>`: the bare client object, or `{}` (→ null) when the portal does not know the client. */
export function parseClient(text: string, flavour: PortalFlavour | 'auto' = 'auto'): PortalClient | null {
  const doc = parseJsonText(text, 'ndsctl client');
  if (!isJsonObject(doc)) throw new PortalParseError('ndsctl client is not a JSON object');
  if (Object.keys(doc).length === 0) return null;
  if ('clients' in doc) throw new PortalParseError('expected one client, got a client list');
  const resolved = flavour === 'auto' ? detectFlavour(text) : flavour;
  return resolved === 'opennds' ? parseOpenNdsClientObject(doc) : parseNodogsplashClientObject(doc);
}
