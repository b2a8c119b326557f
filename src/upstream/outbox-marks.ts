/**
 * The outbox's two small files beside its segments, each replaced atomically:
 *
 *   <dir>/cursor-<consumer>   {"floor": n}: every record ≤ n was acknowledged by that consumer
 *   <dir>/seq                 sequence numbers reserved ahead, the boot id, a clean-close mark, the newest durable
 *                             record's number when it was written
 *
 * and the rule for where numbering resumes at open: after a clean close at the exact next number; after a process
 * crash in the same boot (the page cache kept every write) after the last record found; after a power cut (another
 * boot, or no boot id) past the block reserved ahead, since records appended after the last fsync may have been
 * delivered and then lost from flash.
 *
 * The two files are read synchronously: each is a line, read once as the outbox opens, where fs/promises took a
 * thread-pool hop for each open, stat, read and close.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.ts';
import { atomicWriteFs, countDamaged, poolCalls, writeFileAtomic, type FileCalls } from '../storage/index.ts';

const SEQ_FILE = 'seq';
const cursorName = (consumer: string): string => `cursor-${consumer}`;

/**
 * The consumer's persisted floor (0 when there is none); a malformed or unreadable cursor is warned about and read as
 * 0; a directory in its place rejects (EISDIR).
 */
export async function readCursor(
  dir: string,
  consumer: string,
  warn: (code: ErrorCode, message: string, cause?: unknown) => void,
): Promise<number> {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, cursorName(consumer)), 'utf8')) as { floor?: unknown };
    if (typeof parsed.floor === 'number' && Number.isSafeInteger(parsed.floor) && parsed.floor >= 0)
      return parsed.floor;
    countDamaged(join(dir, cursorName(consumer)));
    warn('ERR_OUTBOX_CORRUPT', `cursor of ${consumer} is malformed: delivering everything stored again`);
  } catch (err) {
    // A directory in its place is damage that no write can mend: the outbox refuses to open (outbox-open.ts).
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      countDamaged(join(dir, cursorName(consumer)));
      warn('ERR_OUTBOX_CORRUPT', `cursor of ${consumer} is unreadable: delivering everything stored again`, err);
    }
  }
  return 0;
}

export async function writeCursor(dir: string, consumer: string, floor: number): Promise<void> {
  await writeFileAtomic(join(dir, cursorName(consumer)), `${JSON.stringify({ floor })}\n`, { mode: 0o644 });
}

/** This boot's id, read once per process: a process outlives no boot. */
let bootId: Promise<string> | undefined;

/** This boot's id ('' where the kernel does not say). */
export function readBootId(): Promise<string> {
  bootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  return bootId;
}

/**
 * `resumeAt`: the lowest sequence number the seq mark allows next (0: no constraint beyond the records found);
 * `lastDurable`: the newest durable record's number when the mark was written (0: none, or a mark without it);
 * `clean`: written at a clean close, when every record was on flash and `lastDurable` exact.
 */
export async function readSeqMark(
  dir: string,
  bootId: string,
): Promise<{ resumeAt: number; lastDurable: number; clean: boolean }> {
  let mark: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dir, SEQ_FILE), 'utf8'));
    if (parsed !== null && typeof parsed === 'object') mark = parsed as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw err;
  }
  const num = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0);
  const lastDurable = num(mark['last_durable']);
  if (mark['clean'] === true) return { resumeAt: num(mark['next']), lastDurable, clean: true };
  if (bootId === '' || mark['boot'] !== bootId) return { resumeAt: num(mark['reserved']), lastDurable, clean: false };
  return { resumeAt: 0, lastDurable, clean: false };
}

/**
 * Reserves sequence numbers up to `reserved` (clean: also records `next`, the exact next one, at close). `calls`: the
 * thread pool's, or synchronous at the daemon's start (storage/file-calls.ts).
 */
export async function writeSeqMark(
  dir: string,
  mark: { next: number; reserved: number; boot: string; clean: boolean; lastDurable: number },
  calls: FileCalls = poolCalls,
): Promise<void> {
  const { next, reserved, boot, clean } = mark;
  const last_durable = mark.lastDurable;
  const body = clean ? { next, reserved, boot, clean, last_durable } : { reserved, boot, clean, last_durable };
  await writeFileAtomic(join(dir, SEQ_FILE), `${JSON.stringify(body)}\n`, { mode: 0o644, fs: atomicWriteFs(calls) });
}
