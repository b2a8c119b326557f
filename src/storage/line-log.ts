/**
 * A small append-only file of marks that must survive a kill -9 the moment they are made: one record per mark in the
 * storage log format (record-log.ts, no header of its own: the mark's text is the payload), each appended with one
 * write() (in the page cache at once; fsynced in batches against power cuts), read back whole at open, and
 * rewritten small when most of it is no longer needed. Used for:
 *
 *   radius/acked  sequence numbers of records the RADIUS server acknowledged. FreeRADIUS does not deduplicate (a
 *                 resent record is a second detail record), while the outbox persists its cursor only now and then
 *                 and only as a floor; so each acknowledgement is written here when the Accounting-Response arrives
 *                 and applied to the outbox when it opens (upstream/radius/accounting.ts).
 *   end marks     sessions a sink already reported as ended (upstream/end-marks.ts).
 *
 * Files written before the format was shared hold one mark per `\n`-terminated line. A mark is at most
 * MAX_MARK_BYTES long, so a record's length field starts with a zero byte in its bytes 2 and 3, which no text line
 * holds: that tells the two apart, and an old file is rewritten in records when it is opened.
 */
import { closeSync, fsync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { AppendError, appendWholeSync } from './append.ts';
import { SluiceError } from '../errors.ts';
import { countDamaged, fileDamage } from './damage.ts';
import { encodeRecord, scanRecords } from './record-log.ts';

/** Longest mark: a session id or a sequence number is far shorter. */
export const MAX_MARK_BYTES = 0xffff;

export interface LineLogOpen {
  log: LineLog;
  /** Every mark in the file that `valid` accepts (a torn last record or line is not among them). */
  lines: string[];
  /**
   * What was worked around: `torn` (cut off), `corrupt` (marks after the damage lost), `text` (rewritten in records).
   */
  repaired: 'torn' | 'corrupt' | 'text' | null;
}

/** Marks of a file written before the record format: complete lines only (an unterminated last line is torn). */
function readTextLines(data: Buffer): string[] {
  const text = data.toString('utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n');
}

function isTextFile(data: Buffer): boolean {
  return data.length > 0 && !data.subarray(0, 4).includes(0);
}

export class LineLog {
  private fd: number | null = null;
  private count = 0;
  /** The file's length: the end of its last whole record, where a failed append is cut back to. */
  private bytes = 0;
  private syncTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly path: string,
    private readonly syncIntervalMs: number,
  ) {}

  /**
   * Opens the log and returns it with every mark it holds that `valid` accepts. A torn last record is cut off;
   * a corrupt one, or a file in the old line format, is rewritten with the marks read.
   */
  static open(path: string, valid: RegExp, syncIntervalMs = 2000): LineLogOpen {
    const log = new LineLog(path, syncIntervalMs);
    let data: Buffer | null = null;
    try {
      data = readFileSync(path);
    } catch (err) {
      // A directory in its place, or a file that cannot be read: refused (verdicts.ts `marks-log`), never empty.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw fileDamage('marks-log', path, 'ERR_STATE_DIR', 'a log of marks', (err as Error).message, null);
    }
    let lines: string[] = [];
    let repaired: LineLogOpen['repaired'] = null;
    let cutAt: number | null = null;
    if (data && isTextFile(data)) {
      lines = readTextLines(data).filter((l) => valid.test(l));
      repaired = 'text';
    } else if (data) {
      const scan = scanRecords(data, 0);
      lines = scan.records.map((r) => r.payload.toString('utf8')).filter((l) => valid.test(l));
      repaired = scan.problem;
      if (scan.problem === 'torn') cutAt = scan.end;
      // A torn tail is a crash's leftover; a damaged record with marks after it is damage (verdicts.ts `marks-log`).
      if (scan.problem === 'corrupt') countDamaged(path);
    }
    log.fd = openSync(path, 'a');
    log.count = lines.length;
    log.bytes = data?.length ?? 0;
    if (cutAt !== null) {
      ftruncateSync(log.fd, cutAt);
      log.bytes = cutAt;
    } else if (repaired !== null) log.rewrite(lines);
    return { log, lines, repaired };
  }

  /** Marks in the file (appended since open or the last rewrite, plus those read at open). */
  get size(): number {
    return this.count;
  }

  /**
   * Appends a mark, whole or not at all (storage/append.ts): throws when it could not be written (the file is cut back
   * to its last whole record; should even that fail, the log is closed and marks no more).
   */
  append(line: string): void {
    if (this.fd === null) return;
    try {
      this.bytes = appendWholeSync(this.fd, LineLog.encode(line), this.bytes, 'none');
    } catch (err) {
      if (err instanceof AppendError && !err.cut) this.close();
      throw err;
    }
    this.count++;
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = null;
      if (this.fd !== null) fsync(this.fd, () => undefined);
    }, this.syncIntervalMs);
  }

  /** Replaces the content with `keep`. */
  rewrite(keep: readonly string[]): void {
    if (this.fd === null) return;
    // Synchronous on purpose: no append may land in the old file between the copy and the rename.
    const tmp = `${this.path}.tmp`;
    const bytes = Buffer.concat(keep.map((s) => LineLog.encode(s)));
    writeFileSync(tmp, bytes);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.count = keep.length;
    this.bytes = bytes.length;
  }

  close(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    if (this.fd === null) return;
    try {
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  private static encode(line: string): Buffer {
    const bytes = Buffer.from(line, 'utf8');
    if (bytes.length > MAX_MARK_BYTES) {
      throw new SluiceError(
        'ERR_LOG_RECORD_TOO_LARGE',
        `a line log mark of ${bytes.length} bytes exceeds ${MAX_MARK_BYTES}`,
      );
    }
    return encodeRecord(bytes);
  }
}
