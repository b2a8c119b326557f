/**
 * Group commit: what is submitted while writes are in flight waits and goes into the next write together, so a busy
 * collector commits many messages per transaction (one fsync for the lot) and an idle one writes each at once. At
 * most `maxInFlight` writes run at a time (one can commit while the next is written), each of at most `maxBatch`
 * items. A write resolves with one result per item, in order; when it throws, every item of it gets the error.
 */
export interface GroupCommitOptions {
  maxInFlight: number;
  maxBatch: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<T, R> {
  private readonly queue: Waiting<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.kick();
    });
  }

  /** Items waiting for a write (not those in one). */
  get waiting(): number {
    return this.queue.length;
  }

  private kick(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) return;
    // After the I/O callbacks of this turn: the messages that arrived together are written together.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      this.write(batch.map((w) => w.item))
        .then(
          (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.kick();
        });
    }
  }
}
