/**
 * libubox `blob_attr` framing: a bounds-checked reader over a byte range and a growable writer with nesting
 * (the blob_buf idea). Header word, big-endian: bit 31 EXTENDED, bits 30..24 id, bits 23..0 length including
 * the 4-byte header but not the padding to 4.
 */
import {
  BLOB_ATTR_ALIGN,
  BLOB_ATTR_EXTENDED,
  BLOB_ATTR_ID_MASK,
  BLOB_ATTR_ID_SHIFT,
  BLOB_ATTR_LEN_MASK,
} from './constants.ts';
import { UbusCodecError, undecodable } from './error.ts';

export const pad4 = (n: number): number => (n + BLOB_ATTR_ALIGN - 1) & ~(BLOB_ATTR_ALIGN - 1);

/** One attr found in a buffer; offsets are absolute into `buf`. */
export interface BlobAttrView {
  id: number;
  extended: boolean;
  /** Offset of the 4-byte header. */
  start: number;
  /** Unpadded length including the header. */
  len: number;
  payloadStart: number;
  payloadEnd: number;
}

export function readU32(buf: Uint8Array, off: number): number {
  if (off < 0 || off + 4 > buf.length) throw undecodable(`read past end (u32 at ${off}, length ${buf.length})`);
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function readU16(buf: Uint8Array, off: number): number {
  if (off < 0 || off + 2 > buf.length) throw undecodable(`read past end (u16 at ${off}, length ${buf.length})`);
  return (buf[off]! << 8) | buf[off + 1]!;
}

/**
 * Splits [start, end) into attrs. Unlike libubox (which silently stops at the first bad attr) this throws:
 * a codec that hides truncation makes bugs invisible. The last attr may omit its padding.
 */
export function readBlobAttrs(buf: Uint8Array, start: number, end: number): BlobAttrView[] {
  if (start < 0 || end > buf.length || start > end) throw undecodable('blob range out of bounds');
  const out: BlobAttrView[] = [];
  let off = start;
  while (off < end) {
    if (end - off < 4) throw undecodable(`truncated blob attr header at ${off}`);
    const word = readU32(buf, off);
    const len = word & BLOB_ATTR_LEN_MASK;
    if (len < 4) throw undecodable(`blob attr length ${len} < 4 at ${off}`);
    if (off + len > end) throw undecodable(`blob attr at ${off} (length ${len}) runs past its container`);
    out.push({
      id: (word & BLOB_ATTR_ID_MASK) >>> BLOB_ATTR_ID_SHIFT,
      extended: (word & BLOB_ATTR_EXTENDED) !== 0,
      start: off,
      len,
      payloadStart: off + 4,
      payloadEnd: off + len,
    });
    off += pad4(len);
  }
  return out;
}

/**
 * The buffers finished writers leave behind, for the next writers (BlobWriter.reusing). A writer grows by doubling to
 * its message's size, and each buffer it grows through is memory outside V8's heap that only a garbage collection
 * frees. V8 collects by the garbage on its own heap, which these writers make little of: with the meter's usage event
 * of 200 sessions written every tick, megabytes of dead buffers piled up in glibc's main heap between collections, and
 * the few long-lived allocations made among them kept that heap resident once they were freed (docs/performance.md,
 * "The leak check"). Two kept, at most 256 KiB: a message's writer and one nested in it (a signature, a table).
 */
const spares: Buffer[] = [];
const SPARES_KEPT = 2;
/**
 * glibc's mmap threshold as the launcher holds it (files/usr/bin/sluice): a larger buffer is a mapping of its own,
 * unmapped as it is freed, so keeping one would only hold memory the router gets back anyway.
 */
export const SPARE_MAX_BYTES = 128 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Growable big-endian writer with libubox-style nest start/end (lengths patched when the nest closes). Its bytes past
 * `pos` are always zero (each buffer is allocated zeroed, only ever written at `pos`, and zeroed again before another
 * writer reuses it), so aligning is moving `pos`. Integers are written byte by byte rather than through Buffer's
 * writeUInt32BE and friends: a daemon's first burst of calls runs this code before V8 has optimized it, where each of
 * those is a chain of JavaScript checks per call.
 */
export class BlobWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.alloc(initialSize);
  }

  /** A writer on a buffer a finished writer left (all zeros), when one is kept; else on a new one. */
  static reusing(initialSize = 256): BlobWriter {
    const spare = spares.pop();
    if (spare === undefined) return new BlobWriter(initialSize);
    const w = new BlobWriter(0);
    w.buf = spare;
    return w;
  }

  /** How many buffers are kept for reuse now (tests). */
  static sparesKept(): number {
    return spares.length;
  }

  get length(): number {
    return this.pos;
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    // A finished writer's buffer is empty.
    let size = Math.max(this.buf.length * 2, 256);
    while (size < need) size *= 2;
    const next = Buffer.alloc(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** A string's UTF-8 bytes, written in place (no Buffer per string: events carry hundreds of names and values). */
  utf8(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let i = 0;
    // ASCII by hand: Buffer#write costs more than the copy for the short names and ids events are made of.
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[this.pos + i] = c;
    }
    if (i === n) {
      this.pos += n;
      return;
    }
    const size = Buffer.byteLength(s, 'utf8');
    this.ensure(size);
    this.pos += this.buf.write(s, this.pos, size, 'utf8');
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  // A Uint8Array keeps the low 8 bits of what is stored: no masks needed.
  u16(v: number): void {
    this.ensure(2);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v >>> 8;
    buf[p + 1] = v;
    this.pos = p + 2;
  }

  u32(v: number): void {
    this.ensure(4);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v >>> 24;
    buf[p + 1] = v >>> 16;
    buf[p + 2] = v >>> 8;
    buf[p + 3] = v;
    this.pos = p + 4;
  }

  /** Zero bytes up to the next multiple of 4 (they are zero already: only `pos` moves). */
  align(): void {
    const target = pad4(this.pos);
    this.ensure(target - this.pos);
    this.pos = target;
  }

  /** Starts an attr; returns a token for `end()`. */
  start(id: number, extended: boolean): number {
    // An integer in 0..127 is the only number equal to its low 7 bits.
    if ((id & 0x7f) !== id) throw new UbusCodecError(`blob attr id ${id} out of range 0..127`);
    this.align();
    const at = this.pos;
    this.ensure(4);
    // The header's length bytes stay zero until end() writes them.
    this.buf[at] = (extended ? 0x80 : 0) | id;
    this.pos = at + 4;
    return at;
  }

  /** Closes an attr: its length is everything written since `start` (unpadded), then pads. */
  end(token: number): void {
    const len = this.pos - token;
    if (len > BLOB_ATTR_LEN_MASK) throw new UbusCodecError(`blob attr too long (${len} bytes)`);
    const buf = this.buf;
    buf[token + 1] = len >>> 16;
    buf[token + 2] = len >>> 8;
    buf[token + 3] = len;
    this.align();
  }

  put(id: number, extended: boolean, payload: Uint8Array): void {
    const t = this.start(id, extended);
    this.bytes(payload);
    this.end(t);
  }

  putU32(id: number, v: number): void {
    const t = this.start(id, false);
    this.u32(v);
    this.end(t);
  }

  putU8(id: number, v: number): void {
    const t = this.start(id, false);
    this.u8(v);
    this.end(t);
  }

  putString(id: number, s: string): void {
    const t = this.start(id, false);
    this.bytes(Buffer.from(s, 'utf8'));
    this.u8(0);
    this.end(t);
  }

  /**
   * A copy of the bytes written; the writer's buffer, zeroed, is kept for the next writer (BlobWriter.reusing) and
   * this one starts again empty.
   */
  finish(): Buffer {
    const buf = this.buf;
    const out = Buffer.from(buf.subarray(0, this.pos));
    if (buf.length > 0 && buf.length <= SPARE_MAX_BYTES && spares.length < SPARES_KEPT) {
      buf.fill(0, 0, this.pos);
      spares.push(buf);
    }
    this.buf = EMPTY;
    this.pos = 0;
    return out;
  }
}

const utf8 = new TextDecoder('utf-8');
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  return utf8.decode(buf.subarray(start, end));
}

/** A NUL-terminated string payload (libubox blob_check_type STRING: non-empty, last byte 0). */
export function readCString(buf: Uint8Array, start: number, end: number, what: string): string {
  if (end <= start || buf[end - 1] !== 0) throw undecodable(`${what}: string is not NUL-terminated`);
  let nul = start;
  while (buf[nul] !== 0) nul++;
  return decodeUtf8(buf, start, nul);
}
