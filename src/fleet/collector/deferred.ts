/**
 * The table of messages kept aside (deferred_messages: a router's messages beyond its share of the queue, intake.ts),
 * read back in the order they came, one router at a time.
 */
import type { Sql } from '../db/index.ts';

export interface DeferredMessage {
  router: string;
  topic: string;
  payload: Buffer;
  retained: boolean;
  /** When the collector received it (ms): what its checks read as "now". */
  receivedAt: number;
}

/** Keeps `messages` aside, all in one statement. */
export async function deferMessages(db: Sql, messages: DeferredMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await db.query(
    `INSERT INTO deferred_messages (router, topic, payload, retained, received_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::boolean[], $5::bigint[])`,
    [
      messages.map((m) => m.router),
      messages.map((m) => m.topic),
      messages.map((m) => m.payload),
      messages.map((m) => m.retained),
      messages.map((m) => m.receivedAt),
    ],
  );
}

/** `router`'s oldest messages kept aside, at most `limit`, with their ids. */
export async function deferredOf(
  db: Sql,
  router: string,
  limit: number,
): Promise<Array<DeferredMessage & { id: string }>> {
  const rows = await db.query<{
    id: string;
    topic: string;
    payload: Buffer;
    retained: boolean;
    received_at: string;
  }>(
    `SELECT id::text, topic, payload, retained, received_at::text FROM deferred_messages
     WHERE router = $1 ORDER BY id LIMIT $2`,
    [router, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    router,
    topic: r.topic,
    payload: r.payload,
    retained: r.retained,
    receivedAt: Number(r.received_at),
  }));
}

/** Forgets a message kept aside, once it is stored (or refused and counted). */
export async function dropDeferred(db: Sql, id: string): Promise<void> {
  await db.query('DELETE FROM deferred_messages WHERE id = $1', [id]);
}

/** The routers with messages kept aside (a collector's start picks them up). */
export async function routersDeferred(db: Sql): Promise<string[]> {
  const rows = await db.query<{ router: string }>('SELECT DISTINCT router FROM deferred_messages');
  return rows.map((r) => r.router);
}
