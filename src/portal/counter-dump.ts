/**
 * What portal/nft-scan.ts reads from nft's counter dump, and how it refuses one: the clients' counters as parallel
 * arrays (no object, string or boxed number per client: 10,000 clients are read every tick), a MAC index over them,
 * and NftDumpError.
 */
import { SluiceError, withoutStack } from '../errors.ts';
import { macFromParts } from './mac-parts.ts';

/** One client's counters as the kernel reported them. */
export interface KernelReading {
  /** Lowercase, colon-separated. */
  mac: string;
  /** Identifies the counters' epoch: changes when they are made again (the table's and the counters' nft handles). */
  epoch: number;
  /** IP-level bytes (the Ethernet headers the egress hook counts taken off). */
  downBytes: number;
  upBytes: number;
  /** The key `cdown` maps the counters on: the MAC ('' when not mapped: then they count nothing). */
  key: string;
}

export type NftDumpReason =
  | 'not-json'
  | 'truncated'
  | 'shape'
  | 'missing-field'
  | 'bad-number'
  | 'escape'
  | 'duplicate'
  | 'too-deep'
  | 'no-table';

/**
 * A dump the scanner refuses. Its code is ERR_KERNEL_QUOTA, as when nft fails (docs/errors.md); `reason` is stable
 * (tests and logs key on it), `at` the byte it stopped at. Made without a stack trace (nftDumpRefusal): the
 * reason and the byte say where, the frames would only name the scanner's own methods, and capturing them was as much
 * CPU as the scan of a short dump it refuses (the cut and mutated dumps of test/portal/nft-scan.test.ts, ~13,000).
 */
export class NftDumpError extends SluiceError {
  constructor(
    readonly reason: NftDumpReason,
    message: string,
    readonly at: number,
  ) {
    super('ERR_KERNEL_QUOTA', `nft's counter dump: ${message} (byte ${at})`, { details: { reason, at } });
    this.name = 'NftDumpError';
  }
}

/** The scanner's refusal, made without a stack trace (errors.ts withoutStack). */
export function nftDumpRefusal(reason: NftDumpReason, message: string, at: number): NftDumpError {
  return withoutStack(() => new NftDumpError(reason, message, at));
}

/**
 * MAC (two parts, mac-parts.ts) → index, by open addressing in one typed array: a Map keyed by the 48-bit number boxes
 * every key, and this runs for every client each tick. Each bucket is three words side by side (hi, lo, index + 1; 0
 * is empty): a probe reads one cache line, and a scan makes one allocation, not three (a refused dump's scan is over
 * before its first client; the nft-scan test's cut and mutated dumps are ~15,000 of them).
 */
class MacIndex {
  private slots: Int32Array;
  /** The bucket count less one (a power of two less one). */
  private mask: number;
  private size = 0;

  /** `expected`: about how many MACs it will hold (it grows past that). */
  constructor(expected = 32) {
    // The least power of two ≥ 64 and ≥ expected·2, in one step: a doubling loop that runs only once a table passes 32
    // clients is a path first reached late, which deopted the scan that inlines it (a router's table grows so).
    const size = 2 ** (32 - Math.clz32(Math.max(64, Math.ceil(expected * 2)) - 1));
    this.slots = new Int32Array(size * 3);
    this.mask = size - 1;
  }

  private static bucket(hi: number, lo: number, mask: number): number {
    return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (lo >>> 15)) & mask;
  }

  get(hi: number, lo: number): number {
    const mask = this.mask;
    const s = this.slots;
    for (let b = MacIndex.bucket(hi, lo, mask); ; b = (b + 1) & mask) {
      const w = b * 3;
      const v = s[w + 2]!;
      if (v === 0) return -1;
      if (s[w + 1] === (lo | 0) && s[w] === hi) return v - 1;
    }
  }

  /** A MAC not in the index yet. */
  add(hi: number, lo: number, index: number): void {
    if ((this.size + 1) * 2 > this.mask) this.grow();
    this.place(hi, lo | 0, index + 1);
    this.size++;
  }

  private place(hi: number, lo: number, v: number): void {
    const mask = this.mask;
    const s = this.slots;
    let b = MacIndex.bucket(hi, lo, mask);
    while (s[b * 3 + 2] !== 0) b = (b + 1) & mask;
    s[b * 3] = hi;
    s[b * 3 + 1] = lo;
    s[b * 3 + 2] = v;
  }

  private grow(): void {
    const old = this.slots;
    const size = (this.mask + 1) * 2;
    this.slots = new Int32Array(size * 3);
    this.mask = size - 1;
    for (let w = 0; w < old.length; w += 3) if (old[w + 2] !== 0) this.place(old[w]!, old[w + 1]!, old[w + 2]!);
  }
}

/** The scan's per-MAC state: its two counters' handles (-1: not seen) and bytes, and its address's bytes. */
export class Slots {
  readonly hi: number[] = [];
  readonly lo: number[] = [];
  readonly upHandle: number[] = [];
  readonly upBytes: number[] = [];
  readonly downHandle: number[] = [];
  readonly downBytes: number[] = [];
  readonly ipStart: number[] = [];
  readonly ipEnd: number[] = [];
  private readonly index: MacIndex;

  /** `expected`: about how many clients (from the dump's size). */
  constructor(expected: number) {
    this.index = new MacIndex(expected);
  }

  /** The MAC's slot, or -1. `hint`: the slot it is likely in, checked first. */
  find(hi: number, lo: number, hint: number): number {
    if (hint >= 0 && hint < this.hi.length && this.lo[hint] === lo && this.hi[hint] === hi) return hint;
    return this.index.get(hi, lo);
  }

  add(hi: number, lo: number): number {
    const k = this.hi.length;
    this.index.add(hi, lo, k);
    this.hi.push(hi);
    this.lo.push(lo);
    this.upHandle.push(-1);
    this.upBytes.push(0);
    this.downHandle.push(-1);
    this.downBytes.push(0);
    this.ipStart.push(0);
    this.ipEnd.push(0);
    return k;
  }
}

/**
 * The entries of a slot array for the slots with both counters: a function, not a closure made in each dump's read
 * (with the build's keepNames a closure made is also a defineProperty of its name).
 */
function withBothCounters(slots: Slots, from: readonly number[]): number[] {
  const kept: number[] = [];
  for (let s = 0; s < from.length; s++) if (slots.upHandle[s]! >= 0 && slots.downHandle[s]! >= 0) kept.push(from[s]!);
  return kept;
}

/**
 * The dump, read: `count` clients with both counters, as parallel arrays, in the order nft lists their counters (half
 * pairs left out).
 */
export class CounterDump {
  readonly macHi: readonly number[];
  readonly macLo: readonly number[];
  /** The counters' epoch (KernelReading.epoch). */
  readonly epoch: number[] = [];
  readonly downBytes: readonly number[];
  readonly upBytes: readonly number[];
  private readonly ipStart: readonly number[];
  private readonly ipEnd: readonly number[];
  /** The scan's slots when every one has both counters (the usual case): their arrays and index serve as they are. */
  private readonly whole: Slots | undefined;
  private index: MacIndex | undefined;

  constructor(
    private readonly bytes: Uint8Array,
    readonly tableHandle: number,
    /** The table's two maps and two chains are all there (else it is made again: kernel-counting.ts). */
    readonly intact: boolean,
    slots: Slots,
  ) {
    let k = 0;
    while (k < slots.hi.length && slots.upHandle[k]! >= 0 && slots.downHandle[k]! >= 0) k++;
    const whole = k === slots.hi.length;
    this.whole = whole ? slots : undefined;
    this.macHi = whole ? slots.hi : withBothCounters(slots, slots.hi);
    this.macLo = whole ? slots.lo : withBothCounters(slots, slots.lo);
    this.downBytes = whole ? slots.downBytes : withBothCounters(slots, slots.downBytes);
    this.upBytes = whole ? slots.upBytes : withBothCounters(slots, slots.upBytes);
    this.ipStart = whole ? slots.ipStart : withBothCounters(slots, slots.ipStart);
    this.ipEnd = whole ? slots.ipEnd : withBothCounters(slots, slots.ipEnd);
    const ups = whole ? slots.upHandle : withBothCounters(slots, slots.upHandle);
    const downs = whole ? slots.downHandle : withBothCounters(slots, slots.downHandle);
    for (let c = 0; c < ups.length; c++) {
      // Never 0 (a portal's "no token"); the table's handle too, so a table made again with the same counter handles
      // is still a new epoch.
      this.epoch.push((Math.imul(tableHandle + 1, 0x9e3779b1) ^ Math.imul(downs[c]!, 0x85ebca6b) ^ ups[c]!) | 1);
    }
  }

  get count(): number {
    return this.macHi.length;
  }

  /** Client k's MAC, lowercase with colons. */
  mac(k: number): string {
    return macFromParts(this.macHi[k]!, this.macLo[k]!);
  }

  /** The key `cdown` maps client k's counter on, its MAC ('' when none: then they count nothing). */
  key(k: number): string {
    const start = this.ipStart[k]!;
    const end = this.ipEnd[k]!;
    return end === start ? '' : Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString();
  }

  /** Every client as an object (kernel-counters.ts): for the callers off the per-tick path. */
  readings(): KernelReading[] {
    const out: KernelReading[] = [];
    for (let k = 0; k < this.count; k++)
      out.push({
        mac: this.mac(k),
        epoch: this.epoch[k]!,
        downBytes: this.downBytes[k]!,
        upBytes: this.upBytes[k]!,
        key: this.key(k),
      });
    return out;
  }

  /** The client's index, -1 when the dump has no counters for it. */
  indexOf(hi: number, lo: number): number {
    if (this.whole !== undefined) return this.whole.find(hi, lo, -1);
    if (this.index === undefined) {
      this.index = new MacIndex();
      for (let k = 0; k < this.macHi.length; k++) this.index.add(this.macHi[k]!, this.macLo[k]!, k);
    }
    return this.index.get(hi, lo);
  }
}
