/**
 * A strict scanner for `nft -j list table netdev sluice_count` (portal/kernel-counters.ts), over the raw bytes: what
 * the meter reads every tick, 3.3 MB for 10,000 clients, where JSON.parse built a tree of 40,000 objects to keep six
 * numbers per client (docs/performance.md, "The kernel path's row").
 *
 * The shape, as nft 1.0.6 prints it (test/fixtures/nft/ holds its real output): one line `{"nftables": [item, …]}`
 * with jansson's ", " and ": " separators; each item an object of one key: `metainfo`, `table`, each `counter`
 * (family, name, table, handle, packets, bytes, a comment if it has one), the two `map`s (`elem`: [MAC, counter
 * name] pairs, absent when empty), the `chain`s and their `rule`s. The scanner is a whole JSON tokenizer (whitespace,
 * field order and any other item are free, and skipped values are checked too), and reads only what the accounting
 * needs: each counter of the table, the key `cdown` maps it on, the table's handle, and whether its maps and
 * chains are there. A counter item and a map element exactly as nft lays them out are read by a fast path (a few word
 * compares); anything else, by the general one, which gives the same.
 *
 * It never guesses: anything it cannot read exactly throws NftDumpError (code ERR_KERNEL_QUOTA, as JSON.parse's
 * failure did), never a partial reading. That is invalid or truncated JSON, bytes after it, a counter without one of
 * its six fields or with a field of the wrong type, a count that is negative, fractional or beyond 2^53, an escape in
 * a string it reads (its bytes would not be its value; nft's names never have one), a key twice in an object it reads
 * (JSON.parse keeps the last), the table twice or not at all, nesting deeper than nft's. There is no JSON.parse
 * fallback: nft is the only writer and prints none of these, and a dump that is refused is a skipped tick, as an
 * unparsable one was. Lenient where the JSON.parse parser was (the contract: test/portal/nft-dump-reference.ts):
 * counters of another table or with another name, half pairs and map elements that are not two strings are left out.
 */
import { CounterDump, Slots } from './counter-dump.ts';
import { ascii, equals, JsonCursor, Literal } from './json-cursor.ts';

const TABLE = 'sluice_count';

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
const V_NETDEV = ascii('netdev');
/** The bytes the egress hook counts in each packet beyond its IP packet: the Ethernet header. */
export const EGRESS_HEADER_BYTES = 14;
const V_CUP = ascii('cup');
const V_CDOWN = ascii('cdown');
const V_COUNT_UP = ascii('count_up');
const V_COUNT_DOWN = ascii('count_down');
/** The table's parts (map cup, map cdown, chain count_up, chain count_down): all four, and it is intact. */
const PART_CUP = 1;
const PART_CDOWN = 2;
const PART_COUNT_UP = 4;
const PART_COUNT_DOWN = 8;
const ALL_PARTS = 15;
/** What nft prints, for the fast paths (JsonCursor.literal). */
const Q_COUNTER = new Literal('"counter":');
const Q_FIELDS: ReadonlyArray<[Literal, number]> = [
  [new Literal('"family":'), 32],
  [new Literal('"name":'), 1],
  [new Literal('"table":'), 2],
  [new Literal('"handle":'), 4],
  [new Literal('"packets":'), 16],
  [new Literal('"bytes":'), 8],
];
const Q_TABLE = new Literal(`"${TABLE}"`);
/** A counter item of the table exactly as nft prints it, around its name's kind and MAC and its three counts. */
const T_HEAD = new Literal('{"counter": {"family": "netdev", "name": "c');
const T_NAME_END = new Literal(`", "table": "${TABLE}", "handle": `);
const T_PACKETS = new Literal(', "packets": ');
const T_BYTES = new Literal(', "bytes": ');
const T_END = new Literal('}}');
const E_MID = new Literal('", "c');
const E_END = new Literal('"]');

/** `nft -j list table netdev sluice_count`'s output → its counters. Throws NftDumpError. */
export function scanCounterDump(dump: Uint8Array | string): CounterDump {
  const bytes = typeof dump === 'string' ? Buffer.from(dump, 'utf8') : dump;
  return new Scan(bytes).document();
}

/** An item's key: 1 counter, 2 table, 4 map, 8 chain, 0 another (skipped). */
function itemKind(b: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 7:
      return equals(b, s, e, K_COUNTER) ? 1 : 0;
    case 5:
      return equals(b, s, e, K_TABLE) ? 2 : equals(b, s, e, K_CHAIN) ? 8 : 0;
    case 3:
      return equals(b, s, e, K_MAP) ? 4 : 0;
  }
  return 0;
}

/** A counter's field: 1 name, 2 table, 4 handle, 8 bytes, 16 packets, 32 family, 0 another (skipped). */
function counterField(b: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 4:
      return equals(b, s, e, K_NAME) ? 1 : 0;
    case 5:
      return equals(b, s, e, K_TABLE) ? 2 : equals(b, s, e, K_BYTES) ? 8 : 0;
    case 6:
      return equals(b, s, e, K_HANDLE) ? 4 : equals(b, s, e, K_FAMILY) ? 32 : 0;
    case 7:
      return equals(b, s, e, K_PACKETS) ? 16 : 0;
  }
  return 0;
}

/** A sluice counter's name, `cu_` or `cd_` and 12 lowercase hex digits (kernel-counters.ts) → 'u' or 'd', or 0. */
function counterKind(b: Uint8Array, s: number, e: number): number {
  if (e - s !== 15 || b[s] !== 0x63 || b[s + 2] !== 0x5f) return 0;
  const kind = b[s + 1];
  return kind === 0x75 || kind === 0x64 ? kind : 0;
}

/** Each byte's value as a lowercase hex digit, -1 for any other byte: one load where two range tests were. */
const HEX = new Int8Array(256).fill(-1);
for (let d = 0; d < 16; d++) HEX['0123456789abcdef'.charCodeAt(d)] = d;

/**
 * The MAC of a name counterKind accepted, in two parts (mac-parts.ts), or -1 when a digit is not lowercase hex or the
 * bytes end first (a cut dump: a read past the end would be undefined, and would deopt the scan's hottest callers).
 */
function macHalf(b: Uint8Array, from: number, digits: number): number {
  const end = from + digits;
  if (end > b.length) return -1;
  let v = 0;
  for (let k = from; k < end; k++) {
    const d = HEX[b[k]!]!;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

class Scan extends JsonCursor {
  private readonly slots: Slots;
  /** cdown's elements read before their counters (nft prints the counters first): MAC parts, address bytes, order. */
  private readonly early: number[] = [];
  /** The elements of the map being read that name a download counter: MAC parts and address bytes. */
  private readonly pending: number[] = [];
  /** Elements read so far: the order of the last one each slot took its address from (the last one wins). */
  private elemSeq = 0;
  private readonly ipSeq: number[] = [];
  private tableHandle = -1;
  /** The table's parts seen: PART_CUP, PART_CDOWN, PART_COUNT_UP, PART_COUNT_DOWN. */
  private parts = 0;

  constructor(b: Uint8Array) {
    super(b);
    // nft prints ~330 bytes per client (two counters, two map elements).
    this.slots = new Slots(b.length / 330);
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
        if (this.peek() !== 0x5b) this.fail('shape', 'nftables is not an array');
        this.i++;
        if (this.peek() === 0x5d) this.i++;
        else
          do if (!this.exactCounter()) this.item();
          while (this.more(0x5d));
      } while (this.more(0x7d));
    else this.i++;
    const end = this.i;
    this.end();
    if (!seen) this.fail('shape', 'no nftables array', end);
    if (this.tableHandle < 0) this.fail('no-table', `no table netdev ${TABLE}`, end);
    this.resolveElems();
    const intact = this.parts === ALL_PARTS;
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
      let kind: number;
      this.peek();
      let s = this.i;
      if (this.literal(Q_COUNTER)) kind = 1;
      else {
        this.key();
        s = this.s;
        kind = itemKind(this.b, s, this.e);
      }
      if (kind === 0) {
        this.skip(2);
        continue;
      }
      if ((kinds & kind) !== 0) this.fail('duplicate', 'an item with a key twice', s);
      kinds |= kind;
      if (this.peek() !== 0x7b) this.fail('shape', `a ${kind === 1 ? 'counter' : 'table, map or chain'} not an object`);
      if (kind === 1) this.counter();
      else this.named(kind);
    } while (this.more(0x7d));
  }

  /** A counter's key, by the fast path when it is the one nft prints in this place (`order`), else read. */
  private counterKey(order: number): number {
    if (this.peek() === 0x22 && order < Q_FIELDS.length) {
      const [lit, field] = Q_FIELDS[order]!;
      if (this.literal(lit)) return field;
    }
    this.key();
    return counterField(this.b, this.s, this.e);
  }

  /** A counter's object; its six fields in any order. */
  private counter(): void {
    const at = this.i;
    this.i++;
    let fields = 0;
    let order = 0;
    let nameS = 0,
      nameE = 0,
      ours = false,
      handle = 0,
      packets = 0,
      bytes = 0;
    if (this.peek() === 0x7d) this.fail('missing-field', 'a counter without its fields');
    do {
      const s = this.i;
      const field = this.counterKey(order++);
      switch (field) {
        case 1:
          this.plain('a counter name');
          nameS = this.s;
          nameE = this.e;
          break;
        case 2:
          if (this.peek() === 0x22 && this.literal(Q_TABLE)) ours = true;
          else {
            this.plain("a counter's table");
            ours = equals(this.b, this.s, this.e, V_TABLE);
          }
          break;
        case 4:
          handle = this.count("a counter's handle");
          break;
        case 8:
          bytes = this.count("a counter's bytes");
          break;
        case 16:
          packets = this.count("a counter's packets");
          break;
        case 32:
          this.plain("a counter's family");
          break;
        default:
          this.skip(3);
      }
      if ((fields & field) !== 0) this.fail('duplicate', 'a counter field twice', s);
      fields |= field;
    } while (this.more(0x7d));
    if (fields !== 63) this.fail('missing-field', 'a counter without one of its six fields', at);
    if (!ours) return;
    const kind = counterKind(this.b, nameS, nameE);
    const hi = kind === 0 ? -1 : macHalf(this.b, nameS + 3, 4);
    const lo = hi < 0 ? -1 : macHalf(this.b, nameS + 7, 8);
    if (lo >= 0) this.record(kind, hi, lo, handle, packets, bytes, nameS);
  }

  /**
   * The fast path: a counter item of the table exactly as nft prints it (T_HEAD…), read in a few word compares, with
   * the same checks as counter(). False, with nothing read, at the first byte that differs: then item() reads it.
   */
  private exactCounter(): boolean {
    const b = this.b;
    const start = this.i;
    if (b[start] !== 0x7b) this.peek();
    const at = this.i;
    if (!this.literal(T_HEAD)) return false;
    const nameS = this.i - 1;
    const kind = b[nameS + 1];
    const hi = (kind === 0x75 || kind === 0x64) && b[nameS + 2] === 0x5f ? macHalf(b, nameS + 3, 4) : -1;
    const lo = hi < 0 ? -1 : macHalf(b, nameS + 7, 8);
    this.i = nameS + 15;
    let handle = -1,
      packets = -1,
      bytes = -1;
    if (lo >= 0 && this.literal(T_NAME_END)) handle = this.digits();
    if (handle >= 0 && this.literal(T_PACKETS)) packets = this.digits();
    if (packets >= 0 && this.literal(T_BYTES)) bytes = this.digits();
    if (bytes < 0 || !this.literal(T_END)) {
      this.i = at;
      return false;
    }
    this.record(kind!, hi, lo, handle, packets, bytes, nameS);
    return true;
  }

  /** A count as nft prints it (1 to 15 digits, no leading zero), or -1 with the cursor anywhere: count() will say. */
  private digits(): number {
    const b = this.b;
    const start = this.i;
    let i = start;
    let v = 0;
    for (let d = b[i]! - 0x30; d >= 0 && d <= 9 && i < this.n; d = b[++i]! - 0x30) v = v * 10 + d;
    this.i = i;
    return i === start || i - start > 15 || (b[start] === 0x30 && i - start > 1) ? -1 : v;
  }

  /**
   * A counter of the table, `kind` 'u' or 'd', named after this MAC. A download counter counts at egress, with each
   * packet's Ethernet header: its IP-level bytes are what it counted less those.
   */
  private record(kind: number, hi: number, lo: number, handle: number, packets: number, bytes: number, at: number) {
    const slots = this.slots;
    let k = slots.find(hi, lo, slots.hi.length - 1);
    if (k < 0) k = slots.add(hi, lo);
    const handles = kind === 0x75 ? slots.upHandle : slots.downHandle;
    if (handles[k]! >= 0) this.fail('duplicate', 'a counter twice', at);
    handles[k] = handle;
    if (kind === 0x75) slots.upBytes[k] = bytes;
    else slots.downBytes[k] = Math.max(0, bytes - EGRESS_HEADER_BYTES * packets);
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
      fields = 0;
    this.pending.length = 0;
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
          family = equals(b, this.s, this.e, V_NETDEV);
        } else if (kind !== 2 && equals(b, s, e, K_TABLE)) {
          field = 2;
          this.plain('a table name');
          table = equals(b, this.s, this.e, V_TABLE);
        } else if (kind === 2 && equals(b, s, e, K_HANDLE)) {
          field = 4;
          handle = this.count("the table's handle");
        } else if (kind === 4 && equals(b, s, e, K_ELEM)) {
          field = 8;
          if (this.peek() === 0x5b) this.elements();
          else this.skip(3);
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
    if (kind === 4 && equals(b, nameS, nameE, V_CUP)) this.parts |= PART_CUP;
    if (kind === 4 && equals(b, nameS, nameE, V_CDOWN)) {
      this.parts |= PART_CDOWN;
      this.addresses();
    }
    if (kind === 8 && equals(b, nameS, nameE, V_COUNT_UP)) this.parts |= PART_COUNT_UP;
    if (kind === 8 && equals(b, nameS, nameE, V_COUNT_DOWN)) this.parts |= PART_COUNT_DOWN;
  }

  /**
   * A map's `elem`, at its '[': every element checked; each [address, counter name] pair that names a download
   * counter is kept in `pending` (used if the map is cdown).
   */
  private elements(): void {
    this.i++;
    if (this.peek() === 0x5d) {
      this.i++;
      return;
    }
    do {
      if (this.peek() !== 0x5b) {
        this.skip(4);
        continue;
      }
      if (this.exactElement()) continue;
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
      if (lo >= 0) this.pending.push(hi, lo, ipS, ipE);
    } while (this.more(0x5d));
  }

  /**
   * The fast path: an element exactly as nft prints it, `["02:00:00:00:00:01", "cd_020000000001"]`; false with
   * nothing read.
   */
  private exactElement(): boolean {
    const b = this.b;
    const n = this.n;
    const at = this.i;
    if (b[at + 1] !== 0x22) return false;
    const ipS = at + 2;
    let j = ipS;
    let c = b[j];
    while (j < n && c !== 0x22 && c !== 0x5c && c! >= 0x20) c = b[++j];
    if (j >= n || c !== 0x22) return false;
    this.i = j;
    if (!this.literal(E_MID)) {
      this.i = at;
      return false;
    }
    const nameS = this.i - 1;
    const kind = b[nameS + 1];
    const hi = (kind === 0x75 || kind === 0x64) && b[nameS + 2] === 0x5f ? macHalf(b, nameS + 3, 4) : -1;
    const lo = hi < 0 ? -1 : macHalf(b, nameS + 7, 8);
    this.i = nameS + 15;
    if (lo < 0 || !this.literal(E_END)) {
      this.i = at;
      return false;
    }
    if (kind === 0x64) this.pending.push(hi, lo, ipS, j);
    return true;
  }

  /** cdown's elements kept by elements(): each client's address (the last element for a counter wins). */
  private addresses(): void {
    const p = this.pending;
    for (let k = 0; k < p.length; k += 4) {
      const seq = ++this.elemSeq;
      const slot = this.slots.find(p[k]!, p[k + 1]!, k >> 2);
      if (slot >= 0) this.address(slot, p[k + 2]!, p[k + 3]!, seq);
      else this.early.push(p[k]!, p[k + 1]!, p[k + 2]!, p[k + 3]!, seq);
    }
  }

  private address(slot: number, start: number, end: number, seq: number): void {
    this.slots.ipStart[slot] = start;
    this.slots.ipEnd[slot] = end;
    this.ipSeq[slot] = seq;
  }

  /** The elements read before their counters, once every counter is known, unless a later one was read after. */
  private resolveElems(): void {
    const e = this.early;
    for (let k = 0; k < e.length; k += 5) {
      const slot = this.slots.find(e[k]!, e[k + 1]!, -1);
      if (slot >= 0 && (this.ipSeq[slot] ?? 0) < e[k + 4]!) this.address(slot, e[k + 2]!, e[k + 3]!, e[k + 4]!);
    }
  }
}
