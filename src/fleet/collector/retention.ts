/**
 * Retention of the ledger (docs/fleet.md, "Retention"): the per-message rows of `messages` are kept for a window
 * (`--retention-days`, default 35) and then deleted; what they proved stays. Their sums are already in the roll-ups,
 * written in the transaction that stored each message (usage_hours, revenue_days, the sessions' rows, payments), and
 * their numbers are in the router's spans (spans.ts), which keep exactly once and the gaps after the rows are gone.
 *
 * A pass: each router's new rows into its spans (a chunk per transaction under its row lock), then its rows at or below
 * its spans_to received before the window, deleted a chunk per statement in the order of their numbers with no lock
 * of the router's row (a message replayed meanwhile is decided by the spans, which already hold it). Several
 * collectors may run passes at once: the second finds the work done.
 */
import type { Log } from '../../log.ts';
import type { Db } from '../db/index.ts';
import { compactRouter, type CompactOptions } from './spans.ts';
import { pruneRejectDigests } from './store.ts';

export const DEFAULT_RETENTION_DAYS = 35;

export interface RetentionOptions extends CompactOptions {
  /** Rows received longer ago than this are pruned; null: kept for good. */
  retentionMs: number | null;
  /** Rows per delete (default 5,000). */
  pruneChunk?: number;
  /** Asked between routers: true ends the pass there (the collector stops). */
  stopped?: () => boolean;
}

export interface PassResult {
  routers: number;
  /** Rows taken into spans. */
  spanned: number;
  /** Rows deleted. */
  pruned: number;
}

/**
 * The next `limit` rows after `after` up to spans_to, deleting those received before the window; `last_old`: the
 * last row read is itself before the window (the rows are read in the order of their numbers, which is about the order
 * they came: a chunk that ends inside the window ends the pass).
 */
const PRUNE_CHUNK = `
WITH c AS (
  SELECT seq, received_at FROM messages
  WHERE router_id = $1 AND seq > $2::bigint AND seq <= $3::bigint ORDER BY seq LIMIT $4
), d AS (
  DELETE FROM messages m USING c
  WHERE m.router_id = $1 AND m.seq = c.seq AND c.received_at < now() - $5::float8 * interval '1 millisecond'
  RETURNING m.seq
)
SELECT (SELECT count(*) FROM c)::int AS read, (SELECT max(seq) FROM c)::text AS last,
  (SELECT count(*) FROM d)::int AS deleted, (SELECT max(seq) FROM d)::text AS deleted_to,
  coalesce((SELECT received_at < now() - $5::float8 * interval '1 millisecond' FROM c ORDER BY seq DESC LIMIT 1),
    false) AS last_old`;

/** Deletes the router's rows of `messages` that its spans hold and that were received before the window. */
export async function pruneRouter(db: Db, routerId: number, retentionMs: number, chunk = 5000): Promise<number> {
  const [r] = await db.query<{ spans_to: string }>('SELECT spans_to::text AS spans_to FROM routers WHERE id = $1', [
    routerId,
  ]);
  const spansTo = r?.spans_to ?? '0';
  let after = '0';
  let total = 0;
  for (;;) {
    const [c] = await db.query<{
      read: number;
      last: string | null;
      deleted: number;
      deleted_to: string | null;
      last_old: boolean;
    }>(PRUNE_CHUNK, [routerId, after, spansTo, chunk, retentionMs]);
    if (c === undefined || Number(c.read) === 0) return total;
    if (Number(c.deleted) > 0) {
      total += Number(c.deleted);
      await db.query(
        'UPDATE routers SET pruned_to = greatest(pruned_to, $2::bigint), pruned_rows = pruned_rows + $3 WHERE id = $1',
        [routerId, c.deleted_to, c.deleted],
      );
    }
    if (Number(c.read) < chunk || !c.last_old) return total;
    after = c.last!;
  }
}

/** One pass over every router: spans, then (with a retention) the pruning. */
export async function retentionPass(db: Db, o: RetentionOptions): Promise<PassResult> {
  const routers = await db.query<{ id: number }>('SELECT id FROM routers ORDER BY id');
  const result: PassResult = { routers: routers.length, spanned: 0, pruned: 0 };
  for (const { id } of routers) {
    if (o.stopped?.() === true) break;
    result.spanned += await compactRouter(db, Number(id), o);
    if (o.retentionMs !== null) result.pruned += await pruneRouter(db, Number(id), o.retentionMs, o.pruneChunk);
  }
  await pruneRejectDigests(db);
  return result;
}

/** Runs the ledger's retention pass every everyMs, one at a time; a failed pass is logged and run again. */
export function keepLedgerShort(
  db: Db,
  log: Log,
  o: { everyMs: number; retentionMs: number | null },
  stopped: () => boolean,
): { stop(): Promise<void> } {
  const every = o.everyMs;
  if (every <= 0) return { stop: async () => undefined };
  const retentionMs = o.retentionMs;
  let running: Promise<void> | null = null;
  let failing = false;
  const pass = async () => {
    try {
      const r = await retentionPass(db, { retentionMs, stopped });
      if (r.pruned > 0) log.info('fleet: ledger pruned', { rows: r.pruned, routers: r.routers });
      failing = false;
    } catch (err) {
      if (!failing) log.warn('fleet: ledger retention pass failed', { error: (err as Error).message });
      failing = true;
    }
  };
  const timer = setInterval(() => {
    if (running !== null || stopped()) return;
    running = pass().finally(() => (running = null));
  }, every);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
