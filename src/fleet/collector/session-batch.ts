/**
 * Session messages and statuses of several routers in one transaction: one commit (one fsync) for the lot instead of
 * one per message, which is what held a busy collector's session messages in its queue (the database's cost per
 * transaction, not per row). Each message has exactly the effects it has alone (store.ts sessionIn, statusIn), in
 * the order given (a router's own messages keep their order); messages kept aside (deferred.ts) that are stored here
 * leave `deferred_messages` in the same commit. The caller acknowledges each only after the commit, and when the
 * database refuses the batch writes its messages again one at a time, so only a bad one is refused.
 *
 * Locks: the batch's routers' rows first, in id order, as a usage batch takes them (usage-batch.ts), so two batches
 * sharing routers wait for each other instead of deadlocking.
 */
import type { Db } from '../db/index.ts';
import type { Inbound } from './parse.ts';
import { sessionIn, statusIn, type RouterIds, type Stored } from './store.ts';

export interface SessionItem {
  parsed: Inbound & { kind: 'session' | 'status' };
  retained: boolean;
  /** Its row in deferred_messages, when it was kept aside: deleted in the same commit. */
  asideId?: string;
}

/** Stores the messages in one transaction; one outcome per message, in order (a status: 'stored'). */
export async function storeSessionBatch(db: Db, ids: RouterIds, batch: readonly SessionItem[]): Promise<Stored[]> {
  const routerIds: number[] = [];
  for (const item of batch) routerIds.push(await ids.of(db, item.parsed.router));
  const locked = [...new Set(routerIds)].sort((a, b) => a - b);
  const aside = batch.flatMap((item) => (item.asideId === undefined ? [] : [item.asideId]));
  return db.transaction(async (tx) => {
    const rows = await tx.query<{ id: number; spans_to: string }>(
      'SELECT id, spans_to::text AS spans_to FROM routers WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE',
      [locked],
    );
    const spansTo = new Map(rows.map((r) => [Number(r.id), BigInt(r.spans_to)]));
    const out: Stored[] = [];
    for (const [i, { parsed, retained }] of batch.entries()) {
      const routerId = routerIds[i]!;
      if (parsed.kind === 'session') out.push(await sessionIn(tx, routerId, parsed, spansTo.get(routerId) ?? 0n));
      else {
        await statusIn(tx, routerId, parsed, retained);
        out.push('stored');
      }
    }
    if (aside.length > 0) await tx.query('DELETE FROM deferred_messages WHERE id = ANY($1::bigint[])', [aside]);
    return out;
  });
}
