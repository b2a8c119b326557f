/**
 * The lexical pieces of the strict scanner (scan.ts): whitespace, strings, plain numbers and separators over raw
 * bytes that end in a sentinel quote. Every piece that reaches the end of the data stops with 'truncated' (and only
 * then), which is what lets the scanner resume when more bytes arrive: any other stop is one the whole snapshot would
 * give at the same byte.
 */
import { STATE_CODES } from './formats.ts';

export class Stop {
  constructor(
    readonly why: string,
    readonly at: number,
  ) {}
}

export const TRUNCATED = 'truncated';

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

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

export function equalsKey(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}

export function ws(buf: Uint8Array, i: number): number {
  let c = buf[i];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i];
  return i;
}

/** i is the first byte of a string's content; returns the closing quote's index. */
export function stringEnd(buf: Uint8Array, i: number, n: number): number {
  // buf[n] is a quote (sentinel, see withSentinel): the loop stops without a bounds check per byte.
  if (i > n) throw new Stop(TRUNCATED, n);
  while (buf[i] !== 0x22) i++;
  if (i >= n) throw new Stop(TRUNCATED, i);
  return i;
}

/** The bytes' memory as 32-bit words at any offset (little-endian): for stringEndWords, made once per buffer. */
export function wordsOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * stringEnd four bytes at a time: the same answer and the same stops. A word holds a quote where (w ^ '""""') has a
 * zero byte; the classic zero-byte test may also flag bytes above the first zero, never below it, so the lowest flag
 * is the first quote. The 10,000 clients of an openNDS listing (28 keys and values of 1 to 30 bytes each) scan in
 * ~18% less time than byte by byte (docs/performance.md, the 10k tick). `words` is wordsOf(buf), buf[n] the sentinel
 * quote inside it.
 */
export function stringEndWords(buf: Uint8Array, words: DataView, i: number, n: number): number {
  if (i > n) throw new Stop(TRUNCATED, n);
  for (const last = n - 3; i <= last; i += 4) {
    const x = words.getUint32(i, true) ^ 0x22222222;
    const found = (x - 0x01010101) & ~x & 0x80808080;
    if (found !== 0) {
      i += (31 - Math.clz32(found & -found)) >> 3;
      if (i >= n) throw new Stop(TRUNCATED, i);
      return i;
    }
  }
  // The last bytes, too few for a word inside the buffer: byte by byte, as stringEnd does (and stops).
  return stringEnd(buf, i, n);
}

/** A mask of a 32-bit word's lowest `count` bytes (little-endian: its first bytes in memory); 0 for none. */
export function lowBytesMask(count: number): number {
  return count <= 0 ? 0 : count >= 4 ? -1 : (1 << (8 * count)) - 1;
}

/** i is at a value; returns the end of a plain number (digits, optional minus and fraction). */
export function numberEnd(buf: Uint8Array, i: number, n: number): number {
  const start = i;
  if (buf[i] === 0x2d) i++;
  let c = buf[i];
  const digits = i;
  while (c !== undefined && c >= 0x30 && c <= 0x39) c = buf[++i];
  if (i === digits) throw new Stop(i >= n ? TRUNCATED : 'not a plain value', start);
  if (c === 0x2e) {
    const frac = ++i;
    c = buf[i];
    while (c !== undefined && c >= 0x30 && c <= 0x39) c = buf[++i];
    if (i === frac) throw new Stop(i >= n ? TRUNCATED : 'bad number', i);
  }
  if (c === 0x65 || c === 0x45) throw new Stop('exponent', i);
  if (i >= n) throw new Stop(TRUNCATED, i);
  return i;
}

export function unsigned(buf: Uint8Array, start: number, end: number, what: string): number {
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
export function next(buf: Uint8Array, i: number, n: number, close: number): number {
  i = ws(buf, i);
  const c = buf[i];
  if (c === 0x2c) return i + 1;
  if (c === close) return -2 - i;
  throw new Stop(i >= n ? TRUNCATED : 'expected , or closing bracket', i);
}

export function expect(buf: Uint8Array, i: number, n: number, c: number): number {
  i = ws(buf, i);
  if (i >= n || buf[i] !== c) throw new Stop(i >= n ? TRUNCATED : `expected ${String.fromCharCode(c)}`, i);
  return i + 1;
}

/** A string or plain number at i (after whitespace): writes [contentStart, contentEnd, indexAfter] into `out`. */
export function scalar(buf: Uint8Array, i: number, n: number, out: Int32Array): void {
  i = ws(buf, i);
  if (buf[i] === 0x22) {
    if (i >= n) throw new Stop(TRUNCATED, i);
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
export function withSentinel(view: Buffer): Buffer {
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
