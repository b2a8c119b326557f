/**
 * Group commit for the outbox: one fsync covers every append written before it; callers that arrive while one runs
 * share the next. Segments retired since the last fsync (their last records may still wait for it) are covered by the
 * next one and then closed; the directory is fsynced too when a segment was created, removed or replaced.
 */
import { closeSync, fsync } from 'node:fs';
import { promisify } from 'node:util';
import { fsyncDir } from '../storage/index.ts';

const fsyncFd = promisify(fsync);

export class FsyncGroup {
  /** Appended to the active segment since the last fsync. */
  dirty = false;
  /** A segment file was created, removed or replaced since the last fsync. */
  dirDirty = false;
  /** Descriptors of retired segments, closed after the fsync that covers them. */
  readonly retired: number[] = [];
  fsyncs = 0;
  private syncing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  /**
   * `activeFd`: the descriptor appends go to now; `starting`: called as each fsync starts (the outbox clears its
   * timer).
   */
  constructor(
    private readonly dir: string,
    private readonly activeFd: () => number | null,
    private readonly starting: () => void,
  ) {}

  /** fsync of everything written so far; concurrent callers share one fsync, later ones the next. */
  sync(): Promise<void> {
    if (!this.syncing) {
      this.syncing = this.run().finally(() => {
        this.syncing = null;
      });
      return this.syncing;
    }
    this.queued ??= this.syncing
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.sync();
      });
    return this.queued;
  }

  /** Closes the retired descriptors without their fsync (close of the outbox, after its last sync). */
  closeRetired(): void {
    for (const fd of this.retired.splice(0)) closeSync(fd);
  }

  private async run(): Promise<void> {
    const retired = this.retired.splice(0);
    const fds = [...retired];
    const active = this.activeFd();
    if (this.dirty && active !== null) fds.push(active);
    this.dirty = false;
    const dirDirty = this.dirDirty;
    this.dirDirty = false;
    this.starting();
    try {
      await Promise.all(fds.map((fd) => fsyncFd(fd)));
      if (dirDirty) await fsyncDir(this.dir);
      if (fds.length > 0 || dirDirty) this.fsyncs++;
    } catch (err) {
      this.dirty = true;
      this.dirDirty ||= dirDirty;
      throw err;
    } finally {
      for (const fd of retired) {
        try {
          closeSync(fd);
        } catch {
          /* already closed */
        }
      }
    }
  }
}
