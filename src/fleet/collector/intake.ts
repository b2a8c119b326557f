/**
 * Session messages and statuses, fair between routers (docs/fleet.md, "One router cannot slow the others"): the
 * collector reads them ahead of what it has stored (held-acks.ts), each onto its router's queue, stored from the
 * routers in turn (fair-queue.ts), one at a time per router. What a router sends beyond `waiting` messages not yet
 * stored is kept aside in the database (deferred.ts, many in one statement) and acknowledged; from then on its
 * messages go there in the order they come until it has caught up, and they are stored in its turn, a few at a time.
 * So a flood costs the broker's stream only one short insert per message, never a place in the queue ahead of
 * another router's payment, and nothing is dropped: a message kept aside is on the database's disk before its PUBACK.
 */
import { FairQueue } from '../fair-queue.ts';
import type { DeferredMessage } from './deferred.ts';
import { GroupCommit } from './group-commit.ts';

/** A message read ahead: alive while its connection is the one it came on (else it is not acknowledged). */
export interface Taken extends DeferredMessage {
  alive: () => boolean;
}

export interface IntakeOptions {
  /** Messages stored at once, all routers together (a share of the database pool). */
  concurrency: number;
  /** Messages of one router read and not yet stored, beyond which its messages are kept aside. */
  waiting: number;
  /** Stores one message (or refuses and counts it); false: not acknowledged (its connection closed, stopping). */
  store: (m: Taken) => Promise<boolean>;
  /** Keeps messages aside, all in one transaction; true each: on disk, acknowledge it. */
  putAside: (ms: Taken[]) => Promise<boolean[]>;
  /** A router's oldest messages kept aside, with their ids. */
  next: (router: string, limit: number) => Promise<Array<DeferredMessage & { id: string }>>;
  /** Forgets a message kept aside once stored. */
  drop: (id: string) => Promise<void>;
  onError: (router: string, err: unknown) => void;
}

/** Messages kept aside that one turn of a router stores before the next router's turn. */
const ASIDE_PER_TURN = 16;

export class Intake {
  private readonly queue: FairQueue;
  private readonly aside: GroupCommit<Taken, boolean>;
  /** Routers with messages kept aside: their next messages go there too, in order. */
  private readonly deferring = new Set<string>();
  /** Routers' writes to the aside table in flight. */
  private readonly writing = new Map<string, number>();
  private stopped = false;

  constructor(private readonly o: IntakeOptions) {
    this.queue = new FairQueue({
      concurrency: o.concurrency,
      perRouter: o.waiting + 1,
      claimsPerRouter: 1,
      onDrop: () => undefined,
      onError: o.onError,
    });
    this.aside = new GroupCommit((ms) => o.putAside(ms), { maxInFlight: 1, maxBatch: 512 });
  }

  /** Takes a message read ahead; resolves true once it may be acknowledged (stored, kept aside, or refused). */
  take(m: Taken): Promise<boolean> {
    if (this.deferring.has(m.router) || this.queue.depth(m.router) >= this.o.waiting) return this.keepAside(m);
    return new Promise((resolve) => {
      this.queue.push(m.router, null, async () => {
        let ack = false;
        try {
          ack = await this.o.store(m);
        } finally {
          resolve(ack);
        }
      });
    });
  }

  /** Routers with messages kept aside by an earlier run: stored in their turns. */
  resume(routers: string[]): void {
    for (const r of routers) {
      this.deferring.add(r);
      this.drain(r);
    }
  }

  /** Messages of `router` read and waiting in memory. */
  depth(router: string): number {
    return this.queue.depth(router);
  }

  stop(): void {
    this.stopped = true;
  }

  private async keepAside(m: Taken): Promise<boolean> {
    const r = m.router;
    this.deferring.add(r);
    this.writing.set(r, (this.writing.get(r) ?? 0) + 1);
    try {
      return await this.aside.submit(m);
    } finally {
      const left = this.writing.get(r)! - 1;
      if (left === 0) this.writing.delete(r);
      else this.writing.set(r, left);
      this.drain(r);
    }
  }

  /** One turn of `router`'s messages kept aside (one task waiting per router: the key). */
  private drain(router: string): void {
    if (this.stopped) return;
    this.queue.push(router, 'aside', async () => {
      let rows: Array<DeferredMessage & { id: string }>;
      try {
        rows = await this.o.next(router, ASIDE_PER_TURN);
        for (const row of rows) {
          if (!(await this.o.store({ ...row, alive: () => !this.stopped }))) return;
          await this.o.drop(row.id);
        }
      } catch (err) {
        this.o.onError(router, err);
        setTimeout(() => this.drain(router), 1000).unref();
        return;
      }
      if (rows.length > 0) this.drain(router);
      // Caught up: its next messages go to its queue again (a write still in flight drains when it is done).
      else if (!this.writing.has(router)) this.deferring.delete(router);
    });
  }
}
