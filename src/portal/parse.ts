/**
 * The main thread's reader of `ndsctl json`: every field of every client, in sluice's units (the usage worker reads
 * only counters, token and state, with scan.ts). Both read the keys and units of formats.ts, and a whole snapshot's
 * envelope through client-list.ts, which the worker's fallback shares.
 */
import type { PortalClient, PortalFlavour, PortalSnapshot } from './types.ts';
import { isJsonObject, jsonParseError, parseJsonText, PortalParseError } from './parse-error.ts';
import { parseOpenNdsClientObject } from './parse-opennds.ts';
import { parseNodogsplashClientObject } from './parse-nodogsplash.ts';
import { clientKeyMac, PORTAL_NAME, readClientList } from './client-list.ts';
import { FLAVOURS, FORMATS } from './formats.ts';
import { tryNormalizeMac } from '../mac.ts';

const HEAD_CHARS = 4096;

/**
 * Tells openNDS from nodogsplash output by its first keys (looks at the first 4 KiB only: snapshots at
 * 100k clients are ~100 MB). `{}` and unrecognisable text throw PortalParseError.
 */
export function detectFlavour(text: string): PortalFlavour {
  if (typeof text !== 'string') throw new PortalParseError(`ndsctl output: expected text, got ${typeof text}`);
  const head = text.slice(0, HEAD_CHARS);
  let best: { flavour: PortalFlavour; at: number } | null = null;
  // Keys that appear only in one portal's output; both put them at the very top, so the head is enough.
  for (const flavour of FLAVOURS) {
    for (const marker of FORMATS[flavour].markers) {
      const at = head.indexOf(`"${marker}"`);
      if (at >= 0 && (best === null || at < best.at)) best = { flavour, at };
    }
  }
  if (best === null)
    throw new PortalParseError('cannot tell which portal printed this ndsctl output', { head: head.slice(0, 80) });
  return best.flavour;
}

function clientParser(flavour: PortalFlavour): (o: unknown, key?: string) => PortalClient {
  return flavour === 'opennds' ? parseOpenNdsClientObject : parseNodogsplashClientObject;
}

/** `ndsctl json` (no argument): every client in one reading. */
export function parseSnapshot(text: string, flavour: PortalFlavour | 'auto' = 'auto'): PortalSnapshot {
  const resolved = flavour === 'auto' ? detectFlavour(text) : flavour;
  const what = `${PORTAL_NAME[resolved]} client list`;
  if (typeof text !== 'string') throw new PortalParseError(`${what}: expected text, got ${typeof text}`);
  const list = readClientList(text, resolved);
  if (!list.ok) {
    if (list.jsonError !== undefined) throw jsonParseError(text, what, list.jsonError);
    throw new PortalParseError(list.message, { problem: list.problem });
  }
  const parseClientObject = clientParser(list.flavour);
  // A MAC listed more than once (openNDS: one client per MAC and address) is its last listing, the address it moved
  // to (meter/kernel-task.ts scanRoster reads it the same way).
  const byMac = new Map<string, PortalClient>();
  for (const key of list.keys) {
    const c = parseClientObject(list.clients[key], clientKeyMac(key));
    const size = byMac.size;
    byMac.set(c.mac, c);
    // A MAC seen before kept its first place: moved to its last (one lookup a client, not a delete's and a set's).
    if (byMac.size === size) {
      byMac.delete(c.mac);
      byMac.set(c.mac, c);
    }
  }
  const clients = [...byMac.values()];
  const trusted = new Set<string>();
  for (const m of list.trusted) {
    const mac = tryNormalizeMac(m);
    if (mac !== null) trusted.add(mac);
  }
  for (const c of clients) if (c.state === 'Trusted') trusted.add(c.mac);
  return { flavour: list.flavour, clients, declaredCount: list.declared, trusted: [...trusted] };
}

/** `ndsctl json <mac>`: the bare client object, or `{}` (→ null) when the portal does not know the client. */
export function parseClient(text: string, flavour: PortalFlavour | 'auto' = 'auto'): PortalClient | null {
  const doc = parseJsonText(text, 'ndsctl client');
  if (!isJsonObject(doc)) throw new PortalParseError('ndsctl client is not a JSON object');
  if (Object.keys(doc).length === 0) return null;
  if ('clients' in doc) throw new PortalParseError('expected one client, got a client list');
  const resolved = flavour === 'auto' ? detectFlavour(text) : flavour;
  return clientParser(resolved)(doc);
}
