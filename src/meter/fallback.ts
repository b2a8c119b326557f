/**
 * The slow, general path: JSON.parse the snapshot and feed the same sink as the scanner. Used when the scanner stops
 * (unusual but valid JSON, or a broken snapshot). It also names the reason a snapshot is unusable, for the stats.
 * Kept next to the scanner (rather than calling the valve's parseSnapshot) because it must produce the scanner's
 * token hashes and state codes bit for bit; it follows the same format rules as docs/captive-portal.md.
 */
import { hashBytes, type Flavour, type SinkFor } from './scan.ts';
import { macToParts, STATE_CODES } from './table.ts';

/** Why a snapshot was skipped (stats keys). */
export type SnapshotProblem =
  | 'truncated'       // output ends early (ndsctl killed, socket cut, portal's non-blocking write gave up)
  | 'invalid-number'  // nodogsplash's inf/nan averages: not JSON
  | 'invalid-json'
  | 'malformed'       // JSON, but not an `ndsctl json` client list
  | 'wrong-flavour'   // config says one portal, output is the other's
  | 'count-mismatch'; // the list disagrees with its declared length: a client could look departed and be billed twice

export type FallbackOutcome =
  | { ok: true; flavour: Flavour; clients: number; declared: number }
  | { ok: false; problem: SnapshotProblem; message: string };

const encoder = new TextEncoder();

export function parseSnapshotFallback(buf: Uint8Array, expected: Flavour | 'auto', sinkFor: SinkFor): FallbackOutcome {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/:\s*-?(inf|nan)\b/i.test(text)) return { ok: false, problem: 'invalid-number', message };
    const tail = text.trimEnd();
    if (tail.length === 0 || !tail.endsWith('}') || /end of (JSON|data)/i.test(message)) return { ok: false, problem: 'truncated', message };
    return { ok: false, problem: 'invalid-json', message };
  }
  if (!isRecord(doc) || !isRecord(doc.clients)) return malformed('no "clients" object');
  let flavour: Flavour;
  let declared: number | undefined;
  if ('client_list_length' in doc) { flavour = 'opennds'; declared = counter(doc.client_list_length); }
  else if ('client_length' in doc) { flavour = 'nodogsplash'; declared = counter(doc.client_length); }
  else return malformed('no client count');
  if (declared === undefined) return malformed('bad client count');
  if (expected !== 'auto' && expected !== flavour) return { ok: false, problem: 'wrong-flavour', message: `expected ${expected}, got ${flavour}` };
  const [downKey, upKey] = flavour === 'opennds' ? ['download_this_session', 'upload_this_session'] : ['downloaded', 'uploaded'];
  const entries = Object.entries(doc.clients);
  if (entries.length !== declared) return { ok: false, problem: 'count-mismatch', message: `${entries.length} clients, declared ${declared}` };
  // Validate everything before feeding the sink: a snapshot is used whole or not at all.
  const rows: Array<[number, number, number, number, number, number]> = [];
  for (const [mac, client] of entries) {
    const parts = macToParts(mac.toLowerCase());
    if (parts === undefined) return malformed(`client key ${JSON.stringify(mac.slice(0, 40))} is not a MAC`);
    if (!isRecord(client)) return malformed(`client ${mac} is not an object`);
    const down = counter(client[downKey]);
    const up = counter(client[upKey]);
    if (down === undefined || up === undefined) return malformed(`client ${mac} has no valid counters`);
    if (typeof client.token !== 'string' || typeof client.state !== 'string') return malformed(`client ${mac} has no token or state`);
    const token = encoder.encode(client.token);
    const state = (STATE_CODES as Record<string, number>)[client.state] ?? STATE_CODES.other;
    rows.push([parts[0], parts[1], hashBytes(token, 0, token.length), state === STATE_CODES.other ? 0 : state, down, up]);
  }
  const sink = sinkFor(flavour);
  for (const row of rows) {
    if (!sink(...row)) return malformed('duplicate client');
  }
  return { ok: true, flavour, clients: entries.length, declared };
}

function malformed(message: string): FallbackOutcome {
  return { ok: false, problem: 'malformed', message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** openNDS prints counters as strings of digits, nodogsplash as bare numbers; "null" or anything else is no value. */
function counter(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}
