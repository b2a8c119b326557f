/**
 * How the collector writes what it receives (collector.ts connects, this stores): usage reports many to a transaction
 * (usage-batch.ts), session messages and statuses read ahead in fair batches (intake.ts, session-batch.ts), anything
 * else one at a time; and how it refuses: a message it cannot store for a reason of its own is counted in `rejects`
 * and acknowledged, never retried forever (only a database away holds it: write-loop.ts).
 */
import { errorName } from '../db/index.ts';
import type { Db } from '../db/index.ts';
import type { Log } from '../../log.ts';
import type { CollectorStats } from './options.ts';
import { deferMessages, dropDeferred } from './deferred.ts';
import { GroupCommit } from './group-commit.ts';
import type { Taken } from './intake.ts';
import { isReject, parseMessage, type Inbound, type Reject } from './parse.ts';
import { storeMessage, storeReject, type RouterIds } from './store.ts';
import { OVER_NEW_SESSIONS } from './bounds.ts';
import { digestOf, sampleOf } from './reject-sample.ts';
import { storeSessionBatch, type SessionItem } from './session-batch.ts';
import { storeUsageBatch, type UsageMessage } from './usage-batch.ts';
import { GIVE_UP, type UntilWritten } from './write-loop.ts';

/** A message as the broker delivered it; alive: its connection is still the one it came on (and not stopping). */
export interface Delivery {
  topic: string;
  payload: Buffer;
  retained: boolean;
  alive: () => boolean;
}

export interface WriterContext {
  db: Db;
  log: Log;
  ids: RouterIds;
  stats: CollectorStats;
  prefix: string;
  /** Usage transactions in flight at once. */
  writers: number;
  now: () => number;
  once: (key: string, line: () => void) => void;
  untilWritten: UntilWritten;
  stopped: () => boolean;
}

export interface Writer {
  /** Writes one delivery (usage reports through the group commit); false: give up (connection closed, stopping). */
  handle: (m: Delivery, at?: number) => Promise<boolean>;
  /** Session messages and statuses read ahead, in one batch (intake.ts `store`). */
  storeTaken: (batch: Taken[]) => Promise<boolean[]>;
  /** Keeps messages aside (intake.ts `putAside`). */
  putAside: (batch: Taken[]) => Promise<boolean[]>;
}

/** Writes and refuses what the collector receives (one per collector: its counters, its once-logged lines). */
export class MessageWriter implements Writer {
  private readonly usage: GroupCommit<Delivery & { parsed: UsageMessage }, boolean>;

  constructor(private readonly c: WriterContext) {
    this.usage = new GroupCommit((items) => this.storeUsage(items), {
      maxInFlight: Math.max(1, c.writers),
      maxBatch: 256,
    });
  }
  /**
   * Counts a refused message in `rejects` (once for every copy of it: store.ts storeReject), waiting for a database
   * away as any write does; false: not counted because its connection closed (the broker brings it again). The
   * collector's own counters move once the count is written (what they say is in the table).
   */
  private async countRefused(m: Delivery, reason: string, router: string | null, seq: number | null) {
    const { db, log, stats, once, untilWritten } = this.c;
    const counted = () => {
      stats.rejected++;
      stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
      return true;
    };
    try {
      const out = await untilWritten(
        () => storeReject(db, m.topic, reason, router, seq, sampleOf(m.payload), digestOf(m.topic, m.payload)),
        m.alive,
      );
      return out !== GIVE_UP && counted();
    } catch (err) {
      counted();
      // The count itself refused (it never should be): the message is still let go, and the log says so.
      once(`reject count ${errorName(err)}`, () =>
        log.error('fleet: a refused message could not be counted', { error: (err as Error).message }),
      );
      return true;
    }
  }

  /** A message that could not be stored for a reason of its own (db/errors.ts): counted, acknowledged, let go. */
  private async refusedByDb(m: Delivery, router: string | null, seq: number | null, err: unknown) {
    const { log, once } = this.c;
    const name = errorName(err);
    const reason =
      typeof (err as { code?: unknown }).code === 'string' ? `database refused (${name})` : `not stored (${name})`;
    once(`db ${m.topic} ${name}`, () =>
      log.warn('fleet: message could not be stored: refused', {
        topic: m.topic,
        reason,
        error: (err as Error).message,
      }),
    );
    return this.countRefused(m, reason, router, seq);
  }

  /** A usage report whose new sessions would pass its router's bound for the day: refused, counted, let go. */
  private overSessions(m: Delivery, router: string, seq: number | null): Promise<boolean> {
    const { log, once } = this.c;
    once(`reject ${router} ${OVER_NEW_SESSIONS}`, () =>
      log.warn('fleet: message refused', { topic: m.topic, reason: OVER_NEW_SESSIONS, seq }),
    );
    return this.countRefused(m, OVER_NEW_SESSIONS, router, seq);
  }

  /** A session event of a newer router's kind: stored as its seq only, said once per kind. */
  private noteUnknownEvent(parsed: Inbound): void {
    const { log, once } = this.c;
    if (parsed.kind === 'session' && parsed.session === null && !parsed.escrow) {
      once(`event ${parsed.event}`, () =>
        log.warn('fleet: session event of a kind this collector does not know: only its seq is stored', {
          router: parsed.router,
          event: parsed.event,
        }),
      );
    }
  }

  /** Writes one message in its own transaction; false: not written (connection closed or stopping). */
  private async storeOne(m: Delivery, parsed: Inbound | Reject): Promise<boolean> {
    const { db, log, ids, stats, once, untilWritten } = this.c;
    if (isReject(parsed)) {
      once(`reject ${parsed.router} ${parsed.reject}`, () =>
        log.warn('fleet: message refused', { topic: m.topic, reason: parsed.reject, seq: parsed.seq }),
      );
      const counted = await this.countRefused(m, parsed.reject, parsed.router, parsed.seq);
      if (!counted) stats.dropped++;
      return counted;
    }
    this.noteUnknownEvent(parsed);
    try {
      const out = await untilWritten(() => storeMessage(db, ids, parsed, { retained: m.retained }), m.alive);
      if (out === GIVE_UP) {
        stats.dropped++;
        return false;
      }
      if (out === 'over') return this.overSessions(m, parsed.router, 'seq' in parsed ? parsed.seq : null);
      if (out === 'stored') stats.stored++;
      else stats.duplicates++;
      return true;
    } catch (err) {
      return this.refusedStoring(m, parsed, err);
    }
  }

  /** A checked message whose own write failed for a reason of its own: refused, counted, let go. */
  private refusedStoring(m: Delivery, parsed: Inbound, err: unknown): Promise<boolean> {
    if (!m.alive()) return Promise.resolve(false);
    const seq = 'seq' in parsed ? parsed.seq : null;
    return this.refusedByDb(m, parsed.router, parsed.kind === 'status' ? null : seq, err);
  }

  /**
   * Writes usage reports that arrived together in one transaction (usage-batch.ts), retried as a whole while the
   * database is away; a batch the database refuses for its values is written again one message at a time, so only
   * the bad one is refused. true: committed, acknowledge it.
   */
  private async storeUsage(batch: Array<Delivery & { parsed: UsageMessage }>): Promise<boolean[]> {
    const { db, log, ids, stats, once, untilWritten } = this.c;
    const done = new Map<Delivery, boolean>();
    try {
      const out = await untilWritten(
        async () => {
          const live = batch.filter((m) => m.alive());
          const outcomes = await storeUsageBatch(
            db,
            ids,
            live.map((m) => m.parsed),
          );
          return { live, outcomes };
        },
        () => batch.some((m) => m.alive()),
      );
      if (out !== GIVE_UP)
        for (const [i, m] of out.live.entries()) {
          if (out.outcomes[i] === 'over') done.set(m, await this.overSessions(m, m.parsed.router, m.parsed.seq));
          else {
            if (out.outcomes[i] === 'stored') stats.stored++;
            else stats.duplicates++;
            done.set(m, true);
          }
        }
    } catch (err) {
      once('batch refused', () =>
        log.warn('fleet: a batch refused by the database: its messages stored one by one', {
          code: String((err as { code?: unknown }).code),
        }),
      );
      for (const m of batch) done.set(m, await this.storeOne(m, m.parsed));
    }
    return batch.map((m) => {
      if (!done.has(m)) stats.dropped++;
      return done.get(m) ?? false;
    });
  }

  /** A delivery received and checked (parse.ts), or refused. */
  private parseDelivery(m: Delivery, at: number): Inbound | Reject {
    const { stats, prefix } = this.c;
    stats.received++;
    try {
      return parseMessage(prefix, m.topic, m.payload, at);
    } catch (err) {
      // parse.ts refuses what it checks; a throw is sluice's own failure on this input: the message is refused.
      return { reject: `unreadable (${errorName(err)})`, router: null, seq: null };
    }
  }

  /** Writes one delivery (usage reports through the group commit); false: give up (connection closed, stopping). */
  handle(m: Delivery, at = this.c.now()): Promise<boolean> {
    const parsed = this.parseDelivery(m, at);
    if (!isReject(parsed) && parsed.kind === 'usage') return this.usage.submit({ ...m, parsed });
    return this.storeOne(m, parsed);
  }

  /**
   * Stores one message read ahead on its own (or refuses it: `failed`, what its write alone already threw); one kept
   * aside then leaves the aside table.
   */
  private async storeTakenOne(m: Taken, parsed: Inbound | Reject, failed?: { err: unknown }): Promise<boolean> {
    const { db, untilWritten } = this.c;
    const ack =
      failed && !isReject(parsed) ? await this.refusedStoring(m, parsed, failed.err) : await this.storeOne(m, parsed);
    if (ack && m.asideId !== undefined) {
      const id = m.asideId;
      await untilWritten(
        () => dropDeferred(db, id),
        () => !this.c.stopped(),
      );
    }
    return ack;
  }

  /**
   * Session messages and statuses of several routers, read ahead (intake.ts), in one transaction (session-batch.ts),
   * retried as a whole while the database is away; a batch the database refuses (or sluice's own code throws on) is
   * written again one message at a time, so only the bad one is refused, counted and acknowledged (a batch of one
   * is refused at once, as a message alone is: write-loop.ts). A message refused at parse is counted on its own.
   */
  async storeTaken(batch: Taken[]): Promise<boolean[]> {
    const { db, log, ids, stats, once, untilWritten } = this.c;
    const done = new Map<Taken, boolean>();
    const items: Array<{ m: Taken } & SessionItem> = [];
    const apart: Array<[Taken, Inbound | Reject]> = [];
    for (const m of batch) {
      const parsed = this.parseDelivery(m, m.receivedAt);
      if (isReject(parsed) || parsed.kind === 'usage') apart.push([m, parsed]);
      else items.push({ m, parsed, retained: m.retained, ...(m.asideId !== undefined && { asideId: m.asideId }) });
    }
    // Counted beside the batch, not ahead of it: a router's garbage does not hold the others' payments.
    const counting = (async () => {
      for (const [m, parsed] of apart) done.set(m, await this.storeTakenOne(m, parsed));
    })();
    try {
      const out = await untilWritten(
        async () => {
          const live = items.filter((item) => item.m.alive());
          return { live, outcomes: await storeSessionBatch(db, ids, live) };
        },
        () => items.some((item) => item.m.alive()),
      );
      if (out !== GIVE_UP)
        for (const [i, item] of out.live.entries()) {
          this.noteUnknownEvent(item.parsed);
          if (out.outcomes[i] === 'stored') stats.stored++;
          else stats.duplicates++;
          done.set(item.m, true);
        }
    } catch (err) {
      once(`session batch refused ${errorName(err)}`, () =>
        log.warn('fleet: a batch of session messages could not be stored: its messages stored one by one', {
          error: (err as Error).message,
        }),
      );
      // A batch of one was that message's own write: refused now, not tried a third time.
      const alone = items.length === 1 ? { err } : undefined;
      for (const item of items) done.set(item.m, await this.storeTakenOne(item.m, item.parsed, alone));
    }
    await counting;
    return batch.map((m) => {
      if (!done.has(m)) stats.dropped++;
      return done.get(m) ?? false;
    });
  }

  /** Keeps `batch` aside in one statement; a batch the database refuses goes its own way, message by message. */
  async putAside(batch: Taken[]): Promise<boolean[]> {
    const { db, stats, untilWritten } = this.c;
    try {
      const out = await untilWritten(
        async () => {
          const live = batch.filter((m) => m.alive());
          await deferMessages(db, live);
          return new Set(live);
        },
        () => batch.some((m) => m.alive()),
      );
      if (out === GIVE_UP) return batch.map(() => false);
      stats.deferred += out.size;
      return batch.map((m) => out.has(m));
    } catch {
      return Promise.all(batch.map((m) => this.handle(m, m.receivedAt)));
    }
  }
}
