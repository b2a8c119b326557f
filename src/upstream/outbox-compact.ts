/**
 * The file half of an outbox compaction: a segment rewritten with only the records it keeps (outbox.ts decides which).
 * The kept records are read back as they are on file (header and payload, one read per run of adjacent records),
 * written to a temporary file, fsynced and renamed over the segment. A crash before the rename leaves the old file,
 * whose records come back after a restart: delivered twice at worst, never lost.
 */
import { open, rename, unlink } from 'node:fs/promises';
import type { ErrorCode } from '../errors.ts';
import { RECORD_HEADER_BYTES } from './outbox-codec.ts';
import type { Entry, Segment } from './outbox-segments.ts';

/** What a rewrite needs from the outbox. */
export interface RewriteContext {
  readAt: (seg: Segment, offset: number, length: number) => Buffer;
  /** Queues background file work (serialized with the outbox's other file work; a failure is a warning). */
  io: (work: () => Promise<void>, what: string) => void;
  /** Whether the segment is still in the store once its new file is written (else the new file is removed). */
  alive: (seg: Segment) => boolean;
  closeReader: (seg: Segment) => void;
  /** A segment file was replaced: the directory needs its fsync. */
  dirChanged: () => void;
  warn: (code: ErrorCode, message: string, cause?: unknown) => void;
}

/**
 * Starts rewriting `seg` with only `keep` (its unfinished records, in order): the segment's size and the entries'
 * offsets follow the new file. Returns how many bytes the store shrinks by, or null when the segment cannot be read
 * back: then it is left as it is and never picked again (so the bound loop ends), its records readable where they are.
 */
export function rewriteSegment(seg: Segment, keep: readonly Entry[], ctx: RewriteContext): number | null {
  let kept: { data: Buffer; offsets: number[] };
  try {
    kept = gatherKept(seg, keep, ctx.readAt);
  } catch (err) {
    seg.compacting = true;
    ctx.warn('ERR_OUTBOX_READ', `cannot read ${seg.path} back to rewrite it: ${(err as Error).message}`, err);
    return null;
  }
  const { data, offsets } = kept;
  const shrunk = seg.bytes - data.length;
  seg.bytes = data.length;
  seg.finishedBytes = 0;
  seg.compacting = true;
  const temp = `${seg.path}.tmp`;
  ctx.io(async () => {
    try {
      await writeSynced(temp, data);
      if (ctx.alive(seg)) {
        await rename(temp, seg.path);
        // Reads went to the old file (its descriptor, opened by gatherKept above, still holds it) until now: from
        // here on the new one, at the new offsets.
        ctx.closeReader(seg);
        keep.forEach((e, k) => {
          e.offset = offsets[k]!;
        });
      } else {
        await unlink(temp);
      }
      ctx.dirChanged();
    } finally {
      seg.compacting = false;
    }
  }, `cannot rewrite ${seg.path}`);
  return shrunk;
}

/** The kept records' bytes, and each one's new payload offset. Throws if the file cannot be read back. */
function gatherKept(
  seg: Segment,
  keep: readonly Entry[],
  readAt: (seg: Segment, offset: number, length: number) => Buffer,
): { data: Buffer; offsets: number[] } {
  const chunks: Buffer[] = [];
  const offsets: number[] = [];
  let size = 0;
  for (let i = 0; i < keep.length;) {
    let j = i + 1;
    while (j < keep.length && keep[j]!.offset === keep[j - 1]!.offset + keep[j - 1]!.bytes) j++;
    const start = keep[i]!.offset - RECORD_HEADER_BYTES;
    const end = keep[j - 1]!.offset + keep[j - 1]!.length;
    chunks.push(readAt(seg, start, end - start));
    for (let k = i; k < j; k++) offsets.push(size + keep[k]!.offset - start);
    size += end - start;
    i = j;
  }
  return { data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), offsets };
}

/** Writes `data` to `temp` and fsyncs it. */
async function writeSynced(temp: string, data: Buffer): Promise<void> {
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
