/**
 * A small append-only file of marks that must survive a kill -9 the moment they are made: one line per mark, each
 * appended with one write() (in the page cache at once; fsynced in batches against power cuts), read back whole at
 * open, and rewritten small when most of it is no longer needed. Used for:
 *
 *   radius/acked  sequence numbers of records the RADIUS server acknowledged. FreeRADIUS does not deduplicate (a
 *                 resent record is a second detail record), while the outbox persists its cursor only now and then
 *                 and only as a floor; so each acknowledgement is written here when the Accounting-Response arrives
 *                 and applied to the outbox when it opens (radius/accounting.ts).
 *   end marks     sessions a sink already reported as ended (end-marks.ts).
 */
import { closeSync, fsync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

export class LineLog {
  private fd: number | null = null;
  private count = 0;
  private syncTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly path: string, private readonly syncIntervalMs: number) {}

  /** Opens the log and returns it with every line it holds that `valid` accepts (a torn last line is not). */
  static open(path: string, valid: RegExp, syncIntervalMs = 2000): { log: LineLog; lines: string[] } {
    const log = new LineLog(path, syncIntervalMs);
    let lines: string[] = [];
    try {
      lines = readFileSync(path, 'utf8').split('\n').filter((l) => valid.test(l));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    log.fd = openSync(path, 'a');
    log.count = lines.length;
    return { log, lines };
  }

  /** Lines in the file (appended since open or the last rewrite, plus those read at open). */
  get size(): number {
    return this.count;
  }

  append(line: string): void {
    if (this.fd === null) return;
    writeSync(this.fd, `${line}\n`);
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
    writeFileSync(tmp, keep.map((s) => `${s}\n`).join(''));
    const fd = openSync(tmp, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
    this.count = keep.length;
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
}
