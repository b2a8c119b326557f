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

/** Forgets trials older than TRIAL_MEMORY_DAYS, and holds past their end. */
export async function pruneTrials(db: Sql): Promise<void> {
  await db.query(`DELETE FROM venue_trials WHERE at < now() - $1::int * interval '1 day'`, [TRIAL_MEMORY_DAYS]);
  await db.query(`DELETE FROM venue_trial_holds WHERE until < now()`);
}

/** How long a trial claimed is held for its router (default): the sale is made within it, or the hold lapses. */
export const TRIAL_HOLD_MS = 30_000;

/** The answer to a claim's trial: held for the claimer, or refused while another router's hold lasts (`until`, ms). */
export type TrialHold = { plan: string; reserved: true } | { plan: string; reserved: false; until?: number };

/**
 * A router's claim of `mac`'s trial of `plan`, before it sells it (its claim's `trial`): the first claim wins, in one
 * statement (two routers asking in the same second: the second's insert waits for the first's commit, then finds its
 * hold and changes nothing). Held for `holdMs`, again by the same router's claim; refused while another router's hold
 * lasts (a router that crashed before its sale holds it no longer than that), or when the device had the trial in the
 * venue within `everyMs` (the router's `trial_every`).
 */
export async function reserveTrial(
  db: Sql,
  t: { venue: string; mac: string; plan: string; router: string; everyMs: number; holdMs: number },
): Promise<TrialHold> {
  const plan = t.plan.slice(0, 64);
  const every = Math.min(Math.max(0, Math.floor(t.everyMs)), TRIAL_MEMORY_DAYS * 86_400_000);
  const held = await db.query(
    `INSERT INTO venue_trial_holds AS h (venue, mac, plan, router, at, until)
     SELECT $1, $2, $3, $4, now(), now() + $5::int * interval '1 millisecond'
     WHERE NOT EXISTS (SELECT 1 FROM venue_trials WHERE venue = $1 AND mac = $2 AND plan = $3
                       AND at > now() - $6::bigint * interval '1 millisecond')
     ON CONFLICT (venue, mac, plan) DO UPDATE SET router = EXCLUDED.router, at = EXCLUDED.at, until = EXCLUDED.until
       WHERE h.until < now() OR h.router = EXCLUDED.router
     RETURNING router`,
    [t.venue, t.mac, plan, t.router, Math.round(t.holdMs), every],
  );
  if (held.length > 0) return { plan, reserved: true };
  const rows = await db.query<{ until_ms: string }>(
    `SELECT (extract(epoch FROM until) * 1000)::bigint::text AS until_ms FROM venue_trial_holds
     WHERE venue = $1 AND mac = $2 AND plan = $3 AND until >= now() AND router <> $4`,
    [t.venue, t.mac, plan, t.router],
  );
  return rows[0] === undefined ? { plan, reserved: false } : { plan, reserved: false, until: Number(rows[0].until_ms) };
}

/** A claim's trial (`trial`: its plan, `trial_every`: ms), when it asks for one before a sale; else null. */
export function trialAsked(body: Record<string, unknown>): { plan: string; everyMs: number } | null {
  const plan = body['trial'];
  const every = body['trial_every'];
  if (typeof plan !== 'string' || plan === '' || plan.length > 64) return null;
  return { plan, everyMs: typeof every === 'number' && Number.isFinite(every) && every > 0 ? every : 0 };
}

/**
 * The hold a claim's answer carries when the claim asks for a trial (null: it asks for none). Held only for a device
 * whose venue session is nowhere or at the claimer (`free`); held elsewhere, the sale is refused for that anyway.
 */
export async function trialHold(
  db: Sql,
  c: { venue: string; mac: string; router: string; body: Record<string, unknown>; free: boolean; holdMs: number },
): Promise<TrialHold | null> {
  const ask = trialAsked(c.body);
  if (ask === null) return null;
  if (!c.free) return { plan: ask.plan, reserved: false };
  return reserveTrial(db, { venue: c.venue, mac: c.mac, router: c.router, holdMs: c.holdMs, ...ask });
}
