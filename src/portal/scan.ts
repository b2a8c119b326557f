/**
 * A strict field scanner for `ndsctl json` (all clients), openNDS and nodogsplash formats, over the raw bytes.
 *
 * It is a real JSON tokenizer for the subset the portals print (objects of strings and plain numbers, one array of
 * strings), so field order, whitespace and "null" strings do not matter and a value can never be mistaken for a key.
 * It allocates nothing per client: it reads the MAC key, token, state and the two counters and hands them to the sink.
 * Anything outside the subset (escapes, nested values, inf/nan, a non-MAC key, a duplicate, a missing field, a count
 * that disagrees with `client_list_length`/`client_length`, trailing bytes) stops it with a reason; the caller then
 * falls back to JSON.parse, which either explains the problem precisely or reads the unusual-but-valid snapshot.
 * Measured 3–6× faster than JSON.parse on openNDS snapshots (docs/performance.md). Keys come from formats.ts.
 */
import { FORMATS, STATE_CODES } from './formats.ts';
import { hexValue } from './mac-parts.ts';
import type { PortalFlavour } from './types.ts';

/** (macHi, macLo, tokenHash, stateCode, downloadUnits, uploadUnits) → false if the client must be rejected. */
export type ClientSink = (
  macHi: number,
  macLo: number,
  token: number,
  state: number,
  down: number,
  up: number,
) => boolean;

/** Called once the format is known (the count key precedes "clients" in both), so the sink can pick the unit. */
export type SinkFor = (flavour: PortalFlavour) => ClientSink;

/**
 * Optional: each accepted client's MAC (lowercase) and `ip` ('' when it has none or "null"), after its sink call; the
 * JSON.parse fallback (scan-fallback.ts) feeds the same (meter/address-book.ts asks for them while the LAN endpoint's
 * lookups want them). `token`: the client's token as printed, when the scan was asked for tokens ('' otherwise): the
 * gate's calls by token (portal/tokens.ts).
 */
export type AddressSink = (mac: string, ip: string, token: string) => void;

/** The MAC key's, the ip value's and the token's byte ranges: the strings are made here, out of the hot loop (made
 *  inside it, the 10k scan with addresses took a median 36.7 ms against 17.8–20.5, two runs each, 2026-11-24). */
type RawAddressSink = (
  buf: Buffer,
  macStart: number,
  macEnd: number,
  ipStart: number,
  ipEnd: number,
  tokenStart: number,
  tokenEnd: number,
) => void;

function rawAddressSink(sink: AddressSink, tokens: boolean): RawAddressSink {
  return (buf, macStart, macEnd, ipStart, ipEnd, tokenStart, tokenEnd) => {
    const ip = buf.toString('latin1', ipStart, ipEnd);
    const token = tokens ? buf.toString('latin1', tokenStart, tokenEnd) : '';
    sink(buf.toString('latin1', macStart, macEnd).toLowerCase(), ip === 'null' ? '' : ip, token);
  };
}

export type ScanOutcome =
  { ok: true; flavour: PortalFlavour; clients: number; declared: number } | { ok: false; why: string; at: number };

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const K_OPENNDS_COUNT = bytes(FORMATS.opennds.countKey);
const K_NDS_COUNT = bytes(FORMATS.nodogsplash.countKey);
const K_CLIENTS = bytes('clients');
const K_TRUSTED_COUNT = bytes('trusted_list_length');
const K_TRUSTED = bytes('trusted');
const K_TOKEN = bytes('token');
const K_STATE = bytes('state');
const COUNTER_KEYS: Readonly<Record<PortalFlavour, [down: Uint8Array, up: Uint8Array]>> = {
  opennds: [bytes(FORMATS.opennds.downloadKey), bytes(FORMATS.opennds.uploadKey)],
  nodogsplash: [bytes(FORMATS.nodogsplash.downloadKey), bytes(FORMATS.nodogsplash.uploadKey)],
};
const STATES: ReadonlyArray<[Uint8Array, number]> = Object.entries(STATE_CODES)
  .filter(([name]) => name !== 'other')
  .map(([name, code]) => [bytes(name), code]);

/** FNV-1a over the token's bytes; the fallback hashes the same UTF-8 bytes so both paths agree. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h | 0;
}

export function stateCode(buf: Uint8Array, start: number, end: number): number {
  for (const [name, code] of STATES) if (equalsKey(buf, start, end, name)) return code;
  return STATE_CODES.other;
}

function equalsKey(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}

class Stop {
  constructor(
    readonly why: string,
    readonly at: number,
  ) {}
}

/** `tokens`: hand the address sink each client's token too. */
export function scanSnapshot(
  buf: Uint8Array,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  addressSink?: AddressSink,
  tokens = false,
): ScanOutcome {
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  // One native pass: with no backslash anywhere, every string's raw bytes are its value, so comparing keys and
  // hashing tokens on raw bytes is exact, and a quote always ends a string.
  const escape = view.indexOf(0x5c);
  if (escape >= 0) return { ok: false, why: 'escape in snapshot', at: escape };
  try {
    return scan(withSentinel(view), view.length, expected, sinkFor, addressSink && rawAddressSink(addressSink, tokens));
  } catch (err) {
    if (err instanceof Stop) return { ok: false, why: err.why, at: err.at };
    throw err;
  }
}

function ws(buf: Uint8Array, i: number): number {
  let c = buf[i];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i];
  return i;
}

/** i is the first byte of a string's content; returns the closing quote's index. */
function stringEnd(buf: Uint8Array, i: number, n: number): number {
  // buf[n] is a quote (sentinel, see withSentinel): the loop stops without a bounds check per byte.
  if (i > n) throw new Stop('truncated', n);
  while (buf[i] !== 0x22) i++;
  if (i >= n) throw new Stop('truncated', i);
  return i;
}

/** i is at a value; returns the end of a plain number (digits, optional minus and fraction). */
function numberEnd(buf: Uint8Array, i: number, n: number): number {
  const start = i;
  if (buf[i] === 0x2d) i++;
  let c = buf[i];
  const digits = i;
  while (c !== undefined && c >= 0x30 && c <= 0x39) c = buf[++i];
  if (i === digits) throw new Stop(i >= n ? 'truncated' : 'not a plain value', start);
  if (c === 0x2e) {
    const frac = ++i;
    c = buf[i];
    while (c !== undefined && c >= 0x30 && c <= 0x39) c = buf[++i];
    if (i === frac) throw new Stop('bad number', i);
  }
  if (c === 0x65 || c === 0x45) throw new Stop('exponent', i);
  if (i >= n) throw new Stop('truncated', i);
  return i;
}

function unsigned(buf: Uint8Array, start: number, end: number, what: string): number {
  if (end <= start || end - start > 15) throw new Stop(`bad ${what}`, start);
  let v = 0;
  for (let k = start; k < end; k++) {
    const d = buf[k]! - 0x30;
    if (d < 0 || d > 9) throw new Stop(`bad ${what}`, k);
    v = v * 10 + d;
  }
  return v;
}

/** After a member: returns the index after a comma (more members) or -1 - index after the closing bracket. */
function next(buf: Uint8Array, i: number, n: number, close: number): number {
  i = ws(buf, i);
  const c = buf[i];
  if (c === 0x2c) return i + 1;
  if (c === close) return -2 - i;
  throw new Stop(i >= n ? 'truncated' : 'expected , or closing bracket', i);
}

function expect(buf: Uint8Array, i: number, n: number, c: number): number {
  i = ws(buf, i);
  if (i >= n || buf[i] !== c) throw new Stop(i >= n ? 'truncated' : `expected ${String.fromCharCode(c)}`, i);
  return i + 1;
}

/** A string or plain number at i (after whitespace): writes [contentStart, contentEnd, indexAfter] into `out`. */
function scalar(buf: Uint8Array, i: number, n: number, out: Int32Array): void {
  i = ws(buf, i);
  if (buf[i] === 0x22) {
    if (i >= n) throw new Stop('truncated', i);
    const end = stringEnd(buf, i + 1, n);
    out[0] = i + 1;
    out[1] = end;
    out[2] = end + 1;
  } else {
    const end = numberEnd(buf, i, n);
    out[0] = i;
    out[1] = end;
    out[2] = end;
  }
}

/**
 * The bytes followed by one '"' past the end. SnapshotBuffer (snapshot-fetch.ts) leaves that byte in the allocation;
 * otherwise this copies.
 */
function withSentinel(view: Buffer): Buffer {
  const n = view.length;
  if (view.byteOffset + n < view.buffer.byteLength) {
    const extended = Buffer.from(view.buffer, view.byteOffset, n + 1);
    if (extended[n] === 0x22) return extended;
  }
  const copy = Buffer.allocUnsafe(n + 1);
  view.copy(copy);
  copy[n] = 0x22;
  return copy;
}

/** buf holds the snapshot in [0, n) and a sentinel quote at n. */
function scan(
  buf: Buffer,
  n: number,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  rawAddress: RawAddressSink | undefined,
): ScanOutcome {
  const v = new Int32Array(3);
  let flavour: PortalFlavour | undefined;
  let declared = -1;
  let clients = -1;
  const setFlavour = (f: PortalFlavour, at: number): void => {
    if (flavour !== undefined && flavour !== f) throw new Stop('both formats', at);
    if (expected !== 'auto' && expected !== f) throw new Stop(`not ${expected}`, at);
    flavour = f;
  };

  let i = expect(buf, 0, n, 0x7b);
  for (;;) {
    i = expect(buf, i, n, 0x22);
    const ks = i;
    const ke = stringEnd(buf, i, n);
    i = expect(buf, ke + 1, n, 0x3a);
    if (equalsKey(buf, ks, ke, K_OPENNDS_COUNT) || equalsKey(buf, ks, ke, K_NDS_COUNT)) {
      setFlavour(ke - ks === K_OPENNDS_COUNT.length ? 'opennds' : 'nodogsplash', ks);
      scalar(buf, i, n, v);
      declared = unsigned(buf, v[0]!, v[1]!, 'client count');
      i = v[2]!;
    } else if (equalsKey(buf, ks, ke, K_CLIENTS)) {
      if (clients >= 0) throw new Stop('duplicate clients', ks);
      if (flavour === undefined) throw new Stop('clients before count', ks);
      i = clientsObject(buf, i, n, flavour, sinkFor(flavour), v, rawAddress);
      clients = v[0]!;
    } else if (equalsKey(buf, ks, ke, K_TRUSTED_COUNT)) {
      scalar(buf, i, n, v);
      i = v[2]!;
    } else if (equalsKey(buf, ks, ke, K_TRUSTED)) {
      i = expect(buf, i, n, 0x5b);
      i = ws(buf, i);
      if (buf[i] === 0x5d) i++;
      else
        for (;;) {
          i = expect(buf, i, n, 0x22);
          i = stringEnd(buf, i, n) + 1;
          i = next(buf, i, n, 0x5d);
          if (i < 0) {
            i = -2 - i + 1;
            break;
          }
        }
    } else {
      throw new Stop('unexpected top-level key', ks);
    }
    i = next(buf, i, n, 0x7d);
    if (i < 0) {
      i = -2 - i + 1;
      break;
    }
  }
  i = ws(buf, i);
  if (i !== n) throw new Stop('bytes after the snapshot', i);
  if (flavour === undefined || declared < 0 || clients < 0) throw new Stop('no client count or list', i);
  if (declared !== clients) throw new Stop(`count ${clients} != declared ${declared}`, i);
  return { ok: true, flavour, clients, declared };
}

/** Reads the "clients" object at i; returns the index after it and leaves the client count in v[0]. */
function clientsObject(
  buf: Buffer,
  i: number,
  n: number,
  flavour: PortalFlavour,
  sink: ClientSink,
  v: Int32Array,
  rawAddress: RawAddressSink | undefined,
): number {
  const [kDown, kUp] = COUNTER_KEYS[flavour];
  const downLen = kDown.length;
  const upLen = kUp.length;
  let count = 0;
  i = expect(buf, i, n, 0x7b);
  i = ws(buf, i);
  if (buf[i] === 0x7d) {
    v[0] = 0;
    return i + 1;
  }
  for (;;) {
    i = expect(buf, i, n, 0x22);
    const ms = i;
    const me = stringEnd(buf, i, n);
    if (me - ms !== 17) throw new Stop('client key is not a MAC', ms);
    let hi = 0;
    let lo = 0;
    for (let b = 0; b < 6; b++) {
      const p = ms + b * 3;
      const h = hexValue(buf[p]!);
      const l = hexValue(buf[p + 1]!);
      if (h < 0 || l < 0 || (b < 5 && buf[p + 2] !== 0x3a)) throw new Stop('client key is not a MAC', ms);
      if (b < 2) hi = hi * 256 + h * 16 + l;
      else lo = lo * 256 + h * 16 + l;
    }
    i = expect(buf, me + 1, n, 0x3a);
    i = expect(buf, i, n, 0x7b);
    let token = 0,
      state = 0,
      down = -1,
      up = -1,
      haveToken = false,
      haveState = false,
      ipStart = 0,
      ipEnd = 0,
      tokenStart = 0,
      tokenEnd = 0;
    i = ws(buf, i);
    if (buf[i] === 0x7d) i++;
    else
      for (;;) {
        if (i >= n || buf[i] !== 0x22) throw new Stop(i >= n ? 'truncated' : 'expected "', i);
        const ks = i + 1;
        const ke = stringEnd(buf, ks, n);
        i = ke + 1;
        if (buf[i] !== 0x3a) i = expect(buf, i, n, 0x3a);
        else i++;
        let vs: number, ve: number;
        if (buf[i] === 0x22 && i < n) {
          vs = i + 1;
          ve = stringEnd(buf, vs, n);
          i = ve + 1;
        } else {
          scalar(buf, i, n, v);
          vs = v[0]!;
          ve = v[1]!;
          i = v[2]!;
        }
        const klen = ke - ks;
        if (klen === downLen && equalsKey(buf, ks, ke, kDown)) {
          if (down >= 0) throw new Stop('duplicate field', ks);
          down = unsigned(buf, vs, ve, 'download counter');
        } else if (klen === upLen && equalsKey(buf, ks, ke, kUp)) {
          if (up >= 0) throw new Stop('duplicate field', ks);
          up = unsigned(buf, vs, ve, 'upload counter');
        } else if (klen === 5 && equalsKey(buf, ks, ke, K_TOKEN)) {
          if (haveToken) throw new Stop('duplicate field', ks);
          token = hashBytes(buf, vs, ve);
          haveToken = true;
          tokenStart = vs;
          tokenEnd = ve;
        } else if (klen === 5 && equalsKey(buf, ks, ke, K_STATE)) {
          if (haveState) throw new Stop('duplicate field', ks);
          state = stateCode(buf, vs, ve);
          haveState = true;
        } else if (klen === 2 && rawAddress !== undefined && buf[ks] === 0x69 && buf[ks + 1] === 0x70) {
          ipStart = vs;
          ipEnd = ve;
        }
        let c = buf[i];
        if (c !== 0x2c && c !== 0x7d) {
          i = ws(buf, i);
          c = buf[i];
        }
        if (c === 0x2c) {
          i = ws(buf, i + 1);
          continue;
        }
        if (c === 0x7d) {
          i++;
          break;
        }
        throw new Stop(i >= n ? 'truncated' : 'expected , or }', i);
      }
    if (down < 0 || up < 0 || !haveToken || !haveState) throw new Stop('client without counters, token or state', ms);
    if (!sink(hi, lo, token, state, down, up)) throw new Stop('duplicate client', ms);
    rawAddress?.(buf, ms, me, ipStart, ipEnd, tokenStart, tokenEnd);
    count++;
    i = next(buf, i, n, 0x7d);
    if (i < 0) {
      v[0] = count;
      return -2 - i + 1;
    }
  }
}
