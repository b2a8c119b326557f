/**
 * What portal/nft-scan.ts reads from nft's counter dump, and how it refuses one: the clients' counters as parallel
 * arrays (no object, string or boxed number per client: 10,000 clients are read every tick), a MAC index over them,
 * and NftDumpError.
 */
import { SluiceError } from '../errors.ts';
import { macFromParts } from './mac-parts.ts';

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
 * (tests and logs key on it), `at` the byte it stopped at.
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

/**
 * MAC (two parts, mac-parts.ts) → index, by open addressing in typed arrays: a Map keyed by the 48-bit number boxes
 * every key, and this runs for every client each tick.
 */
class MacIndex {
  private hi = new Int32Array(64);
  private lo = new Int32Array(64);
  /** index + 1; 0 is empty. */
  private at = new Int32Array(64);
  private mask = 63;
  private size = 0;

  private static bucket(hi: number, lo: number, mask: number): number {
    return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (lo >>> 15)) & mask;
  }

  get(hi: number, lo: number): number {
    const mask = this.mask;
    for (let b = MacIndex.bucket(hi, lo, mask); ; b = (b + 1) & mask) {
      const v = this.at[b]!;
      if (v === 0) return -1;
      if (this.lo[b] === (lo | 0) && this.hi[b] === hi) return v - 1;
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
    let b = MacIndex.bucket(hi, lo, mask);
    while (this.at[b] !== 0) b = (b + 1) & mask;
    this.hi[b] = hi;
    this.lo[b] = lo;
    this.at[b] = v;
  }

  private grow(): void {
    const [hi, lo, at] = [this.hi, this.lo, this.at];
    const size = at.length * 2;
    this.hi = new Int32Array(size);
    this.lo = new Int32Array(size);
    this.at = new Int32Array(size);
    this.mask = size - 1;
    for (let b = 0; b < at.length; b++) if (at[b] !== 0) this.place(hi[b]!, lo[b]!, at[b]!);
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
  private readonly index = new MacIndex();

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
 * The dump, read: `count` clients with both counters, as parallel arrays, in the order nft lists their counters (half
 * pairs left out).
 */
export class CounterDump {
  readonly macHi: number[] = [];
  readonly macLo: number[] = [];
  /** The counters' epoch (KernelReading.epoch). */
  readonly epoch: number[] = [];
  readonly downBytes: number[] = [];
  readonly upBytes: number[] = [];
  private readonly ipStart: number[] = [];
  private readonly ipEnd: number[] = [];
  private index: MacIndex | undefined;

  constructor(
    private readonly bytes: Uint8Array,
    readonly tableHandle: number,
    /** The table's two maps and two chains are all there (else it is made again: kernel-counting.ts). */
    readonly intact: boolean,
    slots: Slots,
  ) {
    for (let k = 0; k < slots.hi.length; k++) {
      const up = slots.upHandle[k]!;
      const down = slots.downHandle[k]!;
      if (up < 0 || down < 0) continue;
      this.macHi.push(slots.hi[k]!);
      this.macLo.push(slots.lo[k]!);
      // Never 0 (a portal's "no token"); the table's handle too, so a table made again with the same counter handles
      // is still a new epoch.
      this.epoch.push((Math.imul(tableHandle + 1, 0x9e3779b1) ^ Math.imul(down, 0x85ebca6b) ^ up) | 1);
      this.downBytes.push(slots.downBytes[k]!);
      this.upBytes.push(slots.upBytes[k]!);
      this.ipStart.push(slots.ipStart[k]!);
      this.ipEnd.push(slots.ipEnd[k]!);
    }
  }

  get count(): number {
    return this.macHi.length;
  }

  /** Client k's MAC, lowercase with colons. */
  mac(k: number): string {
    return macFromParts(this.macHi[k]!, this.macLo[k]!);
  }

  /** The address `cdown` maps client k's counter on ('' when none: then they count nothing). */
  ip(k: number): string {
    const start = this.ipStart[k]!;
    const end = this.ipEnd[k]!;
    return end === start ? '' : Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString();
  }

  /** The client's index, -1 when the dump has no counters for it. */
  indexOf(hi: number, lo: number): number {
    if (this.index === undefined) {
      this.index = new MacIndex();
      for (let k = 0; k < this.macHi.length; k++) this.index.add(this.macHi[k]!, this.macLo[k]!, k);
    }
    return this.index.get(hi, lo);
  }
}
