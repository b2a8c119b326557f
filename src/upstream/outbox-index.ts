/**
 * The outbox's in-memory index, pure: one entry per record not yet finished, in sequence order, each saying where its
 * payload is on file (outbox-segments.ts Entry). Finished entries at the front are stepped over (`head`) and cut off in
 * bulk; lookups are binary searches.
 */
import type { Entry, Segment } from './outbox-segments.ts';

export class RecordIndex {
  private head = 0;

  constructor(private entries: Entry[] = []) {}

  push(e: Entry): void {
    this.entries.push(e);
  }

  /** The entry of sequence number `seq`, if it is indexed. */
  find(seq: number): Entry | undefined {
    const e = this.entries[this.indexAfter(seq - 1)];
    return e?.seq === seq ? e : undefined;
  }

  /**
   * Up to `limit` entries after sequence number `after` that consumer `bit` has not acknowledged (only those of `type`
   * if given), and about `maxBytes` of payload (at least one).
   */
  pick(after: number, bit: number, options: { limit: number; maxBytes: number; type?: number }): Entry[] {
    const picked: Entry[] = [];
    let bytes = 0;
    for (let i = this.indexAfter(after); i < this.entries.length && picked.length < options.limit; i++) {
      const e = this.entries[i]!;
      if (e.finished || (e.acked & bit) !== 0 || (options.type !== undefined && e.type !== options.type)) continue;
      if (picked.length > 0 && bytes + e.length > options.maxBytes) break;
      bytes += e.length;
      picked.push(e);
    }
    return picked;
  }

  /** The unfinished entries in `seg` (a segment's records follow each other in the index). */
  ofSegment(seg: Segment): Entry[] {
    const out: Entry[] = [];
    for (let i = this.indexAfter(seg.firstSeq - 1); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.payload !== undefined) continue; // held in RAM, interleaved with the file's records
      if (e.seg !== seg) break;
      if (!e.finished) out.push(e);
    }
    return out;
  }

  /** The highest sequence number below which consumer `bit` acknowledged everything (`nextSeq` - 1 when all). */
  floor(bit: number, nextSeq: number): number {
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (!e.finished && (e.acked & bit) === 0) return e.seq - 1;
    }
    return nextSeq - 1;
  }

  /** Steps over the finished entries at the front; cuts them off once they are most of the array. */
  advanceHead(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.finished) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Removes every finished entry now, wherever it is. */
  dropFinished(): void {
    this.entries = this.entries.slice(this.head).filter((e) => !e.finished);
    this.head = 0;
  }

  /** Index of the first entry with seq > after. */
  private indexAfter(after: number): number {
    let lo = this.head,
      hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
