/**
 * What an outbox directory holds when the store opens (outbox.ts): leftover temp files removed, each consumer's
 * persisted floor, every segment's records recovered (a torn tail cut: outbox-segments.ts) with the consumers that had
 * acknowledged them, and the next sequence number, which never repeats one a consumer may have seen: past the last
 * record, past every floor, and after a power cut past the block reserved ahead in `seq` (outbox-marks.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError, type ErrorCode } from '../errors.ts';
import { countDamaged, ensureDir, ensureDirSync, fileDamage, syncCalls, type FileCalls } from '../storage/index.ts';
import { readBootId, readCursor, readSeqMark } from './outbox-marks.ts';
import { recoverSegments, SEGMENT_RE, type Entry, type Segment } from './outbox-segments.ts';

export interface OutboxDir {
  segments: Segment[];
  entries: Entry[];
  /** Each consumer's persisted floor (its cursor file; 0 without one). */
  floors: Map<string, number>;
  bootId: string;
  nextSeq: number;
  /**
   * The newest durable record's sequence number (0: none ever): the newest found, or the seq mark's when the records
   * after it were all acknowledged and removed.
   */
  lastDurableSeq: number;
}

/**
 * What the outbox's directory holds: its segments read back, each consumer's cursor, the seq mark. `consumers.each`:
 * their names and bits, `consumers.allMask`: every bit; `trustPageCache`: the seq mark of this boot may be trusted;
 * `calls`: on the thread pool, or synchronous at the daemon's start (storage/file-calls.ts).
 */
export async function readOutboxDir(
  dir: string,
  consumers: { each: readonly { name: string; bit: number }[]; allMask: number },
  warn: (code: ErrorCode, message: string, cause?: unknown) => void,
  { trustPageCache, calls }: { trustPageCache: boolean; calls: FileCalls },
): Promise<OutboxDir> {
  // Not mkdir's recursive mode: under /proc it retries for ever (a spinning start with a meter that never ticks).
  if (calls === syncCalls) ensureDirSync(dir);
  else await ensureDir(dir);
  const names = await calls.readdir(dir);
  for (const n of names) if (n.includes('.tmp')) await calls.unlink(join(dir, n)).catch(() => undefined);
  const floors = new Map<string, number>();
  for (const c of consumers.each) floors.set(c.name, await readCursor(dir, c.name, warn));
  const ackedBits = (seq: number): number => {
    let acked = 0;
    for (const c of consumers.each) if (seq <= floors.get(c.name)!) acked |= c.bit;
    return acked;
  };
  const segments = names.filter((n) => SEGMENT_RE.test(n)).sort();
  const found = await recoverSegments(dir, segments, {
    acks: { bits: ackedBits, all: consumers.allMask },
    warn,
    calls,
  });
  const bootId = await readBootId();
  const mark = await readSeqMark(dir, trustPageCache ? bootId : '');
  const nextSeq = Math.max(found.lastSeq + 1, mark.resumeAt, ...[...floors.values()].map((f) => f + 1), 1);
  const lastDurableSeq = Math.max(found.lastDurableSeq, mark.lastDurable);
  // After a clean close every durable record was on flash and the mark names the newest: one missing that not every
  // consumer acknowledged (compaction removes only those) was cut off or rolled back (an older copy of a segment
  // put back). The rest is delivered; the loss is counted and said (verdicts.ts `outbox`).
  const acked = Math.min(...floors.values());
  if (mark.clean && mark.lastDurable > found.lastDurableSeq && mark.lastDurable > acked) {
    countDamaged(join(dir, segments.at(-1) ?? 'seq'));
    warn(
      'ERR_OUTBOX_CORRUPT',
      `${dir}: durable record ${mark.lastDurable} was written before the last clean stop, yet the newest found is ` +
        `${found.lastDurableSeq}: a segment was cut short or an older copy put back; what is found is delivered`,
    );
  }
  return { segments: found.segments, entries: found.entries, floors, bootId, nextSeq, lastDurableSeq };
}

/**
 * Why an outbox could not be opened: a directory where one of its files should be is damage (verdicts.ts `outbox`:
 * refused, counted in damaged_tables); anything else says what failed.
 */
export function openFailure(dir: string, err: unknown): SluiceError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EISDIR') {
    let path = e.path;
    try {
      path ??= readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name))[0];
    } catch {
      // The directory itself cannot be listed: the plain refusal below.
    }
    if (path !== undefined) return fileDamage('outbox', path, 'ERR_OUTBOX_OPEN', 'an outbox file', e.message, null);
  }
  return new SluiceError('ERR_OUTBOX_OPEN', `cannot open the outbox in ${dir}: ${e.message}`, { cause: err });
}
