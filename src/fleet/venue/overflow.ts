/**
 * What a router sent beyond its share of the venue service's queue (fair-queue.ts): refused, and counted in the
 * collector's `rejects` (the `fleet_rejects` view) under the message's topic, as the collector counts what it refuses.
 * Counted in memory and written once a second in one statement for all routers, so a flood of 20,000 claims costs one
 * write, not 20,000 on the connections the other routers' claims need. A write that fails keeps its counts for the
 * next one.
 */
import type { Sql } from '../db/index.ts';

/** The reasons, as `fleet_rejects` shows them. */
export const OVER_CLAIMS = (claims: number): string => `over ${claims} venue claims waiting`;
export const OVER_MESSAGES = (messages: number): string => `over ${messages} messages waiting at the venue service`;

/** Topics and reasons counted at once (routers publish only under their own name: a handful per router). */
const MAX_KEYS = 10_000;

export class Overflow {
  private counts = new Map<string, { topic: string; reason: string; router: string; n: number }>();

  /** One more message of `router` on `topic` refused for `reason`. */
  add(router: string, topic: string, reason: string, n = 1): void {
    const key = `${topic}\n${reason}`;
    const c = this.counts.get(key);
    if (c !== undefined) c.n += n;
    else if (this.counts.size < MAX_KEYS) this.counts.set(key, { topic, reason, router, n });
  }

  /** Adds what was counted since the last write to `rejects`; on failure the counts wait for the next. */
  async flush(db: Sql): Promise<void> {
    if (this.counts.size === 0) return;
    const taken = [...this.counts.values()];
    this.counts = new Map();
    try {
      await db.query(
        `INSERT INTO rejects AS j (topic, reason, router, count, first_at, last_at, sample)
         SELECT t, r, o, n, now(), now(), 'refused by the venue service' FROM unnest($1::text[], $2::text[],
           $3::text[], $4::bigint[]) AS x(t, r, o, n)
         ON CONFLICT (topic, reason) DO UPDATE SET count = j.count + EXCLUDED.count, last_at = now()`,
        [taken.map((c) => c.topic), taken.map((c) => c.reason), taken.map((c) => c.router), taken.map((c) => c.n)],
      );
    } catch (err) {
      for (const c of taken) this.add(c.router, c.topic, c.reason, c.n);
      throw err;
    }
  }
}
