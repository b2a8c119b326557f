/**
 * The file half of an outbox compaction: a segment rewritten with only the records it keeps. The kept records are
 * read back as they are on file (header and payload, one read per run of adjacent records), written to a temporary
 * file and fsynced; the caller renames it over the segment. A crash before the rename leaves the old file, whose
 * records come back after a restart: delivered twice at worst, never lost.
 */
import { open } from 'node:fs/promises';
import { RECORD_HEADER_BYTES } from './outbox-codec.ts';
import type { Entry, Segment } from './outbox-segments.ts';

/** The kept records' bytes, and each one's new payload offset. Throws if the file cannot be read back. */
export function gatherKept(
  seg: Segment, keep: readonly Entry[], readAt: (seg: Segment, offset: number, length: number) => Buffer,
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
export async function writeSynced(temp: string, data: Buffer): Promise<void> {
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
