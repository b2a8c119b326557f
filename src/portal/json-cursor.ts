/**
 * A strict JSON cursor over bytes, for scanners that read a few fields of a large document without building it
 * (portal/nft-scan.ts): whitespace, strings (escapes checked), counts and any value checked and skipped, as RFC 8259
 * says; it stops with NftDumpError where JSON.parse would throw, and where a value it reads could be mis-read.
 */
import { nftDumpRefusal, type NftDumpReason } from './counter-dump.ts';
import { hexValue } from './mac-parts.ts';

/** The literal names JSON has. */
const WORDS = ['true', 'false', 'null'] as const;

/** Deeper than nft prints (its rules' expressions nest 7 deep); JSON.parse would take any depth. */
const MAX_DEPTH = 32;

export class JsonCursor {
  /** The next byte. */
  protected i = 0;
  protected readonly n: number;
  /** The last string read: its content's bytes [s, e), and whether it holds an escape. */
  protected s = 0;
  protected e = 0;
  protected escaped = false;

  /** The same bytes, read four at a time by Literal. */
  protected readonly words: DataView;

  constructor(protected readonly b: Uint8Array) {
    this.n = b.length;
    this.words = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  protected fail(reason: NftDumpReason, message: string, at = this.i): never {
    throw nftDumpRefusal(reason, message, at);
  }

  /** Skips whitespace; returns the next byte, failing at the end. */
  protected peek(): number {
    const b = this.b;
    let i = this.i;
    let c = b[i];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++i];
    this.i = i;
    if (i >= this.n) this.fail('truncated', 'it ends too early');
    return c!;
  }

  protected expect(c: number): void {
    if (this.peek() !== c) this.fail('not-json', `expected ${String.fromCharCode(c)}`);
    this.i++;
  }

  /** After a member: true if another follows (the comma is consumed), false at `close` (consumed too). */
  protected more(close: number): boolean {
    const c = this.peek();
    this.i++;
    if (c === 0x2c) return true;
    if (c === close) return false;
    return this.fail('not-json', `expected , or ${String.fromCharCode(close)}`, this.i - 1);
  }

  /** At an opening quote: reads the string into s, e and escaped. */
  protected string(): void {
    const b = this.b;
    const n = this.n;
    const s = this.i + 1;
    let i = s;
    let escaped = false;
    for (;;) {
      if (i >= n) this.fail('truncated', 'a string runs past the end', s - 1);
      const c = b[i]!;
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        i = this.escape(i);
      } else if (c < 0x20) this.fail('not-json', 'a control character in a string', i);
      else i++;
    }
    this.s = s;
    this.e = i;
    this.escaped = escaped;
    this.i = i + 1;
  }

  /** i at a backslash: returns the index after its escape sequence. */
  protected escape(i: number): number {
    if (i + 1 >= this.n) this.fail('truncated', 'a string runs past the end', i);
    const c = this.b[i + 1]!;
    if (c === 0x75) {
      for (let k = i + 2; k < i + 6; k++) {
        if (k >= this.n) this.fail('truncated', 'a string runs past the end', k);
        if (hexValue(this.b[k]!) < 0) this.fail('not-json', 'a bad \\u escape', i);
      }
      return i + 6;
    }
    // " \ / b f n r t
    if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74)
      return i + 2;
    return this.fail('not-json', 'a bad escape', i);
  }

  /** A key, or a string value the scan reads: one with an escape is refused, its bytes are not its value. */
  protected plain(what: string): void {
    if (this.peek() !== 0x22) this.fail('shape', `${what} is not a string`);
    this.string();
    if (this.escaped) this.fail('escape', `an escape in ${what}`, this.s);
  }

  protected key(): void {
    this.plain('a key');
    this.expect(0x3a);
  }

  /** A count: a plain non-negative integer below 2^53. */
  protected count(what: string): number {
    const c = this.peek();
    const b = this.b;
    const n = this.n;
    const start = this.i;
    if (c === 0x2d) this.fail('bad-number', `${what} is negative`);
    if (c < 0x30 || c > 0x39) this.fail('shape', `${what} is not a number`);
    let i = start;
    let v = 0;
    let d = c - 0x30;
    while (d >= 0 && d <= 9) {
      v = v * 10 + d;
      d = ++i < n ? b[i]! - 0x30 : -1;
    }
    if (i >= n) this.fail('truncated', 'it ends too early', i);
    if (b[start] === 0x30 && i - start > 1) this.fail('not-json', 'a leading zero', start);
    const after = b[i];
    if (after === 0x2e || after === 0x65 || after === 0x45) this.fail('bad-number', `${what} is not an integer`, i);
    // 16 digits at most: then v is exact up to 2^53 - 1, and anything above it compares above.
    if (i - start > 16 || v > Number.MAX_SAFE_INTEGER) this.fail('bad-number', `${what} is beyond 2^53`, start);
    this.i = i;
    return v;
  }

  /** Any JSON value, checked and skipped. */
  protected skip(depth: number): void {
    const c = this.peek();
    if (c === 0x22) return this.string();
    if (c === 0x7b || c === 0x5b) {
      if (depth >= MAX_DEPTH) this.fail('too-deep', 'nested deeper than nft prints');
      const close = c + 2;
      this.i++;
      if (this.peek() === close) {
        this.i++;
        return;
      }
      do {
        if (c === 0x7b) {
          if (this.peek() !== 0x22) this.fail('not-json', 'expected a key');
          this.string();
          this.expect(0x3a);
        }
        this.skip(depth + 1);
      } while (this.more(close));
      return;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    for (const word of WORDS) {
      if (c === word.charCodeAt(0)) {
        for (let k = 0; k < word.length; k++) {
          if (this.i + k >= this.n) this.fail('truncated', 'it ends too early', this.i + k);
          if (this.b[this.i + k] !== word.charCodeAt(k)) this.fail('not-json', 'not a JSON value');
        }
        this.i += word.length;
        return;
      }
    }
    this.fail('not-json', 'not a JSON value');
  }

  /** Any JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  protected number(): void {
    const b = this.b;
    let i = this.i;
    if (b[i] === 0x2d) i++;
    const first = i;
    i = this.digitsFrom(i, 'digits');
    if (b[first] === 0x30 && i - first > 1) this.fail('not-json', 'a leading zero', first);
    if (b[i] === 0x2e) i = this.digitsFrom(i + 1, 'a fraction');
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      i = this.digitsFrom(i, 'an exponent');
    }
    this.i = i;
  }

  /**
   * The index past the digits from `from`, of which there must be one at least, followed by a byte. A method, not a
   * closure made in each number(): with the build's keepNames each closure made is also a defineProperty of its name.
   */
  private digitsFrom(from: number, what: string): number {
    const b = this.b;
    const n = this.n;
    let i = from;
    while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
    if (i >= n) this.fail('truncated', 'it ends too early', i);
    if (i === from) this.fail('not-json', `a number without ${what}`, i);
    return i;
  }

  /**
   * True, past it, if `lit` is next, byte for byte. The fast path for what nft prints (a quoted key with its colon, a
   * quoted value: then it is that string, with no escape); anything else reads the general way.
   */
  protected literal(lit: Literal): boolean {
    const i = this.i;
    if (!lit.at(this.words, this.b, i, this.n)) return false;
    this.i = i + lit.length;
    return true;
  }

  /** The whitespace after the document (nft ends with a newline) and nothing else. */
  protected end(): void {
    const b = this.b;
    let i = this.i;
    while (i < this.n && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
    if (i < this.n) this.fail('not-json', 'bytes after the document', i);
  }
}

/** ASCII text to compare at a position, four bytes at a time (DataView reads are inlined by V8's optimizer). */
export class Literal {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private readonly head: Int32Array;

  constructor(text: string) {
    this.bytes = ascii(text);
    this.length = this.bytes.length;
    const view = new DataView(this.bytes.buffer);
    this.head = Int32Array.from({ length: this.length >> 2 }, (_, w) => view.getInt32(w * 4, true));
  }

  /** Whether the text is at byte i of `b` (`words` over the same bytes, n their length). */
  at(words: DataView, b: Uint8Array, i: number, n: number): boolean {
    if (i + this.length > n) return false;
    const head = this.head;
    for (let w = 0; w < head.length; w++) if (words.getInt32(i + w * 4, true) !== head[w]) return false;
    for (let k = head.length * 4; k < this.length; k++) if (b[i + k] !== this.bytes[k]) return false;
    return true;
  }
}

/** The bytes of a string of ASCII characters. */
export const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

export function equals(b: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[start + k] !== key[k]) return false;
  return true;
}
