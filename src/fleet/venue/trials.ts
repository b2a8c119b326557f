/**
 * The venue's free trials (docs/roaming.md, "Free trials"): a trial is the venue's, not each router's, so the lease
 * service remembers when each device had each trial plan anywhere in the venue, from the routers' `started` messages
 * of method `trial`, dated by their arrival here (a router's own clock does not decide it). A claim's answer carries
 * them; the router refuses a trial its plan's `trial_every` has not passed since.
 */
import type { Sql } from '../db/index.ts';

/** A trial is remembered this long (a `trial_every` longer than this is, across the venue's routers, this long). */
export const TRIAL_MEMORY_DAYS = 400;
/** At most this many plans' trials in one answer (a venue has one or two trial plans). */
const ANSWER_PLANS = 8;

export async function recordTrial(
  db: Sql,
  t: { venue: string; mac: string; plan: string; router: string; at: number },
) {
  await db.query(
    `INSERT INTO venue_trials AS t (venue, mac, plan, router, at) VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0))
     ON CONFLICT (venue, mac, plan) DO UPDATE SET at = EXCLUDED.at, router = EXCLUDED.router WHERE t.at < EXCLUDED.at`,
    [t.venue, t.mac, t.plan.slice(0, 64), t.router, t.at],
  );
}

/** Plan → when (ms) `mac` last had its trial in `venue`, within TRIAL_MEMORY_DAYS. */
export async function trialsOf(db: Sql, venue: string, mac: string): Promise<Record<string, number>> {
  const rows = await db.query<{ plan: string; at_ms: string }>(
    `SELECT plan, (extract(epoch FROM at) * 1000)::bigint::text AS at_ms FROM venue_trials
     WHERE venue = $1 AND mac = $2 AND at > now() - $3::int * interval '1 day' ORDER BY at DESC LIMIT $4`,
    [venue, mac, TRIAL_MEMORY_DAYS, ANSWER_PLANS],
  );
  return Object.fromEntries(rows.map((r) => [r.plan, Number(r.at_ms)]));
}

/** Forgets trials older than TRIAL_MEMORY_DAYS. */
export async function pruneTrials(db: Sql): Promise<void> {
  await db.query(`DELETE FROM venue_trials WHERE at < now() - $1::int * interval '1 day'`, [TRIAL_MEMORY_DAYS]);
}
