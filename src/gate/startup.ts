/**
 * The gate's start-up restores for the gates found open (a restart finds them authenticated, with no auth of sluice's
 * to set their rates or quota): their sessions' rates, then their kernel quotas. The gatekeeper's start() runs them
 * around its reconcile.
 */
import { isLive, remainingNumber } from '../sessions/index.ts';
import { hasRates, type PortalSnapshot, type ShapedClient } from '../portal/index.ts';
import type { Clock } from '../time.ts';
import type { GateState } from './states.ts';
import { AUTHED_STATES, type GateKernelQuota, type GatekeeperOptions, type ReconcileReport } from './options.ts';

/**
 * At start, before the reconcile: the gates found open (no auth, so the valve sets no rates) are limited again with
 * their sessions' journaled rates. The qdisc and nft table an earlier run left in the kernel survive it (a kill -9
 * removes nothing) but describe that run's clients; the shaper's start replaces both with exactly these. With
 * nothing to limit, the shaper stays unstarted (no qdisc put on the LAN) and only the old table is dropped. The
 * reconcile's auths then add their own clients as every auth does. Held gates (escrow credit) are not limited.
 */
export async function relimitFoundOpen(
  snapshot: PortalSnapshot,
  options: Pick<GatekeeperOptions, 'shaper' | 'sessions' | 'log'>,
  held: ReadonlySet<string>,
): Promise<void> {
  const shaper = options.shaper;
  if (!shaper) return;
  const limited: ShapedClient[] = [];
  for (const c of snapshot.clients) {
    if (!AUTHED_STATES.has(c.state) || c.state === 'Trusted' || !c.ip || held.has(c.mac)) continue;
    const s = options.sessions.byMac(c.mac);
    if (s === null || s.state !== 'ACTIVE' || !hasRates(s.rates)) continue;
    limited.push({ mac: c.mac, ip: c.ip, downBps: s.rates.downBps, upBps: s.rates.upBps });
  }
  if (limited.length === 0) {
    await shaper.dropLeftover();
    return;
  }
  const on = await shaper.start(limited);
  options.log.info('rates restored', { clients: limited.length, shaper: on ? 'on' : 'off' });
}

/**
 * At start, after the reconcile: the gates of live data sessions found open without a kernel quota (none an earlier
 * run left) get one, counted from now (bytes since the meter's last reading pass on top: a late stop, never an early
 * one).
 */
export async function quotaFoundOpen(
  snapshot: PortalSnapshot,
  kernelQuota: GateKernelQuota | null | undefined,
  sessions: GatekeeperOptions['sessions'],
  gateOf: (mac: string) => GateState,
  clock: Clock,
): Promise<void> {
  if (!kernelQuota?.enabled) return;
  for (const c of snapshot.clients) {
    const s = sessions.byMac(c.mac);
    if (s === null || !isLive(s) || s.metric !== 'bytes' || gateOf(c.mac) !== 'already-open' || kernelQuota.has(c.mac))
      continue;
    await kernelQuota.set(c.mac, remainingNumber(s, clock.now()));
  }
}

/** The start-up reconcile's listing, when it failed, is asked again after this, doubling up to the bound. */
export const RECONCILE_RETRY_MS = 5000;
export const RECONCILE_RETRY_MAX_MS = 60_000;

/**
 * How long the start-up reconcile waits before its listing is asked again after `attempt` (0: the first) failed. It is
 * asked until one comes: the portal may start after sluice, or be slow (openNDS 10.3.1 lists 64 clients in seconds of
 * its CPU, longer on a loaded router), and with the kernel's counters no tick lists it, so nothing else would close a
 * gate left open without a session. Pure.
 */
export function reconcileRetryMs(attempt: number): number {
  return Math.min(RECONCILE_RETRY_MAX_MS, RECONCILE_RETRY_MS * 2 ** Math.min(10, attempt));
}

/** What the start-up reconcile did, as its log line counts it. Pure. */
export function reconcileCounts(r: ReconcileReport): Record<string, number> {
  return { deauthed: r.deauthed.length, reopened: r.reopened.length, pending: r.pending.length, open: r.alreadyOpen };
}

/**
 * The openings a listing taken now may not show are numbered above this (the reconcile leaves their gates to them):
 * those begun later, and those in flight now, whose latest numbers are `begun`'s. sluice's own gate lists without
 * waiting for its openings' nft runs, so a listing can predate an opening that answers before the reconcile runs.
 * Pure.
 */
export function listingMark(
  opensBegun: number,
  inFlight: Iterable<string>,
  begun: ReadonlyMap<string, number>,
): number {
  let mark = opensBegun;
  for (const mac of inFlight) mark = Math.min(mark, (begun.get(mac) ?? mark + 1) - 1);
  return mark;
}
