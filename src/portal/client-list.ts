/**
 * The envelope of an `ndsctl json` client list, read once for both readers of a whole snapshot: the main thread's
 * parseSnapshot (parse.ts, every field of every client) and the usage worker's JSON.parse fallback (scan-fallback.ts,
 * only what the scanner reads). JSON.parse, then: a client count under the key of a known portal (formats.ts), the
 * flavour the caller expects, a `clients` object, and as many clients as declared. Failures are named (the worker
 * counts them by name) instead of thrown, so each caller reports them its own way.
 */
import { FORMATS, flavourOfCountKey, FLAVOURS } from './formats.ts';
import type { PortalFlavour } from './types.ts';

/** Why a snapshot was skipped (the worker's stats keys). */
export type SnapshotProblem =
  | 'truncated' // output ends early (ndsctl killed, socket cut, portal's non-blocking write gave up)
  | 'invalid-number' // nodogsplash's inf/nan averages: not JSON
  | 'invalid-json'
  | 'malformed' // JSON, but not an `ndsctl json` client list
  | 'wrong-flavour' // config says one portal, output is the other's
  | 'count-mismatch'; // the list disagrees with its declared length: a client could look departed and be billed twice

export type ClientListOutcome =
  | {
      ok: true;
      flavour: PortalFlavour;
      declared: number;
      /** The `clients` object's keys in listed order, each a client of `clients` (read `clients[key]`). */
      keys: string[];
      clients: Record<string, unknown>;
      /** openNDS's `trusted` array (its trustedmac list) as printed; empty when there is none. */
      trusted: string[];
    }
  /** `jsonError`: JSON.parse's own message, when the text is not JSON at all. */
  | { ok: false; problem: SnapshotProblem; message: string; jsonError?: string };

export const PORTAL_NAME: Readonly<Record<PortalFlavour, string>> = { opennds: 'openNDS', nodogsplash: 'nodogsplash' };

export function readClientList(text: string, expected: PortalFlavour | 'auto'): ClientListOutcome {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const jsonError = err instanceof Error ? err.message : String(err);
    return { ok: false, problem: jsonProblem(text, jsonError), message: jsonError, jsonError };
  }
  if (!isRecord(doc)) return malformed('client list is not a JSON object');
  const countKeys = FLAVOURS.map((flavour) => FORMATS[flavour].countKey).filter((key) => key in doc);
  const wanted = expected === 'auto' ? undefined : FORMATS[expected].countKey;
  const countKey = wanted !== undefined && countKeys.includes(wanted) ? wanted : countKeys[0];
  if (countKey === undefined) {
    return malformed(
      wanted === undefined
        ? 'no client count (client_list_length / client_length)'
        : `${PORTAL_NAME[expected as PortalFlavour]} ${wanted} missing`,
    );
  }
  const flavour = flavourOfCountKey(countKey)!;
  const declared = readCount(doc[countKey]);
  if (declared === undefined)
    return malformed(`${PORTAL_NAME[flavour]} ${countKey} invalid: ${JSON.stringify(doc[countKey])}`);
  const list = doc['clients'];
  if (!isRecord(list)) return malformed(`${PORTAL_NAME[flavour]} clients is not an object`);
  // After every check of the shape: a list that is not one is malformed whatever the configured flavour.
  if (expected !== 'auto' && expected !== flavour) {
    return { ok: false, problem: 'wrong-flavour', message: `expected ${expected} (${wanted}), got ${flavour}` };
  }
  // JSON.parse keeps only the last of duplicate keys: a MAC openNDS lists twice (one client per MAC and address, a
  // device with a new lease) is read again with each repeated key made unique (`<mac>#2`: clientKeyMac reads it).
  let clients = list;
  let keys = Object.keys(clients);
  if (keys.length < declared) {
    const again = (JSON.parse(uniqueClientKeys(text)) as Record<string, unknown>)['clients'];
    if (isRecord(again)) {
      clients = again;
      keys = Object.keys(again);
    }
  }
  if (keys.length !== declared) {
    return {
      ok: false,
      problem: 'count-mismatch',
      message: `${PORTAL_NAME[flavour]} declares ${declared} clients but lists ${keys.length}`,
    };
  }
  const trusted = Array.isArray(doc['trusted']) ? doc['trusted'].filter((m): m is string => typeof m === 'string') : [];
  return { ok: true, flavour, declared, keys, clients, trusted };
}

/**
 * A count or counter: openNDS prints digit strings, nodogsplash bare numbers; both are taken from both, as the
 * scanner does. "null" or anything else is no value.
 */
export function readCount(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonProblem(text: string, message: string): SnapshotProblem {
  if (/:\s*-?(inf|nan)\b/i.test(text)) return 'invalid-number';
  const tail = text.trimEnd();
  if (tail.length === 0 || !tail.endsWith('}') || /end of (JSON|data)/i.test(message)) return 'truncated';
  return 'invalid-json';
}

function malformed(message: string): ClientListOutcome {
  return { ok: false, problem: 'malformed', message };
}

/** The MAC a client's key names (a repeated key was made `<mac>#<n>` by uniqueClientKeys). */
export function clientKeyMac(key: string): string {
  const hash = key.indexOf('#');
  return hash < 0 ? key : key.slice(0, hash);
}

/**
 * The listing with each repeated key of its `clients` object renamed `<key>#<n>` (n: 2, 3… in the order listed), so
 * that JSON.parse keeps every client. Only the text of keys at the `clients` object's own level changes.
 */
export function uniqueClientKeys(text: string): string {
  const seen = new Map<string, number>();
  const out: string[] = [];
  let depth = 0;
  /** The depth of the `clients` object's keys (0: not inside it). */
  let clientsDepth = 0;
  let lastKey = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const str = text.slice(i + 1, j);
      let k = j + 1;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      if (text[k] === ':') {
        if (depth === 1) lastKey = str;
        if (depth === clientsDepth) {
          const n = (seen.get(str) ?? 0) + 1;
          seen.set(str, n);
          if (n > 1) {
            out.push(text.slice(from, j), `#${n}`);
            from = j;
          }
        }
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (c === '{' && depth === 2 && lastKey === 'clients') clientsDepth = 2;
    } else if (c === '}' || c === ']') {
      if (depth === clientsDepth) clientsDepth = 0;
      depth--;
    }
  }
  out.push(text.slice(from));
  return out.join('');
}
