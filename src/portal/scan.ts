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
 *
 * It can read a reply as it arrives (SnapshotScan): each feed scans the clients whose records are complete and hands
 * them to the sink, and the end of the reply finishes the rest, with the same sink calls and the same outcome as a scan
 * of the whole (a stop it meets on the way is the whole scan's stop, and an escape anywhere wins, as it does there).
 */
import { FORMATS } from './formats.ts';
import { hexValue } from './mac-parts.ts';
import {
  bytes,
  equalsKey,
  expect,
  hashBytes,
  lowBytesMask,
  next,
  scalar,
  stateCode,
  Stop,
  stringEnd,
  stringEndWords,
  TRUNCATED,
  unsigned,
  withSentinel,
  wordsOf,
  ws,
} from './scan-lex.ts';
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

/** `tokens`: hand the address sink each client's token too. */
export function scanSnapshot(
  buf: Uint8Array,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  addressSink?: AddressSink,
  tokens = false,
): ScanOutcome {
  return new SnapshotScan(expected, sinkFor, addressSink, tokens).end(buf);
}

const enum Phase {
  /** Before the clients' entries: the envelope is read again from the start on every feed (it is a few bytes). */
  Head,
  /** Inside the clients object, at `state.at`. */
  Entries,
  /** After the clients object: the rest is read at the end. */
  After,
  /** The envelope is read to its closing brace. */
  Closed,
}

/** Where a scan is: kept between feeds. `at` is always a point the scan can resume from without a client read twice. */
class ScanState {
  phase = Phase.Head;
  flavour: PortalFlavour | undefined = undefined;
  declared = -1;
  /** Clients in the list once it closed, -1 before. */
  clients = -1;
  /** Clients handed to the sink so far. */
  count = 0;
  at = 0;
  /** In Entries: a client was read at `at` and the comma or brace after it not yet. */
  separator = false;
  sink: ClientSink | undefined = undefined;
}

/**
 * One reply's scan, fed as the bytes arrive. feed() and end() take all the bytes so far (the same buffer, grown; a
 * sentinel quote after them saves a copy, see withSentinel). A client reaches the sink once, when its record is whole.
 */
export class SnapshotScan {
  private readonly state = new ScanState();
  private readonly v = new Int32Array(3);
  private readonly rawAddress: RawAddressSink | undefined;
  /** Bytes already searched for a backslash. */
  private checked = 0;
  private stop: Stop | undefined;

  constructor(
    private readonly expected: PortalFlavour | 'auto',
    private readonly sinkFor: SinkFor,
    addressSink?: AddressSink,
    tokens = false,
  ) {
    this.rawAddress = addressSink && rawAddressSink(addressSink, tokens);
  }

  /** Scans every client complete in `buf` (the reply so far); false once the scan has stopped. */
  feed(buf: Uint8Array): boolean {
    if (this.stop !== undefined) return false;
    const view = asBuffer(buf);
    // With no backslash anywhere, every string's raw bytes are its value, so comparing keys and hashing tokens on raw
    // bytes is exact, and a quote always ends a string. One native pass over the new bytes.
    const escape = view.indexOf(0x5c, this.checked);
    if (escape >= 0) {
      this.stop = new Stop('escape in snapshot', escape);
      return false;
    }
    this.checked = view.length;
    this.run(withSentinel(view), view.length, false);
    return this.stop === undefined;
  }

  /** The reply is whole in `buf`: scans the rest and says how the scan ended. */
  end(buf: Uint8Array): ScanOutcome {
    const view = asBuffer(buf);
    // An escape anywhere is the whole scan's answer, even past a stop met earlier.
    const escape = view.indexOf(0x5c, this.checked);
    if (escape >= 0) this.stop = new Stop('escape in snapshot', escape);
    this.checked = view.length;
    if (this.stop === undefined) this.run(withSentinel(view), view.length, true);
    if (this.stop !== undefined) return { ok: false, why: this.stop.why, at: this.stop.at };
    const { flavour, clients, declared } = this.state;
    return { ok: true, flavour: flavour!, clients, declared };
  }

  private run(buf: Buffer, n: number, last: boolean): void {
    try {
      advance(buf, n, last, this.state, this.expected, this.sinkFor, this.v, this.rawAddress);
    } catch (err) {
      if (!(err instanceof Stop)) throw err;
      // Before the end, running out of bytes only means waiting for more.
      if (last || err.why !== TRUNCATED) this.stop = err;
    }
  }
}

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** buf holds the bytes so far in [0, n) and a sentinel quote at n; `last`: they are the whole reply. */
function advance(
  buf: Buffer,
  n: number,
  last: boolean,
  st: ScanState,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  v: Int32Array,
  rawAddress: RawAddressSink | undefined,
): void {
  if (st.phase === Phase.Head) {
    st.flavour = undefined;
    st.declared = -1;
    const end = envelope(buf, n, expect(buf, 0, n, 0x7b), false, st, expected, sinkFor, v);
    if (st.phase === Phase.Head) {
      st.phase = Phase.Closed;
      st.at = end;
    }
  }
  if (st.phase === Phase.Entries) clientEntries(buf, n, st, v, rawAddress);
  if (!last) return;
  if (st.phase === Phase.After) {
    st.at = envelope(buf, n, st.at, true, st, expected, sinkFor, v);
    st.phase = Phase.Closed;
  }
  const i = ws(buf, st.at);
  if (i !== n) throw new Stop('bytes after the snapshot', i);
  const { flavour, declared, clients } = st;
  if (flavour === undefined || declared < 0 || clients < 0) throw new Stop('no client count or list', i);
  if (declared !== clients) throw new Stop(`count ${clients} != declared ${declared}`, i);
}

/**
 * The top-level object's members from i (after a member when `afterMember`), to its closing brace: returns the index
 * after it. At the "clients" key it returns instead, in Phase.Entries, with `st.at` inside the clients object.
 */
function envelope(
  buf: Buffer,
  n: number,
  i: number,
  afterMember: boolean,
  st: ScanState,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  v: Int32Array,
): number {
  for (;;) {
    if (afterMember) {
      i = next(buf, i, n, 0x7d);
      if (i < 0) return -2 - i + 1;
    }
    afterMember = true;
    i = expect(buf, i, n, 0x22);
    const ks = i;
    const ke = stringEnd(buf, i, n);
    i = expect(buf, ke + 1, n, 0x3a);
    if (equalsKey(buf, ks, ke, K_OPENNDS_COUNT) || equalsKey(buf, ks, ke, K_NDS_COUNT)) {
      const f: PortalFlavour = ke - ks === K_OPENNDS_COUNT.length ? 'opennds' : 'nodogsplash';
      if (st.flavour !== undefined && st.flavour !== f) throw new Stop('both formats', ks);
      if (expected !== 'auto' && expected !== f) throw new Stop(`not ${expected}`, ks);
      st.flavour = f;
      scalar(buf, i, n, v);
      st.declared = unsigned(buf, v[0]!, v[1]!, 'client count');
      i = v[2]!;
    } else if (equalsKey(buf, ks, ke, K_CLIENTS)) {
      if (st.clients >= 0) throw new Stop('duplicate clients', ks);
      if (st.flavour === undefined) throw new Stop('clients before count', ks);
      st.sink = sinkFor(st.flavour);
      st.at = expect(buf, i, n, 0x7b);
      st.phase = Phase.Entries;
      return st.at;
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
  }
}

/**
 * The clients object's entries from `st.at` to its closing brace (then Phase.After, `st.at` after it), or until the
 * bytes run out (a Stop 'truncated' with `st` at the last whole client).
 */
function clientEntries(buf: Buffer, n: number, st: ScanState, v: Int32Array, rawAddress: RawAddressSink | undefined) {
  const [kDown, kUp] = COUNTER_KEYS[st.flavour!];
  const sink = st.sink!;
  const downLen = kDown.length;
  const upLen = kUp.length;
  const words = wordsOf(buf);
  // The bytes from a member's comma to the next key's quote, as the portal prints them (openNDS `,\n      "`: 8 bytes;
  // nodogsplash `,\n"`: 2), learned from the first one read byte by byte: up to 8 bytes, as two words under masks,
  // sepLen 0 until learned. Only bytes equal to ones ws() already accepted are skipped this way, so the scan accepts
  // and stops exactly as it does byte by byte.
  let sepLen = 0,
    sepA = 0,
    sepMaskA = 0,
    sepB = 0,
    sepMaskB = 0;
  let count = st.count;
  let i = st.at;
  if (!st.separator && count === 0) {
    i = ws(buf, i);
    if (buf[i] === 0x7d) {
      st.clients = 0;
      st.at = i + 1;
      st.phase = Phase.After;
      return;
    }
  }
  for (;;) {
    if (st.separator) {
      i = next(buf, i, n, 0x7d);
      if (i < 0) {
        st.clients = count;
        st.at = -2 - i + 1;
        st.separator = false;
        st.phase = Phase.After;
        return;
      }
      st.at = i;
      st.separator = false;
    }
    i = expect(buf, i, n, 0x22);
    const ms = i;
    const me = stringEndWords(buf, words, i, n);
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
        if (i >= n || buf[i] !== 0x22) throw new Stop(i >= n ? TRUNCATED : 'expected "', i);
        const ks = i + 1;
        const ke = stringEndWords(buf, words, ks, n);
        i = ke + 1;
        if (buf[i] !== 0x3a) i = expect(buf, i, n, 0x3a);
        else i++;
        let vs: number, ve: number;
        if (buf[i] === 0x22 && i < n) {
          vs = i + 1;
          ve = stringEndWords(buf, words, vs, n);
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
        // The separator as learned (below), checked two words at a time: 20% of the 10k scan, byte by byte.
        if (
          c === 0x2c &&
          sepLen !== 0 &&
          i + 8 <= n &&
          (words.getUint32(i, true) & sepMaskA) === sepA &&
          (words.getUint32(i + 4, true) & sepMaskB) === sepB &&
          buf[i + sepLen] === 0x22
        ) {
          i += sepLen;
          continue;
        }
        if (c !== 0x2c && c !== 0x7d) {
          i = ws(buf, i);
          c = buf[i];
        }
        if (c === 0x2c) {
          const comma = i;
          i = ws(buf, i + 1);
          if (sepLen === 0 && buf[i] === 0x22 && i - comma <= 8 && comma + 8 <= n) {
            sepLen = i - comma;
            sepMaskA = lowBytesMask(sepLen);
            sepMaskB = lowBytesMask(sepLen - 4);
            sepA = words.getUint32(comma, true) & sepMaskA;
            sepB = words.getUint32(comma + 4, true) & sepMaskB;
          }
          continue;
        }
        if (c === 0x7d) {
          i++;
          break;
        }
        throw new Stop(i >= n ? TRUNCATED : 'expected , or }', i);
      }
    if (down < 0 || up < 0 || !haveToken || !haveState) throw new Stop('client without counters, token or state', ms);
    if (!sink(hi, lo, token, state, down, up)) throw new Stop('duplicate client', ms);
    rawAddress?.(buf, ms, me, ipStart, ipEnd, tokenStart, tokenEnd);
    count++;
    // The client is handed over: from here a resume starts at its separator, never at its record.
    st.count = count;
    st.at = i;
    st.separator = true;
  }
}
