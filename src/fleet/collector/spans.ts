/**
 * The ledger in spans (docs/fleet.md, "Retention"): a router's stored sequence numbers as runs of consecutive numbers,
 * kept in message_spans for good, so exactly once and the gaps hold after the per-message rows are pruned.
 *
 * Every stored number up to the router's `spans_to` is in a span; above it, a number is a row of `messages` only.
 * Both are changed only under the router's row lock, which every message of the router takes first (store.ts,
 * usage-batch.ts): a message locked after a compaction reads the new `spans_to` from the locked row itself, and one
 * numbered at or below it is decided here, in statements that begin after the lock (they see every span committed).
 */
import type { Db, Sql } from '../db/index.ts';

/** A run of consecutive stored numbers; times as PostgreSQL's text of a timestamptz (exact both ways). */
export interface Span {
  first: bigint;
  last: bigint;
  firstAt: string;
  lastAt: string;
  /** prev_session_seq of its first message: what the hole before it held. */
  firstPrev: string | null;
}

/** Locks the router's row (as every message of it does first) and reads how far its spans reach. */
export async function lockRouter(tx: Sql, routerId: number): Promise<bigint> {
  const [row] = await tx.query<{ spans_to: string }>(
    'SELECT spans_to::text AS spans_to FROM routers WHERE id = $1 FOR UPDATE',
    [routerId],
  );
  return BigInt(row?.spans_to ?? '0');
}

/** Whether a span of the router holds seq (the span starting last at or before it reaches it). */
export async function inSpan(tx: Sql, routerId: number, seq: number | bigint): Promise<boolean> {
  const [row] = await tx.query<{ held: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM message_spans WHERE router_id = $1 AND last_seq >= $2::bigint AND first_seq = (
       SELECT max(first_seq) FROM message_spans WHERE router_id = $1 AND first_seq <= $2::bigint)) AS held`,
    [routerId, String(seq)],
  );
  return row?.held === true;
}

/** Spans that touch or overlap one another made one. Pure. */
export function mergeRuns(runs: readonly Span[]): Span[] {
  const sorted = [...runs].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: Span[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.first <= prev.last + 1n) {
      if (r.last > prev.last) out[out.length - 1] = { ...prev, last: r.last, lastAt: r.lastAt };
    } else out.push({ ...r });
  }
  return out;
}

/**
 * Adds runs to the router's spans, joined with the spans they touch (under the router's lock: the caller's
 * transaction holds it). The spans that may touch them are taken out and written back merged.
 */
export async function addSpans(tx: Sql, routerId: number, runs: readonly Span[]): Promise<void> {
  if (runs.length === 0) return;
  let lo = runs[0]!.first;
  let hi = runs[0]!.last;
  for (const r of runs) {
    if (r.first < lo) lo = r.first;
    if (r.last > hi) hi = r.last;
  }
  const old = await tx.query<{ first: string; last: string; first_at: string; last_at: string; prev: string | null }>(
    `DELETE FROM message_spans WHERE router_id = $1 AND first_seq <= $3::bigint AND last_seq >= $2::bigint - 1
       AND first_seq >= coalesce(
         (SELECT max(first_seq) FROM message_spans WHERE router_id = $1 AND first_seq < $2::bigint), $2::bigint)
     RETURNING first_seq::text AS first, last_seq::text AS last, first_at::text AS first_at,
       last_at::text AS last_at, first_prev_session_seq::text AS prev`,
    [routerId, lo.toString(), (hi + 1n).toString()],
  );
  const merged = mergeRuns([
    ...runs,
    ...old.map((o) => ({
      first: BigInt(o.first),
      last: BigInt(o.last),
      firstAt: o.first_at,
      lastAt: o.last_at,
      firstPrev: o.prev,
    })),
  ]);
  await tx.query(
    `INSERT INTO message_spans (router_id, first_seq, last_seq, first_at, last_at, first_prev_session_seq)
     SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::bigint[])`,
    [
      routerId,
      merged.map((m) => m.first.toString()),
      merged.map((m) => m.last.toString()),
      merged.map((m) => m.firstAt),
      merged.map((m) => m.lastAt),
      merged.map((m) => m.firstPrev),
    ],
  );
}

/**
 * The next rows above the router's spans_to (at most `limit`), read as runs, stopping before the first row received
 * less than settleMs ago (a report committed out of order by another collector would otherwise come in below the
 * new spans_to: correct, but by the slower path).
 */
const CHUNK_RUNS = `
WITH c AS (
  SELECT seq, at, prev_session_seq, received_at FROM messages WHERE router_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
), stop AS (
  SELECT min(seq) AS s FROM c WHERE received_at > now() - $4::float8 * interval '1 millisecond'
), k AS (
  SELECT *, seq - row_number() OVER (ORDER BY seq) AS grp FROM c WHERE seq < coalesce((SELECT s FROM stop), $5)
)
SELECT min(seq)::text AS first, max(seq)::text AS last, (array_agg(at ORDER BY seq))[1]::text AS first_at,
  (array_agg(at ORDER BY seq DESC))[1]::text AS last_at,
  (array_agg(prev_session_seq ORDER BY seq))[1]::text AS prev,
  count(*)::int AS n, (SELECT count(*) FROM c)::int AS read, (SELECT s FROM stop) IS NOT NULL AS stopped
FROM k GROUP BY grp ORDER BY min(seq)`;

export interface CompactOptions {
  /** Rows per transaction (default 5,000): how long the router's messages wait for one. */
  chunk?: number;
  /** Rows received less than this long ago are left for the next pass (default 60 s). */
  settleMs?: number;
}

/**
 * Brings the router's rows above spans_to into its spans, a chunk per transaction (each holding the router's row
 * lock only for its chunk). Returns the rows taken in.
 */
export async function compactRouter(db: Db, routerId: number, o: CompactOptions = {}): Promise<number> {
  const chunk = o.chunk ?? 5000;
  const settleMs = o.settleMs ?? 60_000;
  let total = 0;
  for (;;) {
    const { taken, more } = await db.transaction(async (tx) => {
      const spansTo = await lockRouter(tx, routerId);
      const rows = await tx.query<{
        first: string;
        last: string;
        first_at: string;
        last_at: string;
        prev: string | null;
        n: number;
        read: number;
        stopped: boolean;
      }>(CHUNK_RUNS, [routerId, spansTo.toString(), chunk, settleMs, '9223372036854775807']);
      if (rows.length === 0) return { taken: 0, more: false };
      const runs = rows.map((r) => ({
        first: BigInt(r.first),
        last: BigInt(r.last),
        firstAt: r.first_at,
        lastAt: r.last_at,
        firstPrev: r.prev,
      }));
      await addSpans(tx, routerId, runs);
      await tx.query('UPDATE routers SET spans_to = $2 WHERE id = $1', [
        routerId,
        runs[runs.length - 1]!.last.toString(),
      ]);
      const first = rows[0]!;
      return { taken: rows.reduce((a, r) => a + Number(r.n), 0), more: !first.stopped && Number(first.read) >= chunk };
    });
    total += taken;
    if (!more) return total;
  }
}

/** Makes the stored row numbered seq a span (a message stored at or below spans_to: a hole filled late). */
export async function addRowSpan(tx: Sql, routerId: number, seq: number): Promise<void> {
  const [row] = await tx.query<{ at: string; prev: string | null }>(
    'SELECT at::text AS at, prev_session_seq::text AS prev FROM messages WHERE router_id = $1 AND seq = $2::bigint',
    [routerId, String(seq)],
  );
  if (row === undefined) return;
  const first = BigInt(seq);
  await addSpans(tx, routerId, [{ first, last: first, firstAt: row.at, lastAt: row.at, firstPrev: row.prev }]);
}
