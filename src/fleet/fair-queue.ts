/**
 * Work fair between routers (the venue service's messages: docs/roaming.md, "What the fleet trusts"; the collector
 * batches its own the same way: collector/intake.ts): every message a router sends becomes a task on that router's
 * own queue; at most `concurrency` tasks run at once (a share of the database pool the collector, the venue service
 * and the dashboard use together), taken from the routers in turn, one at a time per router (its messages keep their
 * order). A router's queue is bounded: what it sends beyond is dropped and counted, so one router's flood waits
 * behind itself and never holds a connection another router's claim needs. Claims for a device already waiting are
 * one claim (a router asks again every 2 s by itself).
 */

export interface FairQueueOptions {
  /** Tasks running at once, all routers together. */
  concurrency: number;
  /** Tasks waiting per router (claims and everything else), beyond which its messages are dropped. */
  perRouter: number;
  /** Claims waiting per router (a part of perRouter). */
  claimsPerRouter: number;
  /** A task dropped (its router's queue full). */
  onDrop: (router: string) => void;
  /** A task failed. */
  onError: (router: string, err: unknown) => void;
}

interface Task {
  /** Tasks with the same key wait once (a claim's device); null: every one counts. */
  key: string | null;
  run: () => Promise<void>;
}

export class FairQueue {
  private readonly waiting = new Map<string, Task[]>();
  /** The routers with waiting tasks and none running, in turn. */
  private readonly ready: string[] = [];
  private readonly busy = new Set<string>();
  private running = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly o: FairQueueOptions) {}

  /** Queues `run` for `router`, unless one waiting has its key (joined) or its router's queue is full (dropped). */
  push(router: string, key: string | null, run: () => Promise<void>): 'queued' | 'joined' | 'dropped' {
    let q = this.waiting.get(router);
    if (q === undefined) {
      q = [];
      this.waiting.set(router, q);
    }
    if (key !== null && q.some((t) => t.key === key)) return 'joined';
    const claims = key === null ? 0 : q.filter((t) => t.key !== null).length;
    if (q.length >= this.o.perRouter || claims >= this.o.claimsPerRouter) {
      this.o.onDrop(router);
      return 'dropped';
    }
    q.push({ key, run });
    if (q.length === 1 && !this.busy.has(router)) this.ready.push(router);
    this.pump();
    return 'queued';
  }

  /** Tasks waiting for `router`. */
  depth(router: string): number {
    return this.waiting.get(router)?.length ?? 0;
  }

  /** Resolves once nothing waits or runs. */
  drained(): Promise<void> {
    if (this.running === 0 && this.ready.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.ready.length > 0) {
      const router = this.ready.shift()!;
      const q = this.waiting.get(router)!;
      const task = q.shift()!;
      if (q.length === 0) this.waiting.delete(router);
      this.busy.add(router);
      this.running++;
      task
        .run()
        .catch((err: unknown) => this.o.onError(router, err))
        .finally(() => {
          this.running--;
          this.busy.delete(router);
          if (this.waiting.has(router)) this.ready.push(router);
          this.pump();
          if (this.running === 0 && this.ready.length === 0) for (const done of this.idle.splice(0)) done();
        });
    }
  }
}
