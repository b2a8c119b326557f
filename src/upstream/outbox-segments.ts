/**
 * The outbox's segment files: the shapes of a segment and of an index entry (where a record's payload is on file:
 * outbox.ts keeps no payload in RAM), the file names, appending a run of records with one writev, reading payloads
 * back with a bounded set of open descriptors, and the recovery of every segment at open (a torn last record cut off,
 * garbage in the middle reported and copied aside).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.ts';
import { AppendError, appendWholeSyncv, countDamaged, type FileCalls } from '../storage/index.ts';
import { decodeSegment, encodeHeader, RECORD_HEADER_BYTES, type OutboxRecord } from './outbox-codec.ts';

export interface Segment {
  firstSeq: number;
  path: string;
  bytes: number;
  /** Records neither acknowledged by all consumers nor dropped. */
  live: number;
  /** Live records that may be dropped. */
  droppable: number;
  /** Bytes of finished records still in the file (reclaimable by a rewrite without loss). */
  finishedBytes: number;
  /** Open for appending (active), or retired and waiting for its last fsync. */
  fd: number | null;
  /** Open for reading payloads back (opened on the first read, closed with the segment). */
  readFd: number | null;
  compacting: boolean;
}

/** A record in the index: where its payload is in its segment file, not the payload. */
export interface Entry {
  seq: number;
  durable: boolean;
  type: number;
  at: number;
  /** Payload length, and its offset in the segment file. */
  length: number;
  offset: number;
  /** Header and payload. */
  bytes: number;
  seg: Segment;
  /** Bit i: acknowledged by consumer i. */
  acked: number;
  finished: boolean;
  /** The payload itself, for a record held in RAM and never written (outbox-ram.ts); its `seg` is the RAM ring's. */
  payload?: Uint8Array;
}

export const SEGMENT_RE = /^seg-(\d{16})\.log$/;
export const segmentName = (firstSeq: number): string => `seg-${String(firstSeq).padStart(16, '0')}.log`;

export function newSegment(dir: string, firstSeq: number): Segment {
  const path = join(dir, segmentName(firstSeq));
  return {
    firstSeq,
    path,
    bytes: 0,
    live: 0,
    droppable: 0,
    finishedBytes: 0,
    fd: openSync(path, 'a'),
    readFd: null,
    compacting: false,
  };
}

/** iovecs per writev (Linux IOV_MAX is 1024). */
const MAX_IOV = 1024;

/**
 * Appends to `seg` its share of `records` from `from`: records up to its size (at least one), at most MAX_IOV / 2 of
 * them, with one writev and no copy of the payloads. On a failed write the file is cut back to `seg.bytes`, so the
 * next append does not follow a partial record (`truncated` false: even that failed). `seg` itself is not updated.
 */
export function writeRun(
  seg: Segment,
  records: readonly OutboxRecord[],
  from: number,
  segmentBytes: number,
): { ok: true; count: number; size: number } | { ok: false; err: unknown; truncated: boolean } {
  const iov: Uint8Array[] = [];
  let size = 0;
  let i = from;
  do {
    const r = records[i++]!;
    const header = encodeHeader(r);
    iov.push(header, r.payload);
    size += header.length + r.payload.length;
  } while (i < records.length && seg.bytes + size < segmentBytes && iov.length < MAX_IOV);
  try {
    // Whole or not at all (storage/append.ts): on a failed write the file is cut back to `seg.bytes`.
    appendWholeSyncv(seg.fd!, iov, seg.bytes, 'none');
  } catch (err) {
    return { ok: false, err, truncated: err instanceof AppendError && err.cut };
  }
  return { ok: true, count: i - from, size };
}

/** Read descriptors kept open. */
const MAX_READERS = 16;

/** Reads payloads back from segment files, with at most MAX_READERS descriptors open. */
export class SegmentReaders {
  /** Segments with a read descriptor open, oldest first. */
  private readonly open: Segment[] = [];

  /** `length` bytes of a segment file from `offset`. */
  readAt(seg: Segment, offset: number, length: number): Buffer {
    if (seg.readFd === null) {
      // A long outage can leave many segments (each kept by a session event): at most MAX_READERS descriptors stay
      // open, the least recently opened closed first, except a segment being rewritten (its descriptor holds the old
      // file, whose offsets the index keeps until the new file is in place).
      if (this.open.length >= MAX_READERS) {
        const victim = this.open.find((r) => !r.compacting);
        if (victim) this.close(victim);
      }
      seg.readFd = openSync(seg.path, 'r');
      this.open.push(seg);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(seg.readFd, buf, done, length - done, offset + done);
      if (n === 0) throw new Error(`the file ends at ${offset + done}, the record at ${offset + length}`);
      done += n;
    }
    return buf;
  }

  /**
   * The records of `entries` (in sequence order), read back one run of adjacent records (same file, back to back) per
   * pread. A read that fails is reported and ends the list there: what comes back is an unbroken prefix.
   */
  readRecords(entries: readonly Entry[], failed: (first: Entry, last: Entry, err: unknown) => void): OutboxRecord[] {
    const out: OutboxRecord[] = [];
    for (let i = 0; i < entries.length;) {
      const first = entries[i]!;
      if (first.payload !== undefined) {
        out.push({ seq: first.seq, durable: first.durable, type: first.type, at: first.at, payload: first.payload });
        i++;
        continue;
      }
      let j = i + 1;
      while (
        j < entries.length &&
        entries[j]!.seg === first.seg &&
        entries[j]!.payload === undefined &&
        entries[j]!.offset === entries[j - 1]!.offset + entries[j - 1]!.length + RECORD_HEADER_BYTES
      )
        j++;
      const last = entries[j - 1]!;
      let buf: Buffer;
      try {
        buf = this.readAt(first.seg, first.offset, last.offset + last.length - first.offset);
      } catch (err) {
        failed(first, last, err);
        break;
      }
      for (let k = i; k < j; k++) {
        const e = entries[k]!;
        out.push({
          seq: e.seq,
          durable: e.durable,
          type: e.type,
          at: e.at,
          payload: buf.subarray(e.offset - first.offset, e.offset - first.offset + e.length),
        });
      }
      i = j;
    }
    return out;
  }

  close(seg: Segment): void {
    if (seg.readFd === null) return;
    try {
      closeSync(seg.readFd);
    } catch {
      /* already closed */
    }
    seg.readFd = null;
    const i = this.open.indexOf(seg);
    if (i >= 0) this.open.splice(i, 1);
  }
}

/** What recovery found: the segments in order, the live records in sequence order, the last sequence number seen. */
export interface Recovered {
  segments: Segment[];
  entries: Entry[];
  lastSeq: number;
  /** The newest durable record's sequence number among every record found, acknowledged ones too (0: none). */
  lastDurableSeq: number;
}

/**
 * Reads every segment file (`names`, sorted) back into the index. `acks.bits(seq)` says which consumers' cursors cover
 * a record; a record all of them acknowledged (`acks.all`) is counted as finished bytes, not indexed. A torn last
 * record of the last segment (a crash mid-append) is cut off; a bad record anywhere else is reported, the file copied
 * aside and cut there. `calls`: the file calls it reads and cuts with (outbox-open.ts).
 */
export async function recoverSegments(
  dir: string,
  names: readonly string[],
  how: {
    acks: { bits: (seq: number) => number; all: number };
    warn: (code: ErrorCode, message: string) => void;
    calls: FileCalls;
  },
): Promise<Recovered> {
  const { acks, warn, calls } = how;
  const segments: Segment[] = [];
  const entries: Entry[] = [];
  let lastSeq = 0;
  let lastDurableSeq = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const path = join(dir, name);
    const firstSeq = Number(SEGMENT_RE.exec(name)![1]);
    const data = await calls.readFile(path);
    const decoded = decodeSegment(data, lastSeq);
    if (!decoded.ok) {
      if (decoded.reason === 'torn' && i === names.length - 1) {
        warn('ERR_OUTBOX_TORN', `${name}: a torn last record (crash mid-append) was cut off at byte ${decoded.end}`);
      } else {
        countDamaged(path);
        await calls.copyFile(path, `${path}.corrupt`, 0).catch(() => undefined);
        warn(
          'ERR_OUTBOX_CORRUPT',
          `${name}: ${decoded.reason} record at byte ${decoded.end}; ${data.length - decoded.end} bytes after ` +
            `it skipped (copy in ${name}.corrupt)`,
        );
      }
      await calls.truncate(path, decoded.end);
    }
    const seg: Segment = {
      firstSeq,
      path,
      bytes: decoded.end,
      live: 0,
      droppable: 0,
      finishedBytes: 0,
      fd: null,
      readFd: null,
      compacting: false,
    };
    segments.push(seg);
    let at = 0;
    for (const r of decoded.records) {
      const acked = acks.bits(r.seq);
      const finished = acked === acks.all;
      const entry: Entry = {
        seq: r.seq,
        durable: r.durable,
        type: r.type,
        at: r.at,
        length: r.payload.length,
        offset: at + RECORD_HEADER_BYTES,
        bytes: r.bytes,
        seg,
        acked,
        finished,
      };
      at += r.bytes;
      if (finished) seg.finishedBytes += r.bytes;
      else {
        seg.live++;
        if (!r.durable) seg.droppable++;
        entries.push(entry);
      }
      lastSeq = r.seq;
      if (r.durable) lastDurableSeq = r.seq;
    }
    lastSeq = Math.max(lastSeq, firstSeq - 1);
  }
  return { segments, entries, lastSeq, lastDurableSeq };
}

/** The next step toward the bound (outbox.ts enforceBound), decided from the segments alone. */
export type BoundStep = { compact: Segment; drop: boolean } | 'rotate' | null;

/**
 * Lossless rewrites of old segments first (their acknowledged records left out), then dropping their droppable
 * records, oldest segment first; the active segment is rotated out when it holds something either could remove; null:
 * only durable unacknowledged records remain, and the store stays over its bound.
 */
export function boundStep(segments: readonly Segment[], active: Segment): BoundStep {
  const old = segments.filter((s) => s !== active && !s.compacting);
  const lossless = old.find((s) => s.finishedBytes > 0);
  if (lossless) return { compact: lossless, drop: false };
  const lossy = old.find((s) => s.droppable > 0);
  if (lossy) return { compact: lossy, drop: true };
  if (active.live > 0 && (active.droppable > 0 || active.finishedBytes > 0)) return 'rotate';
  return null;
}
