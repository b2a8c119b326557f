/**
 * What the gate is built with and what it tells: its ports (the valve, the kernel quota, the rate shaper), its
 * options, its events and reports, and the timing of its waits for the portal to list a client. gatekeeper.ts
 * re-exports the public names.
 */
import { GATE_OPEN_STATES, type ShapedClient, type Valve } from '../portal/index.ts';
import type { Session, SessionControlPort, SessionEventsView, SessionReadView } from '../sessions/index.ts';
import type { Log } from '../log.ts';
import type { Clock, Timers } from '../time.ts';
import type { Meter } from '../meter/index.ts';

export type GateValve = Pick<Valve, 'open' | 'close' | 'snapshot'> &
  Partial<Pick<Valve, 'lastIp' | 'closeAndLook' | 'closeAndCount' | 'callCounts' | 'released'>> & {
    /**
     * An opening is one change the valve makes or takes back whole (sluice's own gate: one nft transaction, a close
     * undoes it): the gate begins it while the purchase is written, and closes it again if the write is refused.
     */
    readonly opensEarly?: boolean;
  };

/** What a close came to: the portal confirmed it (or answered it had nothing open), it failed, or it was not sluice's
 *  to close (a live session holds that gate). */
export type CloseOutcome = 'closed' | 'failed' | 'kept-open';

/**
 * What the gate tells: around every auth (the meter's counters start at 0 when sluice auths, see Meter.authStarting),
 * and when a session that just started has its gate open (the meter takes its first reading soon).
 */
export type GateEvents = {
  'auth-starting': [mac: string, sessionId: string];
  /** `ip`: the address the portal authed the client with (null: not known). */
  'auth-finished': [mac: string, sessionId: string, result: 'opened' | 'already-open' | 'failed', ip: string | null];
  opened: [session: Session];
  /**
   * A close sluice made (deauth) ended: `state` is the portal's word on the client right after it (null: not listed),
   * undefined when nobody looked (the close failed, or `confirmByLook` is off): then a listing must tell.
   */
  closed: [mac: string, state: string | null | undefined];
  /** A live session's gate is kept closed on purpose (hold(): escrow credit) from now, or no longer (release()). */
  held: [mac: string, held: boolean];
};

/** main.kernel_quota (portal/kernel-quota.ts): the valve's brake sets and removes it; the gate raises it on a top-up
 *  and gives gates found open at start-up theirs. */
export interface GateKernelQuota {
  readonly enabled: boolean;
  start(): Promise<unknown>;
  has(mac: string): boolean;
  set(mac: string, limitBytes: number): Promise<void>;
  toppedUp(mac: string): Promise<void>;
}

export interface GatekeeperOptions {
  valve: GateValve;
  /** The gate subscribes to its starts, top-ups and ends at construction. */
  sessions: SessionReadView & SessionEventsView & SessionControlPort;
  log: Log;
  clock?: Clock;
  /** For the unlisted-client retries (LISTING_RETRY_MS); default unref'd: nobody awaits them. */
  timers?: Timers;
  /** A paying client that is present but whose gate keeps failing to open ends as `portal-lost` after this. */
  portalLostGraceMs?: number;
  kernelQuota?: GateKernelQuota | null;
  /**
   * Speed tiers (portal/shaper.ts, the one the valve sets each gate's rates with at its auth): a session's journaled
   * rates are handed to the valve with its auth, a live change is set on its open gates, and the gates found open at
   * start-up are limited again. Absent: no rates are set.
   */
  shaper?: RateShaper | null;
  /**
   * `main.leave_foreign_clients`: leave alone clients authenticated in the portal by other means (an operator's free
   * tier); only gates sluice opened are closed when no session holds them. Default false: every authenticated client
   * without a live session is deauthed (Trusted ones never are).
   */
  leaveForeign?: boolean;
  /**
   * Whether a close is confirmed by a look at that one client (`ndsctl json <mac>` after the deauth,
   * Valve.closeAndLook) instead of by the next listing: true while no tick lists the portal (the kernel's counters are
   * on), where waiting for a listing meant asking the portal for every client after every deauth. Default: never.
   */
  confirmByLook?: () => boolean;
}

/** The shaper as the gate drives it besides the valve's auth and deauth. Never throws (shaper.ts). */
export interface RateShaper {
  /** Limits a client from now (both rates null: not any more). */
  set(client: ShapedClient): Promise<void>;
  /** The qdisc and the table rebuilt with exactly these clients limited (what an earlier run left is replaced). */
  start(clients: readonly ShapedClient[]): Promise<boolean>;
  /** The table an earlier run left, dropped when nothing is to be limited now (its entries would limit strangers). */
  dropLeftover(): Promise<void>;
}

export interface ReconcileReport {
  deauthed: string[];
  reopened: string[];
  pending: string[];
  alreadyOpen: number;
}

export const AUTHED_STATES: ReadonlySet<string> = new Set(GATE_OPEN_STATES);

/** The meter as the gate follows it (follow): its facts, and the addresses its ticks listed. */
export type FollowedMeter = Pick<Meter, 'on' | 'listedIp'>;

/**
 * How old the ticks' list may be for a purchase's gate to take the client's address from it (Valve.open
 * `knownIpListed`): the LAN lookup that let the purchase in read one at most ~2 s old, and ticks refresh it every poll
 * while lookups come.
 */
export const LISTED_IP_MAX_AGE_MS = 3000;

/**
 * A session whose gate could not open because the portal does not list its client yet (a customer who paid before
 * opening a page: openNDS 9 lists, and auths, a client only once it has seen traffic from it) is opened again every
 * LISTING_RETRY_MS for up to LISTING_WAIT_MS: its first page then comes a fraction of a second after the portal lists
 * it, where waiting for the meter to see it took up to a poll interval and a snapshot more (up to 2.6 s in the lab,
 * docs/performance.md "The customer's bytes at the cut, and the first page"). So is one whose auth got no answer in
 * time (a busy portal may still do it: the next try finds the client open). Each try is one `ndsctl json <mac>`;
 * after the wait, the meter's readings re-open it as they do any paying client. At most LISTING_WAITERS sessions wait
 * so at once (an admin granting a hundred MACs ahead of time must not become 400 portal calls a second ahead of the
 * meter's snapshot): the others are left to the meter.
 */
export const LISTING_RETRY_MS = 250;
export const LISTING_WAIT_MS = 60_000;
export const LISTING_WAITERS = 8;
