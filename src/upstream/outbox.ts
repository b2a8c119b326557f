/**
 * The one durable, bounded, append-only outbox format the upstream sinks queue through: each sink opens its own store
 * (MQTT reports and session events, among them an escrow close; RADIUS accounting records). Records are opaque
 * payloads with a sequence number, a `durable` flag and a small type tag.
 *
 *   <dir>/seg-<first seq, 16 digits>.log   records (outbox-codec.ts), appended; the last one is the active segment
 *                                          (outbox-segments.ts: their shapes, writing and reading back, recovery;
 *                                          outbox-open.ts: what the directory holds when the store opens)
 *   <dir>/cursor-<consumer>, <dir>/seq     per-consumer floors, sequence numbers reserved ahead (outbox-marks.ts;
 *                                          what each consumer owes, when its cursor moves: outbox-consumers.ts)
 *
 * Flash: each append is one write() to the page cache, and so is each appendMany batch (per segment it lands in), so
 * a crash of the process — kill -9 — loses nothing once the call returned; fsync happens at most every
 * `syncIntervalMs` for droppable records, and before append() resolves for durable ones (group commit, outbox-sync.ts:
 * appends that arrive while an fsync runs share the next one). Cursors are written every `cursorIntervalMs` and on
 * close, and only once a record on file was acknowledged (a RAM record's acknowledgement changes nothing a restart
 * reads), so after a crash up to that much acknowledged work is delivered again: delivery is at least once, consumers
 * deduplicate by sequence number. Opened with `droppableInRam`, droppable records are not written at all but held in
 * a bounded RAM ring (outbox-ram.ts): a crash or a close loses them, never a durable one (their numbers: a gap).
 * Bound: when the segment files pass `maxBytes`, the oldest segments are rewritten (outbox-compact.ts) without their
 * acknowledged records, then without their droppable ones (counted as dropped); durable records are never dropped —
 * if only they remain, the store grows past the bound and `overLimitBytes` says by how much.
 * Each payload that is a function is told the number of the durable record before it (0: none ever; after a crash the
 * newest found, or the seq mark's when all after it were acknowledged and removed), so its consumer can tell a gap of
 * droppable records from a lost durable one.
 * Sequence numbers never repeat: after a clean close or a process crash (same boot: the page cache kept every write)
 * the next one follows the last record found; after a power cut, records appended since the last fsync may have
 * been delivered and then lost from flash, so numbering resumes after the block reserved ahead in `seq` (one small
 * write per SEQ_RESERVE appends) and consumers see a gap, which is the truth: records may be missing there.
 * RAM: the outbox keeps an index (outbox-index.ts: sequence number, flags, where the record is, ~100 bytes a record),
 * not the payloads; pending() reads them back from the segment files, which the kernel's page cache normally still
 * holds (they were just written), so a read rarely touches flash, and under memory pressure the kernel may evict them,
 * unlike a JS copy. It also means an appended payload is not kept: the caller may reuse its buffer once
 * append/appendMany returned (the MQTT usage report does: a fresh 850 KB buffer per tick cost ~0.5 ms of page faults
 * at 10k sessions).
 */
import { closeSync, openSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { SluiceError, type ErrorCode } from '../errors.ts';
import { poolCalls, syncCalls, type FileCalls } from '../storage/index.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../time.ts';
import { RECORD_HEADER_BYTES, type OutboxRecord } from './outbox-codec.ts';
import { rewriteSegment } from './outbox-compact.ts';
import { numberRecords } from './outbox-codec.ts';
import { OutboxConsumers } from './outbox-consumers.ts';
import { writeSeqMark } from './outbox-marks.ts';
import { openFailure, readOutboxDir } from './outbox-open.ts';
import { boundStep, newSegment, SegmentReaders, writeRun, type Entry, type Segment } from './outbox-segments.ts';
import { RecordIndex } from './outbox-index.ts';
import { RamRing } from './outbox-ram.ts';
import { FsyncGroup } from './outbox-sync.ts';
import { checkOptions } from './outbox-types.ts';
import type { AppendOptions, OutboxOptions, OutboxStats, Payload } from './outbox-types.ts';

export type { OutboxRecord } from './outbox-codec.ts';
export type { AppendOptions, OutboxConsumerStats, OutboxOptions, OutboxStats, Payload } from './outbox-types.ts';

const SEQ_RESERVE = 4096;

export class Outbox {
  private readonly dir: string;
  private maxBytes: number;
  private readonly segmentBytes: number;
  private readonly syncIntervalMs: number;
  private readonly cursorIntervalMs: number;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly consumers: OutboxConsumers;
  private index = new RecordIndex();
  private segments: Segment[] = [];
  private active!: Segment;
  private seq = 1;
  /** The newest durable record's sequence number (0: none ever): each payload is told it (Payload). */
  private lastDurable = 0;
  private diskBytes = 0;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly readers = new SegmentReaders();
  private readonly fsyncs: FsyncGroup;
  private syncTimer: TimerHandle | null = null;
  private cursorTimer: TimerHandle | null = null;
  private io: Promise<void> = Promise.resolve();
  private reservedUntil = 0;
  private reserving = false;
  private bootId = '';
  private readonly listeners = new Set<() => void>();
  /** Droppable records held in RAM, not written (options.droppableInRam; outbox-ram.ts). */
  private readonly ram: RamRing | null;
  private readonly counters = { appended: 0, dropped: 0, droppedBytes: 0, writes: 0, compactions: 0, cursorWrites: 0 };

  private constructor(private readonly options: OutboxOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes ?? Math.min(1 << 20, Math.max(4096, Math.floor(options.maxBytes / 8)));
    this.syncIntervalMs = options.syncIntervalMs ?? 5000;
    this.cursorIntervalMs = options.cursorIntervalMs ?? 30_000;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    this.consumers = new OutboxConsumers(options.consumers);
    this.ram = options.droppableInRam === true ? new RamRing(options.maxBytes) : null;
    this.fsyncs = new FsyncGroup(
      this.dir,
      () => this.active.fd,
      () => {
        if (this.syncTimer !== null) {
          this.timers.clearTimeout(this.syncTimer);
          this.syncTimer = null;
        }
      },
    );
  }

  /**
   * Opens (creating) the store: recovers every record, cuts a torn tail, restores cursors and the next sequence number.
   */
  static async open(options: OutboxOptions): Promise<Outbox> {
    checkOptions(options);
    const box = new Outbox(options);
    try {
      await box.recover();
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      throw openFailure(options.dir, err);
    }
    return box;
  }

  private warn(code: ErrorCode, message: string, cause?: unknown): void {
    this.options.onWarning?.(new SluiceError(code, message, cause === undefined ? {} : { cause }));
  }

  private async recover(): Promise<void> {
    const warn = (code: ErrorCode, message: string, cause?: unknown): void => this.warn(code, message, cause);
    // Records in RAM make a process crash like a power cut: resume past the block reserved ahead.
    const consumers = { each: [...this.consumers.each()], allMask: this.consumers.allMask };
    const calls = this.options.atStart === true ? syncCalls : poolCalls;
    const found = await readOutboxDir(this.dir, consumers, warn, { trustPageCache: this.ram === null, calls });
    this.consumers.recovered(found.floors, found.entries);
    this.segments = found.segments;
    this.index = new RecordIndex(found.entries);
    for (const seg of this.segments) this.diskBytes += seg.bytes;
    this.bootId = found.bootId;
    this.seq = found.nextSeq;
    this.lastDurable = found.lastDurableSeq;
    await this.reserveSeq(false, calls);
    const last = this.segments.at(-1);
    if (last && last.bytes < this.segmentBytes && last.firstSeq <= this.seq) {
      last.fd = openSync(last.path, 'a');
      this.active = last;
    } else {
      this.active = this.addSegment();
    }
    for (const seg of [...this.segments]) if (seg !== this.active && seg.live === 0) this.deleteSegment(seg);
    this.enforceBound();
    await this.io;
  }

  /** Calls `listener` after every append (consumers wake up to send). Returns the function that removes it. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The sequence number the next append gets (sequence numbers start at 1 and never repeat, across restarts too). */
  get nextSeq(): number {
    return this.seq;
  }

  /**
   * Appends one record. `payload` may be a function of the record's sequence number (to put it inside the payload).
   * Resolves with the sequence number: for durable records once fsynced, for droppable ones at once (fsynced within
   * syncIntervalMs). Rejects with ERR_OUTBOX_CLOSED, ERR_OUTBOX_RECORD_TOO_LARGE or ERR_OUTBOX_WRITE (nothing stored,
   * no sequence number used) or ERR_OUTBOX_SYNC (durable record written but its fsync failed).
   */
  append(payload: Payload, options: AppendOptions): Promise<number> {
    return this.appendMany([payload], options).then((seqs) => seqs[0]!);
  }

  /**
   * Appends records with consecutive sequence numbers, like `append` each, with one write per segment they land in
   * rather than one per record (a tick's usage report at 10k sessions is 13 records of 64 KiB: 13 writes and their
   * bookkeeping were ~0.5 ms of the tick). Resolves with their sequence numbers. Every payload is checked before
   * anything is written: a record too large refuses the whole batch. A write that fails stores nothing of its
   * segment's part of the batch; parts written to earlier segments stay (each record stands alone) and the
   * ERR_OUTBOX_WRITE says how many.
   */
  appendMany(payloads: readonly Payload[], options: AppendOptions): Promise<number[]> {
    try {
      const seqs = this.appendEntries(payloads, options);
      if (!options.durable || seqs.length === 0) return Promise.resolve(seqs);
      return this.fsyncs.sync().then(
        () => seqs,
        (err: unknown) => {
          throw new SluiceError('ERR_OUTBOX_SYNC', `outbox fsync failed: ${(err as Error).message}`, { cause: err });
        },
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private appendEntries(payloads: readonly Payload[], options: AppendOptions): number[] {
    if (this.state !== 'open') throw new SluiceError('ERR_OUTBOX_CLOSED', 'the outbox is closed');
    const durable = options.durable;
    const type = options.type ?? 0;
    const at = this.clock.now();
    const records = numberRecords(
      payloads,
      { seq: this.seq, lastDurable: this.lastDurable, durable, type, at },
      this.maxBytes,
    );
    if (!durable && this.ram !== null) return this.appendToRam(records, type);
    const seqs: number[] = [];
    for (let i = 0; i < records.length;) {
      if (this.active.bytes >= this.segmentBytes) this.rotate();
      const seg = this.active;
      const first = i;
      const written = writeRun(seg, records, first, this.segmentBytes);
      if (!written.ok) {
        if (!written.truncated) this.rotate();
        if (seqs.length > 0) this.afterAppend(durable);
        const stored =
          seqs.length > 0 ? ` (${seqs.length} of the batch's ${records.length} records were stored before it)` : '';
        throw new SluiceError(
          'ERR_OUTBOX_WRITE',
          `cannot append to the outbox: ${(written.err as Error).message}${stored}`,
          { cause: written.err },
        );
      }
      const size = written.size;
      i += written.count;
      this.counters.writes++;
      let at = seg.bytes;
      for (let k = first; k < i; k++) {
        const r = records[k]!;
        const length = r.payload.length;
        this.index.push({
          seq: r.seq,
          durable,
          type,
          at: r.at,
          length,
          offset: at + RECORD_HEADER_BYTES,
          bytes: RECORD_HEADER_BYTES + length,
          seg,
          acked: 0,
          finished: false,
        });
        at += RECORD_HEADER_BYTES + length;
        seqs.push(r.seq);
        if (durable) this.lastDurable = r.seq;
      }
      const n = i - first;
      this.counters.appended += n;
      this.seq += n;
      seg.bytes += size;
      seg.live += n;
      if (!durable) seg.droppable += n;
      this.diskBytes += size;
      this.consumers.added(n);
      this.fsyncs.dirty = true;
    }
    if (seqs.length > 0) this.afterAppend(durable);
    return seqs;
  }

  /** Droppable records kept in RAM (never written): indexed like the file's, the ring's bound enforced. */
  private appendToRam(records: readonly OutboxRecord[], type: number): number[] {
    const ram = this.ram!;
    const seqs: number[] = [];
    for (const r of records) {
      this.index.push(ram.entry(r, type, RECORD_HEADER_BYTES));
      seqs.push(r.seq);
    }
    const n = records.length;
    this.counters.appended += n;
    this.seq += n;
    this.consumers.added(n);
    const over = ram.overBound();
    for (const e of over) this.dropEntry(e);
    if (over.length > 0) this.index.dropFinished();
    ram.trim();
    if (n > 0) this.afterAppend(true);
    return seqs;
  }

  /** After records were written: sequence numbers reserved ahead, the bound, the fsync timer, the listeners. */
  private afterAppend(durable: boolean): void {
    if (this.seq + SEQ_RESERVE / 2 > this.reservedUntil && !this.reserving) {
      this.reserving = true;
      this.onIo(
        () =>
          this.reserveSeq(false).finally(() => {
            this.reserving = false;
          }),
        'cannot reserve sequence numbers',
      );
    }
    this.enforceBound();
    if (!durable) this.scheduleSync();
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (err) {
        this.warn('ERR_LISTENER', 'an outbox listener threw', err);
      }
    }
  }

  /**
   * Up to `limit` records (and about `maxBytes` of payload, at least one record) that `consumer` has not acknowledged,
   * in sequence order, starting after sequence number `after` (default: from the oldest); only those of `type` if
   * given. Payloads are read back from the segment files (one read per run of adjacent records) into buffers the
   * caller owns. A read that fails is a warning (ERR_OUTBOX_READ) and the records from there on are left for a later
   * call: what comes back is always an unbroken prefix of what was asked for.
   */
  pending(
    consumer: string,
    options: { after?: number; limit?: number; maxBytes?: number; type?: number } = {},
  ): OutboxRecord[] {
    const c = this.consumers.of(consumer);
    const limit = options.limit ?? 1000;
    const maxBytes = options.maxBytes ?? Infinity;
    const picked = this.index.pick(options.after ?? 0, c.bit, {
      limit,
      maxBytes,
      ...(options.type !== undefined && { type: options.type }),
    });
    return this.readers.readRecords(picked, (first, last, err) => {
      this.warn(
        'ERR_OUTBOX_READ',
        `cannot read records ${first.seq}…${last.seq} back from ${first.seg.path}: ${(err as Error).message}`,
        err,
      );
    });
  }

  /** How many records `consumer` has not acknowledged (nothing read). */
  pendingCount(consumer: string): number {
    return this.consumers.of(consumer).pending;
  }

  /** Acknowledges one record for `consumer` (any order; unknown or dropped sequence numbers are ignored). */
  ack(consumer: string, seq: number): void {
    const e = this.index.find(seq);
    if (!this.consumers.ack(consumer, e, e?.seg !== this.ram?.seg)) return;
    if (this.consumers.dirty) this.scheduleCursors();
    if (e!.acked === this.consumers.allMask) this.finish(e!);
    this.index.advanceHead();
  }

  /** Whether record `seq` is pending on file (not in the RAM ring, not yet finished). */
  isOnFile(seq: number): boolean {
    const e = this.index.find(seq);
    return e !== undefined && !e.finished && e.seg !== this.ram?.seg;
  }

  /** Changes the bound (a reload); drops at once if the store is now over it. */
  setMaxBytes(maxBytes: number): void {
    this.maxBytes = Math.max(4096, maxBytes);
    if (this.ram !== null) this.ram.maxBytes = this.maxBytes;
    this.enforceBound();
  }

  stats(): OutboxStats {
    const consumers = this.consumers.stats(this.index, this.seq);
    let records = this.ram?.seg.live ?? 0;
    for (const s of this.segments) records += s.live;
    return {
      records,
      bytes: this.diskBytes,
      ramBytes: this.ram?.bytes ?? 0,
      maxBytes: this.maxBytes,
      overLimitBytes: Math.max(0, this.diskBytes - this.maxBytes),
      segments: this.segments.length,
      nextSeq: this.seq,
      ...this.counters,
      fsyncs: this.fsyncs.fsyncs,
      consumers,
    };
  }

  /** Writes changed cursors now (a consumer that just drained a backlog: fewer duplicates after a crash). */
  saveCursors(): Promise<void> {
    return this.writeCursors();
  }

  /** fsyncs what is written and writes changed cursors now. */
  async flush(): Promise<void> {
    await this.fsyncs.sync();
    await this.writeCursors();
    await this.io;
  }

  /** Flushes, then closes the files. Idempotent; appends after it are refused. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    if (this.syncTimer !== null) this.timers.clearTimeout(this.syncTimer);
    if (this.cursorTimer !== null) this.timers.clearTimeout(this.cursorTimer);
    this.syncTimer = this.cursorTimer = null;
    try {
      await this.flush();
      await this.reserveSeq(true);
    } finally {
      if (this.active.fd !== null) closeSync(this.active.fd);
      this.active.fd = null;
      for (const seg of this.segments) this.readers.close(seg);
      this.fsyncs.closeRetired();
      this.state = 'closed';
    }
  }

  // ---- internals ----

  private finish(e: Entry): void {
    e.finished = true;
    if (this.ram !== null && e.seg === this.ram.seg) return this.ram.release(e);
    const seg = e.seg;
    seg.live--;
    if (!e.durable) seg.droppable--;
    seg.finishedBytes += e.bytes;
    if (seg.live === 0 && seg !== this.active) this.deleteSegment(seg);
  }

  private addSegment(): Segment {
    const seg = newSegment(this.dir, this.seq);
    this.segments.push(seg);
    this.fsyncs.dirDirty = true;
    return seg;
  }

  private rotate(): void {
    const old = this.active;
    if (old.fd !== null) {
      // Its last records may still wait for their fsync: the next sync covers this fd, then closes it.
      this.fsyncs.retired.push(old.fd);
      old.fd = null;
    }
    this.active = this.addSegment();
    if (old.live === 0) this.deleteSegment(old);
  }

  private deleteSegment(seg: Segment): void {
    const i = this.segments.indexOf(seg);
    if (i < 0) return;
    this.segments.splice(i, 1);
    this.diskBytes -= seg.bytes;
    this.fsyncs.dirDirty = true;
    this.readers.close(seg);
    this.onIo(
      () =>
        unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        }),
      `cannot delete ${seg.path}`,
    );
  }

  /** Serialized background file work; a failure is a warning (the in-memory state stays right). */
  private onIo(work: () => Promise<unknown>, what: string): void {
    this.io = this.io.then(work).then(
      () => undefined,
      (err: unknown) => {
        this.warn('ERR_OUTBOX_IO', `${what}: ${(err as Error).message}`, err);
      },
    );
  }

  /** Compactions (and a rotation) until the files are within maxBytes, or only what may not go is left (boundStep). */
  private enforceBound(): void {
    while (this.diskBytes > this.maxBytes) {
      const step = boundStep(this.segments, this.active);
      if (step === null) break;
      if (step === 'rotate') this.rotate();
      else this.compact(step.compact, step.drop);
    }
  }

  private compact(seg: Segment, drop: boolean): void {
    const keep: Entry[] = [];
    let droppedAny = false;
    for (const e of this.index.ofSegment(seg)) {
      if (drop && !e.durable) {
        this.dropEntry(e);
        droppedAny = true;
      } else {
        keep.push(e);
      }
    }
    if (droppedAny) {
      // Dropped entries leave the index at once: a long outage behind one unacknowledged durable record must not
      // keep a growing tail of dead entries in RAM.
      this.index.dropFinished();
    }
    if (seg.live === 0) return; // finish() deleted it
    const shrunk = rewriteSegment(seg, keep, {
      readAt: (s, offset, length) => this.readers.readAt(s, offset, length),
      io: (work, what) => this.onIo(work, what),
      alive: (s) => this.segments.includes(s),
      closeReader: (s) => this.readers.close(s),
      dirChanged: () => {
        this.fsyncs.dirDirty = true;
      },
      warn: (code, message, cause) => this.warn(code, message, cause),
    });
    if (shrunk === null) return;
    this.diskBytes -= shrunk;
    this.counters.compactions++;
  }

  /** A droppable record given up to make room: counted, finished for every consumer. */
  private dropEntry(e: Entry): void {
    this.consumers.dropped(e);
    this.counters.dropped++;
    this.counters.droppedBytes += e.length;
    this.finish(e);
  }

  private scheduleSync(): void {
    if (this.syncTimer !== null || this.state !== 'open') return;
    this.syncTimer = this.timers.setTimeout(() => {
      this.syncTimer = null;
      this.fsyncs
        .sync()
        .catch((err: unknown) => this.warn('ERR_OUTBOX_SYNC', `outbox fsync failed: ${(err as Error).message}`, err));
    }, this.syncIntervalMs);
  }

  private scheduleCursors(): void {
    if (this.cursorTimer !== null || this.state !== 'open') return;
    this.cursorTimer = this.timers.setTimeout(() => {
      this.cursorTimer = null;
      this.writeCursors().catch((err: unknown) =>
        this.warn('ERR_OUTBOX_IO', `cannot write a cursor: ${(err as Error).message}`, err),
      );
    }, this.cursorIntervalMs);
  }

  /** Reserves the next SEQ_RESERVE sequence numbers (clean: records the exact next one at close). */
  private async reserveSeq(clean: boolean, calls: FileCalls = poolCalls): Promise<void> {
    const reserved = this.seq + SEQ_RESERVE;
    const mark = { next: this.seq, reserved, boot: this.bootId, clean, lastDurable: this.lastDurable };
    await writeSeqMark(this.dir, mark, calls);
    this.reservedUntil = reserved;
  }

  private async writeCursors(): Promise<void> {
    await this.consumers.write(this.dir, this.index, this.seq, () => this.counters.cursorWrites++);
  }
}
