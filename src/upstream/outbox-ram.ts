/**
 * The outbox's RAM ring: droppable records an outbox opened with `droppableInRam` keeps in memory instead of writing
 * them to its segment files (outbox.ts). Such records are ones a crash may lose without losing anything in sum — an
 * MQTT usage report or a RADIUS Interim-Update: the session journal's checkpoint and the kernel's counters still hold
 * the totals, and the next report carries them — so they need not wear the flash on every tick. The ring is bounded:
 * past `maxBytes` the oldest are dropped (counted like the file's dropped records). Entries share the index and the
 * sequence numbers with the file's records; their `seg` is the ring's placeholder segment, never a file.
 */
import type { Entry, Segment } from './outbox-segments.ts';

export class RamRing {
  /** The placeholder segment of every RAM entry: no file, never in the outbox's segment list. */
  readonly seg: Segment = {
    firstSeq: 0,
    path: '(ram)',
    bytes: 0,
    live: 0,
    droppable: 0,
    finishedBytes: 0,
    fd: null,
    readFd: null,
    compacting: false,
  };
  private queue: Entry[] = [];
  private head = 0;
  bytes = 0;

  constructor(public maxBytes: number) {}

  /** The index entry of `record`, of `type`; takes a copy of its payload (the caller may reuse its buffer). */
  entry(record: { seq: number; at: number; payload: Uint8Array }, type: number, headerBytes: number): Entry {
    const { seq, at, payload } = record;
    const copy = new Uint8Array(payload); // a copy (a Buffer's slice() would share its memory)
    const e: Entry = {
      seq,
      durable: false,
      type,
      at,
      length: copy.length,
      offset: 0,
      bytes: headerBytes + copy.length,
      seg: this.seg,
      acked: 0,
      finished: false,
      payload: copy,
    };
    this.queue.push(e);
    this.bytes += e.bytes;
    this.seg.live++;
    this.seg.droppable++;
    return e;
  }

  /** A RAM entry finished (acknowledged by all or dropped): its payload is released. */
  release(e: Entry): void {
    this.bytes -= e.bytes;
    this.seg.live--;
    this.seg.droppable--;
    e.payload = new Uint8Array(0);
    this.trim();
  }

  /** The oldest unfinished entries to drop so that the ring is within its bound (finished ones are forgotten). */
  overBound(): Entry[] {
    const out: Entry[] = [];
    let bytes = this.bytes;
    for (let i = this.head; i < this.queue.length && bytes > this.maxBytes; i++) {
      const e = this.queue[i]!;
      if (!e.finished) {
        out.push(e);
        bytes -= e.bytes;
      }
    }
    return out;
  }

  /** Forgets finished entries at the head (amortized: the array is cut when half of it is dead). */
  trim(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.finished) this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
