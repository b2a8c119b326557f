/**
 * The order of the ndsctl queue (runner.ts): which waiting call goes next, decided from each call's class and how long
 * it has waited. Pure: the runner holds the queue and runs what this picks.
 */

/**
 * Which queued call goes next (takeNext):
 * 1. 'deauth' (a gate of an exhausted or terminated session), then 'read' (the meter's final reading of one client
 *    about to run out: it decides a cut): always first, in the order asked. Nothing else ever goes ahead of them, so a
 *    burst of purchases or a tick never delays a cut or a close by more than the call in flight. They come from
 *    session ends and cuts (at most one each per session), so they delay the others without starving them.
 * 2. 'auth' (a purchase's gate: its `json <mac>` and `ndsctl auth`) before 'snapshot' (the tick's list of every
 *    client): a customer staring at the pay page should not wait for a 10k-client fetch that is merely queued, while
 *    a tick can wait a few auths (the poll interval is a second; an auth is a few ms on the socket).
 * 3. The aging bound: a call (any but a lookup) that has waited while AGED_AFTER others ran, of whatever class and
 *    whether asked before or after it, goes next, ahead of the more urgent class it waited behind; only the deauths
 *    and reads of 1. still go before it. So a burst of purchases, queued before the tick's snapshot or after it,
 *    delays the snapshot by at most AGED_AFTER calls, and never starves it; purchases in turn wait for at most one
 *    snapshot per AGED_AFTER of them (besides the one in flight).
 * 4. 'lookup' last: reads on behalf of LAN requests (the HTTP endpoint's IP → MAC list), which anyone on the LAN can
 *    cause, so they never go ahead of a gate command or a meter read; never aged (their callers coalesce them, one
 *    queued at a time, and what they wait for is the work that must not wait).
 * FIFO within a class.
 */
export type NdsctlPriority = 'deauth' | 'read' | 'snapshot' | 'auth' | 'lookup';
const PRIORITY_RANK: Record<NdsctlPriority, number> = { deauth: 0, read: 1, auth: 2, snapshot: 3, lookup: 4 };
/** Ranks at or below this always go first (deauth, read) and are never overtaken, aged or not. */
const FIRST_RANK = PRIORITY_RANK.read;
/** Never aged (see NdsctlPriority 4). */
const UNAGED_RANK = PRIORITY_RANK.lookup;
/**
 * How many calls may go ahead of a waiting call before it goes next (NdsctlPriority 3). 8 purchases' gate commands
 * over the socket take ~10–40 ms on the bench machine (a call is 1–2 ms, more when the portal stalls): what a tick may
 * wait, so that purchases need not wait its fetch. Over the ndsctl command (~0.1 s a spawn) that is up to ~1.5 s.
 */
export const AGED_AFTER = 8;

/** A waiting call as the order sees it: its class's rank and how many calls started while it waited. */
export interface QueuedCall {
  rank: number;
  /** Calls that started while this one waited: AGED_AFTER of them age it (NdsctlPriority 3). */
  passed: number;
}

/** The rank a call of this priority waits with (an unknown priority waits as an auth). */
export function rankOf(priority: NdsctlPriority): number {
  return PRIORITY_RANK[priority] ?? PRIORITY_RANK.auth;
}

/**
 * Removes and returns the call that goes next (see NdsctlPriority) from a queue in the order asked; each call left
 * waiting counts one more call gone before it.
 */
export function takeNext<T extends QueuedCall>(queue: T[]): T | undefined {
  let best = -1;
  for (let i = 0; i < queue.length; i++) if (best < 0 || queue[i]!.rank < queue[best]!.rank) best = i;
  if (best < 0) return undefined;
  let at = best;
  const bestRank = queue[best]!.rank;
  if (bestRank > FIRST_RANK) {
    // The first call that has waited out AGED_AFTER others behind a more urgent class goes before that class.
    const aged = queue.findIndex((job) => job.rank > bestRank && job.rank !== UNAGED_RANK && job.passed >= AGED_AFTER);
    if (aged >= 0) at = aged;
  }
  const [job] = queue.splice(at, 1);
  for (const waiting of queue) waiting.passed++;
  return job;
}
