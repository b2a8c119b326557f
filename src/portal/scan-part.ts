/**
 * A large reply's clients scanned in two parts at once (scan.ts): the thread reading the reply scans the first part
 * while another thread scans the rest from a record boundary guessed near the middle (findSplit). The guess is only a
 * guess: the first thread's scan must arrive at exactly that byte between two entries, or the other part's result is
 * dropped and the first thread scans on alone, as it did before. So the sink sees the same calls and the scan ends the
 * same way whether a reply was split or not: the other part hands back its clients as records (PartRecords), which the
 * first thread gives its sink in order after its own (a MAC seen in both parts is caught there), and how its part
 * ended (the list closed, or the stop the whole scan would meet at that byte). docs/performance.md, "The 10k tick".
 */
import { hexValue } from './mac-parts.ts';
import type { PortalFlavour } from './types.ts';

/**
 * Below this many bytes left to scan, one thread scans them: a second thread's hand-off costs a fraction of a ms, and
 * under ~2 MB (~2,300 openNDS clients, a scan of ~2.5 ms here) what it saves is about that.
 */
export const MIN_SPLIT_BYTES = 2 * 1024 * 1024;

/**
 * Where the first part ends at first, as a fraction of the bytes left (PartScanner.firstPart): the other thread's
 * share then follows what each thread took (meter/part-thread.ts).
 */
export const FIRST_PART = 0.5;

/** How far past the guessed middle a record boundary is looked for (an openNDS record is ~900 bytes). */
const SEARCH_BYTES = 64 * 1024;

/** Numbers per client in PartResult.nums: macHi, macLo, token hash, state code, download and upload as printed. */
export const NUMS = 6;
/** Offsets per client in PartResult.offs: the MAC key's, the ip value's and the token's [start, end). */
export const OFFS = 6;

/** How the other part ended, and its clients. */
export interface PartResult {
  count: number;
  nums: Float64Array;
  offs: Int32Array;
  /**
   * undefined: the clients object closed, `at` just after its brace. Otherwise the stop met at `at`; 'truncated' (the
   * bytes so far ended inside a client) resumes from `resumeAt` (after the last whole client, its separator next when
   * `separator`).
   */
  stop: string | undefined;
  at: number;
  resumeAt: number;
  separator: boolean;
}

/**
 * The other thread. begin() hands it the bytes [start, n) of `buf` (which it must be able to read: a Buffer over a
 * SharedArrayBuffer) and returns false when it cannot take them now; result() waits a little for its answer, undefined
 * if none came by then (the first thread scans the part itself, then drops it); drop() says no result will be asked
 * for this part, and returns once the other thread no longer reads `buf` (the caller may write it again then).
 */
export interface PartScanner {
  /** Fewer bytes left to scan than this stay with one thread (MIN_SPLIT_BYTES). */
  readonly minBytes: number;
  /** The first thread's share of the bytes left (FIRST_PART at first). */
  readonly firstPart: number;
  /** Where the other part starts, from about `from` (default findSplit; tests put it anywhere). */
  where?(buf: Buffer, from: number, n: number): number;
  /** `from`: where the first thread's part starts; the other part is [start, n). */
  begin(buf: Buffer, from: number, start: number, n: number, flavour: PortalFlavour): boolean;
  result(): PartResult | undefined;
  drop(): void;
}

/**
 * The index just after the comma of a boundary between two client entries, from about `from`: a closing brace, a
 * comma and a quoted MAC key then a colon, with any whitespace between. -1 if none within SEARCH_BYTES. It can be
 * fooled by a string holding the same bytes; the scan finds that out (it does not arrive at that byte between two
 * entries) and gives the other part up.
 */
export function findSplit(buf: Buffer, from: number, n: number): number {
  const limit = Math.min(n, from + SEARCH_BYTES);
  for (let at = buf.indexOf(0x7d, from); at >= 0 && at < limit; at = buf.indexOf(0x7d, at + 1)) {
    let i = skipWs(buf, at + 1, n);
    if (buf[i] !== 0x2c) continue;
    const split = i + 1;
    i = skipWs(buf, split, n);
    if (i + 19 >= n || buf[i] !== 0x22 || buf[i + 18] !== 0x22 || !macShaped(buf, i + 1)) continue;
    if (buf[skipWs(buf, i + 19, n)] !== 0x3a) continue;
    return split;
  }
  return -1;
}

function skipWs(buf: Buffer, i: number, n: number): number {
  while (i < n) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function macShaped(buf: Buffer, at: number): boolean {
  for (let b = 0; b < 6; b++) {
    const p = at + b * 3;
    if (hexValue(buf[p]!) < 0 || hexValue(buf[p + 1]!) < 0 || (b < 5 && buf[p + 2] !== 0x3a)) return false;
  }
  return true;
}

/** The other part's clients as the scanner reads them, in growing typed arrays (handed over whole, no object each). */
export class PartRecords {
  count = 0;
  nums: Float64Array;
  offs: Int32Array;
  /** `reuse`: the arrays of a part already handed back, filled again rather than allocated (if they are big enough). */
  constructor(expected = 1024, reuse?: { nums: Float64Array; offs: Int32Array }) {
    const fits = reuse !== undefined && reuse.nums.length >= expected * NUMS && reuse.offs.length >= expected * OFFS;
    this.nums = fits ? reuse.nums : new Float64Array(expected * NUMS);
    this.offs = fits ? reuse.offs : new Int32Array(expected * OFFS);
  }
  /** The scanner's ClientSink for this part: it never refuses (a doubled MAC is the first thread's sink to find). */
  readonly sink = (hi: number, lo: number, token: number, state: number, down: number, up: number): boolean => {
    if ((this.count + 1) * NUMS > this.nums.length) this.grow();
    const k = this.count * NUMS;
    const nums = this.nums;
    nums[k] = hi;
    nums[k + 1] = lo;
    nums[k + 2] = token;
    nums[k + 3] = state;
    nums[k + 4] = down;
    nums[k + 5] = up;
    return true;
  };
  /** After each sink call: where the client's MAC key, ip and token are (the stop for a doubled MAC is at its key). */
  readonly place = (
    _buf: Buffer,
    macStart: number,
    macEnd: number,
    ipStart: number,
    ipEnd: number,
    tokenStart: number,
    tokenEnd: number,
  ): void => {
    const k = this.count * OFFS;
    const offs = this.offs;
    offs[k] = macStart;
    offs[k + 1] = macEnd;
    offs[k + 2] = ipStart;
    offs[k + 3] = ipEnd;
    offs[k + 4] = tokenStart;
    offs[k + 5] = tokenEnd;
    this.count++;
  };
  private grow(): void {
    const nums = new Float64Array(this.nums.length * 2);
    nums.set(this.nums);
    this.nums = nums;
    const offs = new Int32Array(this.offs.length * 2);
    offs.set(this.offs);
    this.offs = offs;
  }
}
