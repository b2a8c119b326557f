/**
 * When a meter that reads usage from the kernel's counters (meter/kernel-task.ts) also lists the portal. A listing is
 * what costs openNDS (≈ 22 ms of CPU per listed client, docs/captive-portal.md "What a call costs openNDS"), and the
 * portal is asked only what only it knows: who is there, in which state. So a listing is due when
 *  - none was read yet (the roster is empty);
 *  - sluice changed something the list shows (an auth, a deauth: `changed()`);
 *  - the portal restarted (its control socket is a new file: `portalIdentity()`): it forgot every gate; listed then
 *    and `RESTART_FOLLOW_UPS` more times, `restartGapMs` apart: a portal just started lists a client only once the
 *    client shows up again, and a paid client whose gate it forgot must not wait for the stall's pace to get it back;
 *  - the last kernel tick found counters the roster does not hold;
 *  - a paying client showed up on an address no listing showed it with (the kernel's neighbour table: a new lease,
 *    which openNDS lists as a client of its own behind its splash once the device asks from it): listed then and
 *    `MOVED_FOLLOW_UPS` more times, `restartGapMs` apart, as the portal may list the new address only a moment later;
 *  - a paying client's counters stopped (the portal may have closed its gate by itself: an idle timeout, a crash):
 *    once per stall, not once per tick: a client that stays idle is listed once, and again only after it moved and
 *    stopped again; and these listings no closer than `stalledIntervalMs`, stretched to `stallCostFactor` times the
 *    last listing's duration (many phones going idle one after the other are one listing now and then, ≤ 5% of the
 *    time: a portal restart has its own reason, and the safety net catches the rest);
 *  - the safety net: `safetyNetMs` after the last listing, stretched to `costFactor` times the last listing's duration
 *    (a listing that took 3 s is not repeated within 300 s): the net never costs more than 1/costFactor of the time.
 * Every reason but the first waits `minIntervalMs` after the last listing: a burst of purchases is one listing. The
 * two that no customer waits for, the stall's and the safety net's, also wait for a quiet moment: `quietMs` after
 * sluice last opened a gate (`gateOpened()`), but no more than `maxQuietWaitMs` past when they fell due. A listing
 * holds the portal's queue for its whole duration (seconds at tens of clients on a busy router), and a purchase's
 * auth queued behind it waits that long (seen in the lab: one gate of 5.1 s in a burst).
 * Pure: time comes in as arguments.
 */

export interface ListingPolicyOptions {
  /** The safety net's period (default 60 s). */
  safetyNetMs?: number;
  /** The net's period is at least this many times the last listing's duration (default 100: ≤ 1% of the time). */
  costFactor?: number;
  /** No two listings closer than this (default 1 s), the first excepted. */
  minIntervalMs?: number;
  /** A stall's listing no sooner than this after the last listing (default 15 s)… */
  stalledIntervalMs?: number;
  /** …nor than this many times the last listing's duration (default 20). */
  stallCostFactor?: number;
  /** The follow-up listings after a portal restart, this far apart at least (default 3 s). */
  restartGapMs?: number;
  /** The stall's and the safety net's listings wait this long after sluice last opened a gate (default 5 s)… */
  quietMs?: number;
  /** …but no longer than this past when they fell due (default 60 s). */
  maxQuietWaitMs?: number;
}

/** Listings after the one a portal restart asks for (see the header). */
export const RESTART_FOLLOW_UPS = 3;
/** Listings after the one a paying client's new address asks for (see the header). */
export const MOVED_FOLLOW_UPS = 2;

export type ListingReason = 'first' | 'changed' | 'portal-restart' | 'unlisted' | 'moved' | 'stalled' | 'safety-net';

export class ListingPolicy {
  private readonly safetyNetMs: number;
  private readonly costFactor: number;
  private readonly minIntervalMs: number;
  private readonly stalledIntervalMs: number;
  private readonly stallCostFactor: number;
  private readonly restartGapMs: number;
  private readonly quietMs: number;
  private readonly maxQuietWaitMs: number;
  /** When sluice last opened a gate (clock ms). */
  private lastGateAt: number | undefined;
  /** Listings still due after a portal restart's (see the header). */
  private restartFollowUps = 0;
  /** Listings still due after a move's (see the header). */
  private movedFollowUps = 0;
  /** A stalled paying client not looked at yet (its own pace: see stalledIntervalMs). */
  private stallPending = false;
  private lastListedAt: number | undefined;
  private lastTookMs = 0;
  private pending: ListingReason | undefined;
  private identity: string | undefined;
  /** Paying clients stopped when the last listing was read: already looked at, not listed for again. */
  private readonly checked = new Set<string>();
  /** Paying clients stopped now (the tick loop's latest word). */
  private stalled = new Set<string>();

  constructor(options: ListingPolicyOptions = {}) {
    this.safetyNetMs = options.safetyNetMs ?? 60_000;
    this.costFactor = options.costFactor ?? 100;
    this.minIntervalMs = options.minIntervalMs ?? 1000;
    this.stalledIntervalMs = options.stalledIntervalMs ?? 15_000;
    this.stallCostFactor = options.stallCostFactor ?? 20;
    this.restartGapMs = options.restartGapMs ?? 3000;
    this.quietMs = options.quietMs ?? 5000;
    this.maxQuietWaitMs = options.maxQuietWaitMs ?? 60_000;
  }

  /** sluice opened a gate at `at` (an auth that succeeded): the listings no customer waits for wait a quiet moment. */
  gateOpened(at: number): void {
    this.lastGateAt = Math.max(this.lastGateAt ?? at, at);
  }

  /** sluice authed or deauthed a client (or sold it a session): the list changed. */
  changed(): void {
    this.pending ??= 'changed';
  }

  /** The portal's control socket as seen now (device:inode, undefined when absent): a new one is a restarted portal. */
  portalIdentity(id: string | undefined): void {
    if (id !== undefined && this.identity !== undefined && id !== this.identity) {
      this.pending ??= 'portal-restart';
      this.restartFollowUps = RESTART_FOLLOW_UPS;
    }
    if (id !== undefined) this.identity = id;
  }

  /** What the last kernel tick reported, and the paying clients whose counters did not move in it. */
  afterTick(unlisted: number, moved: number, stalledPaying: Iterable<string>): void {
    if (unlisted > 0) this.pending ??= 'unlisted';
    if (moved > 0) {
      this.pending ??= 'moved';
      this.movedFollowUps = MOVED_FOLLOW_UPS;
    }
    const now = new Set(stalledPaying);
    // A client that moved again may be looked at again when it next stops.
    for (const mac of this.checked) if (!now.has(mac)) this.checked.delete(mac);
    for (const mac of now)
      if (!this.checked.has(mac)) {
        this.stallPending = true;
        break;
      }
    this.stalled = now;
  }

  /** Why the tick starting at `now` lists the portal, or undefined when it does not. */
  due(now: number): ListingReason | undefined {
    if (this.lastListedAt === undefined) return 'first';
    const since = now - this.lastListedAt;
    if (this.pending !== undefined && since >= this.minIntervalMs) return this.pending;
    if (this.restartFollowUps > 0 && since >= this.followUpGapMs()) return 'portal-restart';
    if (this.movedFollowUps > 0 && since >= this.followUpGapMs()) return 'moved';
    if (this.stallPending && since >= this.stallGapMs() && this.quiet(now, this.stallGapMs())) return 'stalled';
    if (since >= this.safetyNetGapMs() && this.quiet(now, this.safetyNetGapMs())) return 'safety-net';
    return undefined;
  }

  /** No gate opened in the last `quietMs`, or a listing due `gapMs` after the last has waited `maxQuietWaitMs`. */
  private quiet(now: number, gapMs: number): boolean {
    if (this.lastGateAt === undefined || now - this.lastGateAt >= this.quietMs) return true;
    return now - (this.lastListedAt! + gapMs) >= this.maxQuietWaitMs;
  }

  private safetyNetGapMs(): number {
    return Math.max(this.safetyNetMs, this.costFactor * this.lastTookMs);
  }

  /** A listing was read (asked at `at`, taking `tookMs`): every reason so far is answered. */
  listed(at: number, tookMs: number): void {
    this.lastListedAt = at;
    this.lastTookMs = Math.max(0, tookMs);
    // The restart's own listing (pending) leaves the follow-ups; each later one uses one.
    if (this.pending === undefined && this.restartFollowUps > 0) this.restartFollowUps--;
    else if (this.pending === undefined && this.movedFollowUps > 0) this.movedFollowUps--;
    this.pending = undefined;
    this.stallPending = false;
    for (const mac of this.stalled) this.checked.add(mac);
  }

  /**
   * A listing was asked (at `at`, `tookMs`) and not read (the portal down, busy, a bad answer): tried again no sooner
   * than the minimum interval, or the safety net's stretch after a slow failure; the reasons stand.
   */
  failed(at: number, tookMs: number): void {
    this.lastListedAt = at;
    this.lastTookMs = Math.max(this.lastTookMs, tookMs);
    this.pending ??= 'changed';
  }

  /** When the next listing is due at the latest (clock ms), for the scheduler; undefined before the first. */
  nextAt(): number | undefined {
    if (this.lastListedAt === undefined) return undefined;
    if (this.pending !== undefined) return this.lastListedAt + this.minIntervalMs;
    let next = this.quietAt(this.lastListedAt + this.safetyNetGapMs());
    if (this.stallPending) next = Math.min(next, this.quietAt(this.lastListedAt + this.stallGapMs()));
    if (this.restartFollowUps > 0 || this.movedFollowUps > 0)
      next = Math.min(next, this.lastListedAt + this.followUpGapMs());
    return next;
  }

  /** When a listing due at `dueAt` may go: then, or once quiet, or at the end of its wait for quiet. */
  private quietAt(dueAt: number): number {
    if (this.lastGateAt === undefined) return dueAt;
    return Math.max(dueAt, Math.min(this.lastGateAt + this.quietMs, dueAt + this.maxQuietWaitMs));
  }

  private followUpGapMs(): number {
    return Math.max(this.minIntervalMs, this.restartGapMs, 2 * this.lastTookMs);
  }

  private stallGapMs(): number {
    return Math.max(this.minIntervalMs, this.stalledIntervalMs, this.stallCostFactor * this.lastTookMs);
  }
}
