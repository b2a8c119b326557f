/**
 * blobmsg (libubox blobmsg.h): the JSON-like payload of ubus DATA/SIGNATURE. Two layers:
 * - lossless nodes (`BlobmsgNode`) that keep names, wire types and leaf payload bytes, so decode → encode
 *   reproduces the input exactly (fixture tests, forwarding);
 * - plain JS values (`BlobmsgTable`), mapped like the reference CLI (libubox blobmsg_json).
 * A "table body" is concatenated named elements with no outer header: what DATA carries.
 */
import { BlobWriter, decodeUtf8, pad4, readBlobAttrs, readCString, readU16 } from './blob.ts';
import { BLOBMSG_TYPE_LAST, BlobmsgType, blobmsgTypeName } from './constants.ts';
import { UbusCodecError, undecodable } from './error.ts';

export type BlobmsgValue = null | boolean | number | bigint | string | BlobmsgValue[] | BlobmsgTable;
export interface BlobmsgTable {
  [key: string]: BlobmsgValue;
}
export type BlobmsgScalar = null | boolean | number | bigint | string;

/** One blobmsg element. Containers have `children`; leaves have `value` and (after decode) `payload`. */
export interface BlobmsgNode {
  name: string;
  /** BlobmsgType number (INT8 and BOOL share 7). */
  type: number;
  /** Leaf value as on the wire: INT8 stays a number here (the JS layer turns it into a boolean). */
  value?: BlobmsgScalar;
  children?: BlobmsgNode[];
  /** Exact leaf payload bytes; when set, encode writes them instead of `value`. */
  payload?: Uint8Array;
}

/** A per-key wire type that overrides the automatic JS → blobmsg mapping (a BlobmsgType number). */
export type BlobmsgPolicy = Record<string, number>;

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------------------------- decode

export function decodeBlobmsgNodes(body: Uint8Array): BlobmsgNode[] {
  return decodeChildren(body, 0, body.length, 0);
}

/** For bodies the peer may fill with anything (DATA, SIGNATURE): undefined when they are not valid blobmsg. */
export function tryDecodeBlobmsgNodes(body: Uint8Array): BlobmsgNode[] | undefined {
  try {
    return decodeBlobmsgNodes(body);
  } catch (err) {
    if (err instanceof UbusCodecError) return undefined;
    throw err;
  }
}

const MAX_DEPTH = 64;

function decodeChildren(buf: Uint8Array, start: number, end: number, depth: number): BlobmsgNode[] {
  if (depth > MAX_DEPTH) throw undecodable(`blobmsg nesting deeper than ${MAX_DEPTH}`);
  const out: BlobmsgNode[] = [];
  for (const a of readBlobAttrs(buf, start, end)) {
    if (!a.extended) throw undecodable(`blobmsg element at ${a.start} lacks the EXTENDED bit`);
    if (a.id > BLOBMSG_TYPE_LAST) throw undecodable(`blobmsg type ${a.id} at ${a.start} is unknown`);
    if (a.payloadEnd - a.payloadStart < 4)
      throw undecodable(`blobmsg element at ${a.start} too short for its name header`);
    const namelen = readU16(buf, a.payloadStart);
    const hdrlen = (2 + namelen + 1 + 3) & ~3;
    const nameStart = a.payloadStart + 2;
    if (a.payloadStart + hdrlen > a.payloadEnd) throw undecodable(`blobmsg name at ${a.start} runs past the element`);
    if (buf[nameStart + namelen] !== 0) throw undecodable(`blobmsg name at ${a.start} is not NUL-terminated`);
    const name = decodeUtf8(buf, nameStart, nameStart + namelen);
    const ps = a.payloadStart + hdrlen;
    const pe = a.payloadEnd;
    if (a.id === BlobmsgType.ARRAY || a.id === BlobmsgType.TABLE) {
      out.push({ name, type: a.id, children: decodeChildren(buf, ps, pe, depth + 1) });
    } else {
      const payload = buf.slice(ps, pe);
      out.push({ name, type: a.id, value: decodeScalar(a.id, payload, a.start), payload });
    }
  }
  return out;
}

/**
 * A scalar's payload has its type's size. A function of its own, not a closure in decodeScalar: the bundle keeps
 * function names (esbuild keepNames), which names each closure as it is made, a cost per scalar decoded.
 */
function need(p: Uint8Array, n: number, type: number, at: number): void {
  if (p.length !== n) throw undecodable(`blobmsg ${blobmsgTypeName(type)} at ${at} has ${p.length} bytes, wants ${n}`);
}

// Integers are read byte by byte, no DataView per scalar; the STRING case builds its error text only on an error.
function decodeScalar(type: number, p: Uint8Array, at: number): BlobmsgScalar {
  switch (type) {
    case BlobmsgType.UNSPEC:
      return null;
    case BlobmsgType.STRING:
      if (p.length === 0 || p[p.length - 1] !== 0)
        throw undecodable(`blobmsg STRING at ${at}: string is not NUL-terminated`);
      return readCString(p, 0, p.length, 'blobmsg STRING');
    case BlobmsgType.INT8:
      need(p, 1, type, at);
      return (p[0]! << 24) >> 24;
    case BlobmsgType.INT16:
      need(p, 2, type, at);
      return (((p[0]! << 8) | p[1]!) << 16) >> 16;
    case BlobmsgType.INT32:
      need(p, 4, type, at);
      return (p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!;
    case BlobmsgType.INT64: {
      need(p, 8, type, at);
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength).getBigInt64(0);
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case BlobmsgType.DOUBLE:
      need(p, 8, type, at);
      return new DataView(p.buffer, p.byteOffset, p.byteLength).getFloat64(0);
    default:
      throw undecodable(`blobmsg type ${type} at ${at} is not a scalar`);
  }
}

/** Nodes → JS: INT8 → boolean (as the CLI prints it), ints signed, INT64 → bigint only beyond 2^53. */
export function nodeToValue(node: BlobmsgNode): BlobmsgValue {
  if (node.type === BlobmsgType.TABLE) return nodesToTable(node.children ?? []);
  if (node.type === BlobmsgType.ARRAY) return (node.children ?? []).map(nodeToValue);
  if (node.type === BlobmsgType.INT8) return node.value !== 0;
  return node.value ?? null;
}

/** Duplicate names: the last one wins, as in libubox blobmsg_parse. */
export function nodesToTable(nodes: readonly BlobmsgNode[]): BlobmsgTable {
  const out: BlobmsgTable = {};
  for (const n of nodes) {
    // defineProperty so a key named "__proto__" stays data instead of replacing the prototype; any other name is a
    // plain store, several times cheaper before V8 has optimized this.
    if (n.name === '__proto__')
      Object.defineProperty(out, n.name, {
        value: nodeToValue(n),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[n.name] = nodeToValue(n);
  }
  return out;
}

export function decodeBlobmsgTable(body: Uint8Array): BlobmsgTable {
  return nodesToTable(decodeBlobmsgNodes(body));
}

/** Decodes an ARRAY body (unnamed elements) into JS values. */
export function decodeBlobmsgArray(body: Uint8Array): BlobmsgValue[] {
  return decodeBlobmsgNodes(body).map(nodeToValue);
}

// ---------------------------------------------------------------------------------------------- encode

export function encodeBlobmsgNodes(nodes: readonly BlobmsgNode[]): Uint8Array {
  const w = BlobWriter.reusing();
  for (const n of nodes) writeNode(w, n, 0);
  return w.finish();
}

/**
 * Each name's header as it goes on the wire (u16 length, the UTF-8 bytes, NUL, zeros to 4): a daemon's replies and
 * events carry the same few dozen names over and over, so each is encoded once and copied after. Bounded, for a peer
 * that sends names of its own (a call's arguments forwarded, a listing of its data): past the bound, and for long
 * names, they are encoded each time.
 */
const names = new Map<string, Uint8Array>();
const NAMES_KEPT = 1024;
/** Longer names are not kept: at most ~70 KiB for all of them. */
const NAME_KEPT_BYTES = 64;

function nameHeader(name: string): Uint8Array {
  const kept = names.get(name);
  if (kept !== undefined) return kept;
  const size = Buffer.byteLength(name, 'utf8');
  if (size > 0xffff) throw new UbusCodecError(`blobmsg name longer than 65535 bytes`);
  const header = Buffer.alloc(pad4(2 + size + 1));
  header[0] = size >>> 8;
  header[1] = size & 0xff;
  header.write(name, 2, size, 'utf8');
  if (names.size < NAMES_KEPT && size <= NAME_KEPT_BYTES) names.set(name, header);
  return header;
}

function writeName(w: BlobWriter, name: string): void {
  w.bytes(nameHeader(name));
}

function writeNode(w: BlobWriter, n: BlobmsgNode, depth: number): void {
  if (depth > MAX_DEPTH) throw new UbusCodecError(`blobmsg nesting deeper than ${MAX_DEPTH}`);
  if (!Number.isInteger(n.type) || n.type < 0 || n.type > BLOBMSG_TYPE_LAST)
    throw new UbusCodecError(`blobmsg type ${n.type} is unknown`);
  const t = w.start(n.type, true);
  writeName(w, n.name);
  if (n.type === BlobmsgType.ARRAY || n.type === BlobmsgType.TABLE) {
    for (const c of n.children ?? []) writeNode(w, c, depth + 1);
  } else if (n.payload !== undefined) {
    w.bytes(n.payload);
  } else {
    writeScalar(w, n.type, n.value ?? null, n.name);
  }
  w.end(t);
}

function integerOf(v: BlobmsgScalar, key: string, type: number): bigint {
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new UbusCodecError(`"${key}": ${describe(v)} cannot be encoded as ${blobmsgTypeName(type)}`, { key });
}

/** Each integer type's range: the signed and the unsigned range of its width together (writeScalar). */
const INTEGER_RANGES: Readonly<Record<number, readonly [bigint, bigint]>> = {
  [BlobmsgType.INT8]: [-128n, 255n],
  [BlobmsgType.INT16]: [-32768n, 65535n],
  [BlobmsgType.INT32]: [-(1n << 31n), (1n << 32n) - 1n],
  [BlobmsgType.INT64]: [INT64_MIN, U64_MAX],
};

/** `v` as an integer of `type`, within the type's range. */
function integerIn(v: BlobmsgScalar, key: string, type: number): bigint {
  const n = integerOf(v, key, type);
  const [min, max] = INTEGER_RANGES[type]!;
  if (n < min || n > max)
    throw new UbusCodecError(`"${key}": ${n} is out of range for ${blobmsgTypeName(type)}`, { key });
  return n;
}

/**
 * Integer types accept both the signed and the unsigned range of their width and write the bit pattern:
 * object ids are u32 but must travel as INT32 (ubusd's event `register` policy rejects INT64).
 */
function writeScalar(w: BlobWriter, type: number, v: BlobmsgScalar, key: string): void {
  switch (type) {
    case BlobmsgType.UNSPEC:
      if (v !== null) throw new UbusCodecError(`"${key}": UNSPEC only carries null`, { key });
      return;
    case BlobmsgType.STRING:
      if (typeof v !== 'string') throw new UbusCodecError(`"${key}": ${describe(v)} is not a string`, { key });
      w.utf8(v);
      w.u8(0);
      return;
    case BlobmsgType.INT8:
      if (typeof v === 'boolean') w.u8(v ? 1 : 0);
      else w.u8(Number(integerIn(v, key, type)));
      return;
    case BlobmsgType.INT16:
      w.u16(Number(integerIn(v, key, type)));
      return;
    case BlobmsgType.INT32:
      // The usual case without a BigInt: a safe integer in INT32's signed or unsigned range.
      if (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= 0xffffffff) w.u32(v >>> 0);
      else w.u32(Number(BigInt.asUintN(32, integerIn(v, key, type))));
      return;
    case BlobmsgType.INT64: {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt.asUintN(64, integerIn(v, key, type)));
      w.bytes(b);
      return;
    }
    case BlobmsgType.DOUBLE: {
      if (typeof v !== 'number' && typeof v !== 'bigint')
        throw new UbusCodecError(`"${key}": ${describe(v)} is not a number`, { key });
      const b = Buffer.alloc(8);
      b.writeDoubleBE(Number(v));
      w.bytes(b);
      return;
    }
    default:
      throw new UbusCodecError(`"${key}": type ${blobmsgTypeName(type)} is not a scalar`, { key });
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `string "${v.length > 20 ? `${v.slice(0, 20)}…` : v}"` : `${typeof v} ${String(v)}`;
}

/** The type the reference CLI would pick for a JS value (blobmsg_add_json_element). */
export function autoBlobmsgType(v: unknown, key = ''): number {
  if (v === null) return BlobmsgType.UNSPEC;
  switch (typeof v) {
    case 'boolean':
      return BlobmsgType.INT8;
    case 'string':
      return BlobmsgType.STRING;
    case 'bigint':
      return BlobmsgType.INT64;
    case 'number':
      if (!Number.isInteger(v)) return BlobmsgType.DOUBLE;
      if (v >= INT32_MIN && v <= INT32_MAX) return BlobmsgType.INT32;
      // json-c keeps integers as int64; larger ones only exist as doubles.
      return BigInt(v) >= INT64_MIN && BigInt(v) <= INT64_MAX ? BlobmsgType.INT64 : BlobmsgType.DOUBLE;
    case 'object':
      return Array.isArray(v) ? BlobmsgType.ARRAY : BlobmsgType.TABLE;
    default:
      throw new UbusCodecError(`"${key}": ${typeof v} has no blobmsg representation`, { key });
  }
}

/**
 * JS table → table body (named elements, no outer header), written straight from the values: no node per value (a
 * usage event of 32 sessions took 2.7× as long through nodes). `policy` forces a key's wire type; containers recurse
 * with the automatic mapping (autoBlobmsgType), absent (undefined) fields are left out as JSON.stringify does.
 */
export function encodeBlobmsgTable(table: BlobmsgTable, policy?: BlobmsgPolicy): Uint8Array {
  const w = BlobWriter.reusing(1024);
  writeBlobmsgTable(w, table, policy);
  return w.finish();
}

/** encodeBlobmsgTable's bytes written into `w` (a message's DATA attr, written in place). */
export function writeBlobmsgTable(w: BlobWriter, table: BlobmsgTable, policy?: BlobmsgPolicy): void {
  new ValueWriter(w).entries(table, policy, 0);
}

/** JS array → ARRAY body (unnamed but EXTENDED elements). */
export function encodeBlobmsgArray(items: readonly BlobmsgValue[]): Uint8Array {
  const values = new ValueWriter(BlobWriter.reusing());
  for (const v of items) values.value('', v, autoBlobmsgType(v, ''), 0);
  return values.w.finish();
}

/** JS values as blobmsg elements, each checked against its wire type before a byte of it is written. */
class ValueWriter {
  constructor(readonly w: BlobWriter) {}

  entries(table: BlobmsgTable, policy: BlobmsgPolicy | undefined, depth: number): void {
    // Own enumerable keys, as for-in with hasOwn gives them, in one call rather than a check per key.
    const keys = Object.keys(table);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const v = table[key];
      if (v === undefined) continue;
      const forced = policy !== undefined && Object.hasOwn(policy, key) ? policy[key] : undefined;
      this.value(key, v, forced ?? autoBlobmsgType(v, key), depth);
    }
  }

  value(name: string, v: BlobmsgValue, type: number, depth: number): void {
    const w = this.w;
    if (depth > MAX_DEPTH) throw new UbusCodecError(`blobmsg nesting deeper than ${MAX_DEPTH}`);
    if (type === BlobmsgType.TABLE) {
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        throw new UbusCodecError(`"${name}": ${describe(v)} is not a table`, { key: name });
      const t = w.start(type, true);
      writeName(w, name);
      this.entries(v, undefined, depth + 1);
      w.end(t);
      return;
    }
    if (type === BlobmsgType.ARRAY) {
      if (!Array.isArray(v)) throw new UbusCodecError(`"${name}": ${describe(v)} is not an array`, { key: name });
      const t = w.start(type, true);
      writeName(w, name);
      for (const item of v) this.value('', item, autoBlobmsgType(item, name), depth + 1);
      w.end(t);
      return;
    }
    if (typeof v === 'object' && v !== null)
      throw new UbusCodecError(`"${name}": ${describe(v)} cannot be encoded as ${blobmsgTypeName(type)}`, {
        key: name,
      });
    // A forced type is checked first (an unknown one is refused as no scalar); a value of its automatic type is valid
    // by construction.
    if (type !== autoBlobmsgType(v, name)) writeScalar(new BlobWriter(16), type, v, name);
    const t = w.start(type, true);
    writeName(w, name);
    writeScalar(w, type, v, name);
    w.end(t);
  }
}

/** Reads an INT32 that holds a u32 (object ids): blobmsg decodes INT32 as signed. */
export function asU32(v: BlobmsgValue | undefined): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= 0xffffffff ? v >>> 0 : undefined;
}
