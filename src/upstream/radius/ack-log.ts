/**
 * Which accounting records the RADIUS server acknowledged, written the moment the Accounting-Response arrives.
 * FreeRADIUS does not deduplicate (a resent Stop is a second detail record), while the outbox persists its cursor
 * only now and then and only as a floor. So each acknowledged sequence number is appended here with one write() (in
 * the page cache at once: it survives kill -9; fsynced in batches against power cuts) and applied to the outbox when
 * it opens. The file is rewritten small once the outbox's own cursor covers what it holds.
 */
import { closeSync, fsync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

export class AckLog {
  private fd: number | null = null;
  private count = 0;
  private syncTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly path: string, private readonly syncIntervalMs: number) {}

  /** Opens the log and returns it with every sequence number it holds. */
  static open(path: string, syncIntervalMs = 2000): { log: AckLog; acked: number[] } {
    const log = new AckLog(path, syncIntervalMs);
    let acked: number[] = [];
    try {
      const text = readFileSync(path, 'utf8');
      // A torn last line (crash mid-write) is not a number and is skipped.
      acked = text.split('\n').filter((l) => /^\d{1,15}$/.test(l)).map(Number);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    log.fd = openSync(path, 'a');
    log.count = acked.length;
    return { log, acked };
  }

  get size(): number {
    return this.count;
  }

  append(seq: number): void {
    if (this.fd === null) return;
    writeSync(this.fd, `${seq}\n`);
    this.count++;
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = null;
      if (this.fd !== null) fsync(this.fd, () => undefined);
    }, this.syncIntervalMs);
  }

  /** Replaces the content with `keep` (the acknowledgements the outbox's persisted cursor does not cover yet). */
  rewrite(keep: readonly number[]): void {
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
