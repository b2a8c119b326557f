/**
 * A strict scanner for `nft -j list table inet sluice_count` (portal/kernel-counters.ts), over the raw bytes: what the
 * meter reads every tick, 3.3 MB for 10,000 clients, where JSON.parse built a tree of 40,000 objects to keep six
 * numbers per client (docs/performance.md, "The kernel path's row").
 *
 * The shape, as nft 1.0.6 prints it (test/fixtures/nft/ holds its real output): one line `{"nftables": [item, …]}`,
 * jansson's ", " and ": " separators, each item an object of one key: `metainfo`, `table`, each `counter` (family, name,
 * table, handle, packets, bytes, a comment if it has one), the two `map`s (`elem`: [address, counter name] pairs, absent
 * when empty), the `chain`s and their `rule`s. The scanner is a whole JSON tokenizer (whitespace, field order and any
 * other item are free, and skipped values are checked too), and reads only what the accounting needs: each counter of
 * the table, the address `cdown` maps it on, the table's handle, and whether its maps and chains are there.
 *
 * It never guesses: anything it cannot read exactly throws NftDumpError (code ERR_KERNEL_QUOTA, as JSON.parse's failure
 * did), never a partial reading. That is invalid or truncated JSON, bytes after it, a counter without one of its six
 * fields or with a field of the wrong type, a count that is negative, fractional or beyond 2^53, an escape in a string
 * it reads (its bytes would not be its value; nft's names never have one), a key twice in an object it reads (JSON.parse
 * keeps the last), the table twice or not at all, nesting deeper than nft's. There is no JSON.parse fallback: nft is the
 * only writer and prints none of these, and a dump that is refused is a skipped tick, as an unparsable one was.
 * Lenient where the JSON.parse parser was (test/portal/nft-dump-reference.ts): counters of another table or with
 * another name, half pairs and map elements that are not two strings are left out.
 */
import { CounterDump, NftDumpError, Slots, type NftDumpReason } from './counter-dump.ts';
import { hexValue } from './mac-parts.ts';

const TABLE = 'sluice_count';
/** nft's own output nests 7 deep (a rule's expressions); JSON.parse would take any depth. */
const MAX_DEPTH = 32;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const K_NFTABLES = ascii('nftables');
const K_COUNTER = ascii('counter');
const K_TABLE = ascii('table');
const K_MAP = ascii('map');
const K_CHAIN = ascii('chain');
const K_FAMILY = ascii('family');
const K_NAME = ascii('name');
const K_HANDLE = ascii('handle');
const K_PACKETS = ascii('packets');
const K_BYTES = ascii('bytes');
const K_ELEM = ascii('elem');
const V_TABLE = ascii(TABLE);
const V_INET = ascii('inet');
const V_CUP = ascii('cup');
const V_CDOWN = ascii('cdown');
const V_COUNT_UP = ascii('count_up');
const V_COUNT_DOWN = ascii('count_down');

/** `nft -j list table inet sluice_count`'s output → its counters. Throws NftDumpError. */
export function scanCounterDump(dump: Uint8Array | string): CounterDump {
  const bytes = typeof dump === 'string' ? Buffer.from(dump, 'utf8') : dump;
  return new Scan(bytes).document();
}

function equals(b: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[start + k] !== key[k]) return false;
  return true;
}

/** A sluice counter's name, `cu_` or `cd_` and 12 lowercase hex digits (kernel-counters.ts) → 'u' or 'd', or 0. */
function counterKind(b: Uint8Array, s: number, e: number): number {
  if (e - s !== 15 || b[s] !== 0x63 || b[s + 2] !== 0x5f) return 0;
  const kind = b[s + 1];
  return kind === 0x75 || kind === 0x64 ? kind : 0;
}

/** The MAC of a name counterKind accepted, in two parts (mac-parts.ts), or -1 when a digit is not lowercase hex. */
function macHalf(b: Uint8Array, from: number, digits: number): number {
  let v = 0;
  for (let k = from; k < from + digits; k++) {
    const c = b[k]!;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

class Scan {
  private i = 0;
  private readonly n: number;
  /** The last string read: its content's bytes [s, e), and whether it holds an escape. */
  private s = 0;
  private e = 0;
  private escaped = false;
  private readonly slots = new Slots();
  /** cdown's elements: each counter name's slot hint, MAC parts and address bytes, resolved once all are read. */
  private readonly elems: number[] = [];
  private tableHandle = -1;
  private readonly parts = new Set<string>();

  constructor(private readonly b: Uint8Array) {
    this.n = b.length;
  }

  private fail(reason: NftDumpReason, message: string, at = this.i): never {
    throw new NftDumpError(reason, message, at);
  }

  /** Skips whitespace; returns the next byte, failing at the end. */
  private peek(): number {
    const b = this.b;
    let i = this.i;
    let c = b[i];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++i];
    this.i = i;
    if (i >= this.n) this.fail('truncated', 'it ends too early');
    return c!;
  }

  private expect(c: number): void {
    if (this.peek() !== c) this.fail('not-json', `expected ${String.fromCharCode(c)}`);
    this.i++;
  }

  /** After a member: true if another follows (the comma is consumed), false at `close` (consumed too). */
  private more(close: number): boolean {
    const c = this.peek();
    this.i++;
    if (c === 0x2c) return true;
    if (c === close) return false;
    return this.fail('not-json', `expected , or ${String.fromCharCode(close)}`, this.i - 1);
  }

  /** At an opening quote: reads the string into s, e and escaped. */
  private string(): void {
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
  private escape(i: number): number {
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
  private plain(what: string): void {
    if (this.peek() !== 0x22) this.fail('shape', `${what} is not a string`);
    this.string();
    if (this.escaped) this.fail('escape', `an escape in ${what}`, this.s);
  }

  private key(): void {
    this.plain('a key');
    this.expect(0x3a);
  }

  /** A count: a plain non-negative integer below 2^53. */
  private count(what: string): number {
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
  private skip(depth: number): void {
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
    for (const word of ['true', 'false', 'null']) {
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
  private number(): void {
    const b = this.b;
    let i = this.i;
    const digits = (what: string): void => {
      const from = i;
      while (i < this.n && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
      if (i >= this.n) this.fail('truncated', 'it ends too early', i);
      if (i === from) this.fail('not-json', `a number without ${what}`, i);
    };
    if (b[i] === 0x2d) i++;
    const first = i;
    digits('digits');
    if (b[first] === 0x30 && i - first > 1) this.fail('not-json', 'a leading zero', first);
    if (b[i] === 0x2e) {
      i++;
      digits('a fraction');
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      digits('an exponent');
    }
    this.i = i;
  }

  document(): CounterDump {
    this.expect(0x7b);
    let seen = false;
    if (this.peek() !== 0x7d)
      do {
        this.key();
        if (!equals(this.b, this.s, this.e, K_NFTABLES)) this.fail('shape', 'a key other than nftables', this.s);
        if (seen) this.fail('duplicate', 'nftables twice', this.s);
        seen = true;
        this.expect(0x5b);
        if (this.peek() === 0x5d) this.i++;
        else
          do this.item();
          while (this.more(0x5d));
      } while (this.more(0x7d));
    else this.i++;
    const end = this.i;
    // Trailing whitespace (nft ends with a newline) is all that may follow.
    let i = end;
    while (i < this.n && (this.b[i] === 0x20 || this.b[i] === 0x0a || this.b[i] === 0x0d || this.b[i] === 0x09)) i++;
    if (i < this.n) this.fail('not-json', 'bytes after the dump', i);
    if (!seen) this.fail('shape', 'no nftables array', end);
    if (this.tableHandle < 0) this.fail('no-table', `no table inet ${TABLE}`, end);
    this.resolveElems();
    const intact = ['map cup', 'map cdown', 'chain count_up', 'chain count_down'].every((p) => this.parts.has(p));
    return new CounterDump(this.b, this.tableHandle, intact, this.slots);
  }

  /** One item of the nftables array: `{"counter": {…}}` and the like. */
  private item(): void {
    this.expect(0x7b);
    if (this.peek() === 0x7d) {
      this.i++;
      return;
    }
    let kinds = 0;
    do {
      this.key();
      const s = this.s;
      const e = this.e;
      const b = this.b;
      const kind = equals(b, s, e, K_COUNTER)
        ? 1
        : equals(b, s, e, K_TABLE)
          ? 2
          : equals(b, s, e, K_MAP)
            ? 4
            : equals(b, s, e, K_CHAIN)
              ? 8
              : 0;
      if (kind === 0) {
        this.skip(2);
        continue;
      }
      if ((kinds & kind) !== 0) this.fail('duplicate', 'an item with a key twice', s);
      kinds |= kind;
      if (this.peek() !== 0x7b) this.fail('shape', `a ${String.fromCharCode(...b.subarray(s, e))} that is not an object`);
      if (kind === 1) this.counter();
      else this.named(kind);
    } while (this.more(0x7d));
  }

  /** A counter's object; its six fields in any order. */
  private counter(): void {
    const at = this.i;
    this.i++;
    let fields = 0;
    let nameS = 0,
      nameE = 0,
      ours = false,
      handle = 0,
      bytes = 0;
    if (this.peek() === 0x7d) this.fail('missing-field', 'a counter without its fields');
    do {
      this.key();
      const b = this.b;
      const s = this.s;
      const e = this.e;
      let field = 0;
      if (equals(b, s, e, K_NAME)) {
        field = 1;
        this.plain('a counter name');
        nameS = this.s;
        nameE = this.e;
      } else if (equals(b, s, e, K_TABLE)) {
        field = 2;
        this.plain("a counter's table");
        ours = equals(b, this.s, this.e, V_TABLE);
      } else if (equals(b, s, e, K_HANDLE)) {
        field = 4;
        handle = this.count("a counter's handle");
      } else if (equals(b, s, e, K_BYTES)) {
        field = 8;
        bytes = this.count("a counter's bytes");
      } else if (equals(b, s, e, K_PACKETS)) {
        field = 16;
        this.count("a counter's packets");
      } else if (equals(b, s, e, K_FAMILY)) {
        field = 32;
        this.plain("a counter's family");
      } else this.skip(3);
      if ((fields & field) !== 0) this.fail('duplicate', 'a counter field twice', s);
      fields |= field;
    } while (this.more(0x7d));
    if (fields !== 63) this.fail('missing-field', 'a counter without its family, name, table, handle, packets or bytes', at);
    if (!ours) return;
    const kind = counterKind(this.b, nameS, nameE);
    const hi = kind === 0 ? -1 : macHalf(this.b, nameS + 3, 4);
    const lo = hi < 0 ? -1 : macHalf(this.b, nameS + 7, 8);
    if (lo < 0) return;
    const slots = this.slots;
    const last = slots.hi.length - 1;
    let k = slots.find(hi, lo, last);
    if (k < 0) k = slots.add(hi, lo);
    const handles = kind === 0x75 ? slots.upHandle : slots.downHandle;
    if (handles[k]! >= 0) this.fail('duplicate', 'a counter twice', nameS);
    handles[k] = handle;
    (kind === 0x75 ? slots.upBytes : slots.downBytes)[k] = bytes;
  }

  /** A table, map or chain object (kind 2, 4, 8): its name, family or table, handle, and a map's elements. */
  private named(kind: number): void {
    const at = this.i;
    this.i++;
    let nameS = -1,
      nameE = -1,
      family = false,
      table = false,
      handle = -1,
      elem = -1,
      fields = 0;
    if (this.peek() !== 0x7d)
      do {
        this.key();
        const b = this.b;
        const s = this.s;
        const e = this.e;
        let field = 0;
        if (equals(b, s, e, K_NAME)) {
          field = 1;
          this.plain('a name');
          nameS = this.s;
          nameE = this.e;
        } else if (kind === 2 && equals(b, s, e, K_FAMILY)) {
          field = 2;
          this.plain("a table's family");
          family = equals(b, this.s, this.e, V_INET);
        } else if (kind !== 2 && equals(b, s, e, K_TABLE)) {
          field = 2;
          this.plain('a table name');
          table = equals(b, this.s, this.e, V_TABLE);
        } else if (kind === 2 && equals(b, s, e, K_HANDLE)) {
          field = 4;
          handle = this.count("the table's handle");
        } else if (kind === 4 && equals(b, s, e, K_ELEM)) {
          field = 8;
          this.peek();
          elem = this.i;
          this.skip(3);
        } else this.skip(3);
        if ((fields & field) !== 0) this.fail('duplicate', 'a field twice', s);
        fields |= field;
      } while (this.more(0x7d));
    else this.i++;
    if ((fields & 3) !== 3) this.fail('missing-field', 'a table, map or chain without its name and table', at);
    const b = this.b;
    if (kind === 2) {
      if (!family || !equals(b, nameS, nameE, V_TABLE)) return;
      if (handle < 0) this.fail('missing-field', 'the table without its handle', at);
      if (this.tableHandle >= 0) this.fail('duplicate', 'the table twice', at);
      this.tableHandle = handle;
      return;
    }
    if (!table) return;
    if (kind === 4 && equals(b, nameS, nameE, V_CUP)) this.parts.add('map cup');
    if (kind === 4 && equals(b, nameS, nameE, V_CDOWN)) {
      this.parts.add('map cdown');
      if (elem >= 0 && b[elem] === 0x5b) this.elements(elem);
    }
    if (kind === 8 && equals(b, nameS, nameE, V_COUNT_UP)) this.parts.add('chain count_up');
    if (kind === 8 && equals(b, nameS, nameE, V_COUNT_DOWN)) this.parts.add('chain count_down');
  }

  /** cdown's `elem`, already checked by skip(): each [address, counter name] pair that names a download counter. */
  private elements(at: number): void {
    const end = this.i;
    this.i = at + 1;
    let hint = 0;
    if (this.peek() === 0x5d) this.i++;
    else
      do {
        if (this.peek() !== 0x5b) {
          this.skip(4);
          continue;
        }
        this.i++;
        let strings = 0;
        let ipS = 0,
          ipE = 0,
          nameS = 0,
          nameE = 0;
        if (this.peek() === 0x5d) this.i++;
        else
          do {
            if (strings < 2 && this.peek() === 0x22) {
              this.plain('a map element');
              if (strings === 0) {
                ipS = this.s;
                ipE = this.e;
              } else {
                nameS = this.s;
                nameE = this.e;
              }
              strings++;
            } else {
              strings = strings < 2 ? 3 : strings;
              this.skip(5);
            }
          } while (this.more(0x5d));
        if (strings < 2 || strings === 3 || counterKind(this.b, nameS, nameE) !== 0x64) continue;
        const hi = macHalf(this.b, nameS + 3, 4);
        const lo = hi < 0 ? -1 : macHalf(this.b, nameS + 7, 8);
        if (lo < 0) continue;
        this.elems.push(hi, lo, ipS, ipE, hint++);
      } while (this.more(0x5d));
    this.i = end;
  }

  /** Each client's address from cdown, once every counter is known (the last element for a name wins). */
  private resolveElems(): void {
    const e = this.elems;
    const slots = this.slots;
    for (let k = 0; k < e.length; k += 5) {
      const slot = slots.find(e[k]!, e[k + 1]!, e[k + 4]!);
      if (slot < 0) continue;
      slots.ipStart[slot] = e[k + 2]!;
      slots.ipEnd[slot] = e[k + 3]!;
    }
  }
}
