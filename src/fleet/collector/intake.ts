/**
 * Session messages and statuses, fair between routers (docs/fleet.md, "One router cannot slow the others"): the
 * collector reads them ahead of what it has stored (held-acks.ts), each onto its router's queue, and stores them in
 * batches, each one transaction (session-batch.ts): a batch takes the routers in turn, one message of each waiting
 * router a round, at most `perTurn` of one router, so a flood fills only what the others leave of a batch and never
 * makes another router's message wait for more than the batch being written. A router is in one batch at a time (its
 * messages keep their order). What a router sends beyond `waiting` messages not yet stored is kept aside in the
 * database (deferred.ts, many in one statement) and acknowledged; from then on its messages go there in the order
 * they come until it has caught up, and they are read back into its queue, a turn at a time. So a flood costs the
 * broker's stream only one short insert per message, never a place in the queue ahead of another router's payment,
 * and nothing is dropped: a message kept aside is on the database's disk before its PUBACK.
 */
import type { DeferredMessage } from './deferred.ts';
import { GroupCommit } from './group-commit.ts';

/** A message read ahead: alive while its connection is the one it came on (else it is not acknowledged). */
export interface Taken extends DeferredMessage {
  alive: () => boolean;
  /** Its row in deferred_messages, when it was kept aside (deleted once it is stored). */
  asideId?: string;
}

export interface IntakeOptions {
  /** Batches written at once, each one transaction (a share of the database pool). */
  concurrency: number;
  /** Messages in one batch, all routers together. */
  maxBatch: number;
  /** Messages of one router in one batch (also how many kept aside are read back at once). */
  perTurn: number;
  /** Messages of one router read and not yet stored, beyond which its messages are kept aside. */
  waiting: number;
  /**
   * Stores messages of several routers (each router's in the order given), or refuses and counts them; true each:
   * acknowledge it (one kept aside: its row is gone). false: not stored (its connection closed, stopping).
   */
  store: (ms: Taken[]) => Promise<boolean[]>;
  /** Keeps messages aside, all in one transaction; true each: on disk, acknowledge it. */
  putAside: (ms: Taken[]) => Promise<boolean[]>;
  /** A router's oldest messages kept aside, with their ids. */
  next: (router: string, limit: number) => Promise<Array<DeferredMessage & { id: string }>>;
  onError: (router: string, err: unknown) => void;
}

interface Waiting {
  m: Taken;
  done: (ack: boolean) => void;
}

export class Intake {
  /** Each router's messages not yet in a batch, in order. */
  private readonly queues = new Map<string, Waiting[]>();
  /** Routers with messages queued and none in a batch, in turn. */
  private ready: string[] = [];
  /** Routers in a batch being written, or being read back from the aside table. */
  private readonly busy = new Set<string>();
  private readonly aside: GroupCommit<Taken, boolean>;
  /** Routers with messages kept aside: their next messages go there too, in order. */
  private readonly deferring = new Set<string>();
  /** Routers' writes to the aside table in flight. */
  private readonly writing = new Map<string, number>();
  /** Routers whose aside table changed while it was being read: read again. */
  private readonly readAgain = new Set<string>();
  private inFlight = 0;
  private stopped = false;

  constructor(private readonly o: IntakeOptions) {
    this.aside = new GroupCommit((ms) => o.putAside(ms), { maxInFlight: 1, maxBatch: 512 });
  }

  /** Takes a message read ahead; resolves true once it may be acknowledged (stored, kept aside, or refused). */
  take(m: Taken): Promise<boolean> {
    if (this.deferring.has(m.router) || this.depth(m.router) >= this.o.waiting) return this.keepAside(m);
    return new Promise((done) => this.enqueue(m.router, [{ m, done }]));
  }

  /** Routers with messages kept aside by an earlier run: stored in their turns. */
  resume(routers: string[]): void {
    for (const r of routers) {
      this.deferring.add(r);
      this.readBack(r);
    }
  }

  /** Messages of `router` read and waiting in memory. */
  depth(router: string): number {
    return this.queues.get(router)?.length ?? 0;
  }

  stop(): void {
    this.stopped = true;
  }

  private enqueue(router: string, items: Waiting[]): void {
    let q = this.queues.get(router);
    if (q === undefined) {
      q = [];
      this.queues.set(router, q);
    }
    if (q.length === 0 && !this.busy.has(router)) this.ready.push(router);
    q.push(...items);
    this.pump();
  }

  /** Starts batches while there is room: the waiting routers in turn, one message each a round. */
  private pump(): void {
    while (!this.stopped && this.inFlight < this.o.concurrency && this.ready.length > 0) {
      const taken = new Map<string, number>();
      let n = 0;
      for (let more = true; more && n < this.o.maxBatch;) {
        more = false;
        for (const r of this.ready) {
          if (n >= this.o.maxBatch) break;
          const k = taken.get(r) ?? 0;
          if (k >= this.o.perTurn || k >= this.queues.get(r)!.length) continue;
          taken.set(r, k + 1);
          n++;
          more = true;
        }
      }
      // Routers not reached (the batch full first) keep their place at the head of the turn.
      this.ready = this.ready.filter((r) => !taken.has(r));
      const batch: Waiting[] = [];
      for (const [r, k] of taken) {
        this.busy.add(r);
        const q = this.queues.get(r)!;
        batch.push(...q.splice(0, k));
        // Gone when empty: a router's name is what its topic says, so the map holds only routers with messages.
        if (q.length === 0) this.queues.delete(r);
      }
      this.inFlight++;
      void this.write(batch, [...taken.keys()]);
    }
  }

  private async write(batch: Waiting[], routers: string[]): Promise<void> {
    let acks: boolean[] = [];
    try {
      acks = await this.o.store(batch.map((w) => w.m));
    } catch (err) {
      this.o.onError(routers[0] ?? '', err);
    }
    batch.forEach((w, i) => w.done(acks[i] ?? false));
    this.inFlight--;
    for (const r of routers) {
      this.busy.delete(r);
      if (this.depth(r) > 0) this.ready.push(r);
      else this.readBack(r);
    }
    this.pump();
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
      this.readBack(r);
    }
  }

  /**
   * Reads a turn of `router`'s messages kept aside into its queue, once what it has in memory is in the database
   * (they came before); with none left and no write of it in flight, its next messages go to its queue again.
   */
  private readBack(router: string): void {
    if (this.stopped || !this.deferring.has(router) || this.depth(router) > 0) return;
    if (this.busy.has(router)) {
      this.readAgain.add(router);
      return;
    }
    this.busy.add(router);
    this.readAgain.delete(router);
    void this.o.next(router, this.o.perTurn).then(
      (rows) => {
        this.busy.delete(router);
        if (rows.length > 0) {
          const items = rows.map(({ id, ...row }) => ({
            m: { ...row, asideId: id, alive: () => !this.stopped },
            done: () => undefined,
          }));
          this.enqueue(router, items);
        } else if (this.readAgain.has(router)) this.readBack(router);
        // Caught up, unless a write of it is in flight (its end reads again).
        else if (!this.writing.has(router)) this.deferring.delete(router);
      },
      (err: unknown) => {
        this.busy.delete(router);
        this.o.onError(router, err);
        setTimeout(() => this.readBack(router), 1000).unref();
      },
    );
  }
}
