/**
 * The manager's writes that nobody awaits before being answered: end records and usage checkpoints. A failed one is a
 * warning, not a throw (the gate must close whether or not the end is on flash); close() waits for all of them. An end
 * record the store refused (a full state_dir) is kept and retried until written, so that a restart after the store
 * recovered does not bring the ended session back.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import type { EndRecord, SessionStore } from './store.ts';
import type { TimerHandle, Timers } from './time.ts';

export class BackgroundWrites {
  private readonly writes = new Set<Promise<void>>();
  private readonly unwrittenEnds = new Map<string, { record: EndRecord; onWritten: (() => void) | undefined }>();
  private endRetry: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly store: Pick<SessionStore, 'append'>,
    private readonly timers: Timers,
    private readonly endRetryMs: number,
    private readonly warn: (err: SluiceError, context: string) => void,
  ) {}

  /** Ends written but refused by the store, still retried. */
  get unwrittenEndCount(): number {
    return this.unwrittenEnds.size;
  }

  /**
   * An end record, written in the background; kept and retried if the store refuses it. `onWritten` runs once it is
   * durable (on the first write or the retry that wrote it), never for an end that was not written.
   */
  end(record: EndRecord, onWritten?: () => void): Promise<void> {
    const write = this.store.append([record]).then(() => {
      onWritten?.();
    });
    return this.track(write, 'end record', () => this.keepEnd(record, onWritten));
  }

  /** A write whose failure becomes a warning (and runs `onFailure`); settle() waits for it. */
  track(write: Promise<void>, what: string, onFailure?: () => void): Promise<void> {
    const tracked = write
      .then(
        () => undefined,
        (err: unknown) => {
          onFailure?.();
          this.warn(
            toSluiceError(err, 'ERR_JOURNAL_WRITE'),
            `${what} not written${onFailure ? ' (kept in memory, retried)' : ''}`,
          );
        },
      )
      .finally(() => this.writes.delete(tracked));
    this.writes.add(tracked);
    return tracked;
  }

  async settle(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  /** Writes the ends the store refused before, in one append; on failure they wait for the next try. */
  async retryEnds(): Promise<void> {
    if (this.unwrittenEnds.size === 0) return;
    const kept = [...this.unwrittenEnds.values()];
    try {
      await this.store.append(kept.map((k) => k.record));
      for (const k of kept) {
        if (this.unwrittenEnds.get(k.record.id) === k) this.unwrittenEnds.delete(k.record.id);
        k.onWritten?.();
      }
    } catch {
      // Still failing (the journal reports its own condition in stats): try again later.
    }
    this.armEndRetry();
  }

  /** The retry timer off, then a last try for refused ends (the store may have recovered since the last retry). */
  async lastTry(): Promise<void> {
    this.clearEndRetry();
    await this.retryEnds().catch(() => undefined);
    this.clearEndRetry();
  }

  /** No retry is armed from now on (the store is closed). */
  stop(): void {
    this.stopped = true;
  }

  private keepEnd(record: EndRecord, onWritten: (() => void) | undefined): void {
    this.unwrittenEnds.set(record.id, { record, onWritten });
    this.armEndRetry();
  }

  private armEndRetry(): void {
    if (this.endRetry !== null || this.unwrittenEnds.size === 0 || this.stopped) return;
    this.endRetry = this.timers.setTimeout(() => {
      this.endRetry = null;
      void this.retryEnds();
    }, this.endRetryMs);
  }

  private clearEndRetry(): void {
    if (this.endRetry !== null) this.timers.clearTimeout(this.endRetry);
    this.endRetry = null;
  }
}
