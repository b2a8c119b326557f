/**
 * The tick loop's side of metering from the kernel's counters (portal/kernel-counting.ts): while they are on, each
 * tick reads usage from one `nft -j` dump in the worker (meter/kernel-task.ts) without holding the portal's queue, and
 * lists the portal only when meter/listing-policy.ts says so. Listing is what costs openNDS (≈ 22 ms of CPU per listed
 * client, docs/captive-portal.md "What a call costs openNDS"); the portal is asked only what only it knows: who is
 * there, in which state, on which address.
 *
 * What this part keeps between ticks:
 *  - the roster of the last listing (each client's MAC and state), named to every tick without one, and when it was
 *    read (`rosterAt`): the gate facts a tick reports from it are as of then, not as of the tick (a gate closed or
 *    opened since is judged by the next listing, Gatekeeper.enforce's `snapshotAt`). A roster has a key of its own;
 *    the thread keeps it (kernel-task.ts, KeptRoster), so a tick sends the key alone once a thread took that roster,
 *    the roster itself only when none did (resend() after a thread that does not hold it);
 *  - the counters the last listing did not list (a departed client, an idle timeout): listed for once, not every tick;
 *  - when each paying client's counters last moved: a client stopped for `stallMs` after moving is a reason to list
 *    once (the portal may have closed its gate by itself), an idle one is not a reason every tick; not one that
 *    stopped while the portal's own deauths are reported (`deauthsReportedSince`: portal/binauth-watch.ts);
 *  - the counters' change count (KernelCountersPort.changes): sluice's own deauths are a reason to list; its auths
 *    are written into the roster as they succeed (opened()), and into the roster of a listing in flight then (read
 *    before them, it shows their gates closed).
 * And what it does on the listing's word: a paying client listed open without counters (sluice was upgraded with its
 * gate open, or its counters' change failed) gets counters from now. Counters are keyed by MAC: an address change
 * needs nothing.
 */
import { randomBytes } from 'node:crypto';
import {
  GATE_OPEN_STATES,
  STATE_CODES,
  stateCodeOf,
  type PortalFlavour as Flavour,
  type SnapshotSource,
} from '../portal/index.ts';
import type { KernelUsageResult, KernelUsageTask, RosterRef } from './kernel-task.ts';
import type { RosterEntry } from './kernel-tick.ts';
import { AddressWatch } from './address-watch.ts';
import { ListingPolicy, type ListingPolicyOptions, type ListingReason } from './listing-policy.ts';
import type { KernelCountersPort, SessionsPort } from './ports.ts';
import type { CounterTable } from './table.ts';
import type { UsageResult } from './task.ts';

/** A paying client whose counters have not moved for this long (after moving) is listed for once. */
export const STALL_MS = 15_000;

const OPEN_CODES: ReadonlySet<number> = new Set(GATE_OPEN_STATES.map((s) => STATE_CODES[s]));

/**
 * Roster keys are unique in the process and never reused (a thread may be shared, or outlive a Meter): a random prefix
 * per module, a count after it.
 */
const KEY_PREFIX = randomBytes(4).toString('hex');
let keys = 0;
const newRosterKey = (): string => `${KEY_PREFIX}.${++keys}`;

export interface KernelModeOptions extends ListingPolicyOptions {
  /**
   * The portal's control socket as a device:inode string (portal-socket.ts), read every tick; a new one is a restart.
   */
  portalIdentity?: (() => string | undefined) | undefined;
  /** The kernel's neighbour table's text (null: unreadable): see watchAddresses. */
  neighbours?: (() => Promise<string | null>) | undefined;
  stallMs?: number;
  /**
   * Since when the portal's own deauths are reported (portal/binauth-watch.ts; the meter reports a paying client's for
   * re-opening): a paying client whose counters stopped since then is no reason to list, as its gate closing would
   * have been told.
   */
  deauthsReportedSince?: (() => number | undefined) | undefined;
}

/** The neighbour table is read at most this often (a file read of a few KB at tens of clients). */
export const ADDRESS_WATCH_MS = 3000;

export class KernelMode {
  readonly policy: ListingPolicy;
  /** Never changed in place once made (opened() copies it): a task may hold it (the main thread's own runner). */
  private roster: RosterEntry[] = [];
  private rosterKey = newRosterKey();
  /** The key of the roster a thread last said it holds: the next task names it alone if it is still `rosterKey`. */
  private heldKey: string | undefined;
  /** When the roster's listing was asked for (clock ms); undefined before the first. */
  rosterAt: number | undefined;
  /** Counters the last listing did not list: not a reason to list again. */
  private checkedUnlisted = new Set<string>();
  private changesSeen: number;
  /**
   * Paying clients with counters: when their counters last moved (clock ms), and the afterBilling() that last saw them
   * paying (`seen`: the others are dropped; a stamp, not a Set of every paying MAC built each tick).
   */
  private readonly movedAt = new Map<string, { at: number; seen: number }>();
  private billings = 0;
  /** The roster's MACs, made when first asked for (unlisted counters to check), kept while the roster is. */
  private rosterMacs: { key: string; macs: ReadonlySet<string> } | undefined;
  private readonly stallMs: number;
  /** sluice opened a gate since the last tick (opened()): told to the policy with the tick's time. */
  private gateOpenedSinceTick = false;
  /**
   * A listing is in flight (task() asked for one, settle() not yet): the gates sluice opened meanwhile (opened()),
   * whose auth the listing may predate. Its roster shows them closed then; the auth's outcome is the newer word.
   */
  private openedInFlight: string[] | undefined;
  /** Likewise the closes that ended meanwhile (closed()), with the state the portal gave (undefined: not listed). */
  private closedInFlight: Array<[string, number | undefined]> | undefined;
  /** Those the last listing's roster got from opened() instead: the tick's own readings show them closed. */
  private openedAfterListing: ReadonlySet<string> = new Set();
  /** The last tick's counters the roster did not hold. */
  private unlistedNow: readonly string[] = [];
  /** Ticks that read the portal's listing, and the reason of the last. */
  listings = 0;
  lastReason: ListingReason | 'lookup' | undefined;
  /** The listings read, by the reason their tick asked for them (stats: what made sluice list the portal). */
  readonly listingsBy: Partial<Record<ListingReason | 'lookup', number>> = {};

  private readonly addressWatch = new AddressWatch();
  private addressNews = 0;
  private addressesReadAt = -Infinity;

  constructor(
    readonly counters: KernelCountersPort,
    private readonly options: KernelModeOptions = {},
  ) {
    this.policy = new ListingPolicy(options);
    this.changesSeen = counters.changes;
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  get on(): boolean {
    return this.counters.enabled;
  }

  /** Whether the tick dispatched at `now` lists the portal (a LAN lookup waiting for a list is a reason too). */
  wantsListing(now: number, lookupWaiting: boolean): boolean {
    this.policy.portalIdentity(this.options.portalIdentity?.());
    if (this.counters.changes !== this.changesSeen) {
      this.changesSeen = this.counters.changes;
      this.policy.changed();
    }
    this.lastReason = this.policy.due(now) ?? (lookupWaiting ? 'lookup' : undefined);
    return this.lastReason !== undefined;
  }

  task(
    tick: number,
    table: CounterTable,
    timeoutMs: number,
    fetchSignal: SharedArrayBuffer,
    listing:
      | { source: SnapshotSource | { kind: 'inline'; text: string }; flavour: Flavour | 'auto'; maxBytes?: number }
      | undefined,
  ): KernelUsageTask {
    this.openedInFlight = listing === undefined ? undefined : [];
    this.closedInFlight = listing === undefined ? undefined : [];
    return {
      kind: 'kernel',
      tick,
      table,
      timeoutMs,
      fetchSignal,
      // None before a listing was read: a tick whose first listing fails is skipped, as a portal tick would be (an
      // empty roster would report every paying client gone).
      ...(this.rosterAt === undefined ? {} : { roster: this.rosterRef(this.heldKey !== this.rosterKey) }),
      counters: { kind: 'command', argv: this.counters.dumpArgv },
      ...(listing === undefined ? {} : { listing: { ...listing, rosterKey: newRosterKey() } }),
    };
  }

  /**
   * The task again with the roster itself, when the thread that ran it did not hold the roster it named
   * (`roster-unknown`: a new or replaced thread, another one, the main thread's runner): never skipped, never billed
   * with another roster. Undefined for any other result.
   */
  resend(task: KernelUsageTask, result: KernelUsageResult): KernelUsageTask | undefined {
    if (result.ok || result.problem !== 'roster-unknown' || task.roster?.entries !== undefined) return undefined;
    this.heldKey = undefined;
    return { ...task, roster: this.rosterRef(true) };
  }

  private rosterRef(withEntries: boolean): RosterRef {
    return withEntries ? { key: this.rosterKey, entries: this.roster } : { key: this.rosterKey };
  }

  /**
   * The worker's answer to a task asked at `at` (its portal part took `listingMs`), as the tick loop's UsageResult: the
   * roster and the policy updated, counters moved or made as the listing says. `counters-unreadable`: the table was
   * flushed behind sluice (a firewall reload): made again.
   */
  settle(
    result: KernelUsageResult,
    listed: boolean,
    at: number,
    listingMs: number,
    sessions: SessionsPort,
  ): UsageResult {
    // For this tick only, whatever its outcome (after a failed one, the roster opened() wrote them into still holds).
    const late = this.openedInFlight ?? [];
    const lateClosed = this.closedInFlight ?? [];
    this.openedInFlight = undefined;
    this.closedInFlight = undefined;
    if (!result.ok) {
      if (listed) this.policy.failed(at, listingMs);
      if (result.problem === 'counters-unreadable') void this.counters.rebuild(result.message);
      return {
        tick: result.tick,
        ok: false,
        // Not after resend(): a thread keeps a roster it is sent.
        problem: result.problem === 'roster-unknown' ? 'worker-error' : result.problem,
        message: result.message,
        fetchMs: result.fetchMs,
      };
    }
    if (listed && result.listed === undefined) this.policy.failed(at, listingMs);
    const l = result.listed;
    this.openedAfterListing = l === undefined || late.length === 0 ? new Set() : new Set(late);
    if (l !== undefined) {
      this.listings++;
      if (this.lastReason !== undefined) this.listingsBy[this.lastReason] = (this.listingsBy[this.lastReason] ?? 0) + 1;
      this.roster = l.roster;
      for (const mac of late) this.roster = withOpen(this.roster, mac);
      for (const [mac, code] of lateClosed) this.roster = withState(this.roster, mac, code);
      // Another roster than the one the thread keeps under the listing's key (heldKey below): sent to it next tick.
      const patched = late.length > 0 || lateClosed.length > 0;
      this.rosterKey = patched ? newRosterKey() : (result.rosterKey ?? newRosterKey());
      this.rosterAt = at;
      this.policy.listed(at, listingMs);
      this.addressWatch.listed(l.addresses);
      this.checkedUnlisted = new Set(result.unlisted);
      for (const [mac, state] of l.roster)
        if (OPEN_CODES.has(state) && !this.counters.has(mac) && sessions.active(mac) !== undefined)
          void this.counters.count(mac);
    }
    if (result.rosterKey !== undefined) this.heldKey = result.rosterKey;
    this.unlistedNow = result.unlisted;
    return {
      tick: result.tick,
      ok: true,
      flavour: l?.flavour ?? 'opennds',
      clients: result.clients,
      fallback: l?.fallback ?? false,
      deltas: result.deltas,
      count: result.count,
      newEpochs: result.newEpochs,
      arrivals: result.arrivals,
      departures: result.departures,
      ...(result.table === undefined ? {} : { table: result.table }),
      snapshotBytes: result.snapshotBytes,
      fetchMs: result.fetchMs,
      scanMs: result.scanMs,
      ...(l === undefined ? {} : { addresses: l.addresses }),
    };
  }

  /**
   * After billing: the paying clients whose counters moved in this tick (`moved`), for the stall reason, and the
   * counters no listing has looked at yet, for the unlisted one. Not those of a gate sluice is opening (`authing`: its
   * fresh counters are made before its auth, and the auth's outcome writes it into the roster, opened()) nor those the
   * roster holds by now: listing for them put the listing in the portal's queue in front of the next purchase's auth
   * (seen in the lab: 2.6 s at 32 listed for the purchase after the first of a burst).
   */
  afterBilling(
    now: number,
    moved: ReadonlySet<string>,
    sessions: SessionsPort,
    authing: (mac: string) => boolean = () => false,
  ): void {
    const stalled: string[] = [];
    const reportedSince = this.options.deauthsReportedSince?.() ?? Infinity;
    const stamp = ++this.billings;
    for (const s of sessions.activeSessions()) {
      const mac = s.mac;
      if (!this.counters.has(mac)) continue;
      const entry = this.movedAt.get(mac);
      if (moved.has(mac)) {
        if (entry === undefined) this.movedAt.set(mac, { at: now, seen: stamp });
        else {
          entry.at = now;
          entry.seen = stamp;
        }
      } else if (entry !== undefined) {
        entry.seen = stamp;
        if (now - entry.at >= this.stallMs && entry.at < reportedSince) stalled.push(mac);
      }
    }
    for (const [mac, entry] of this.movedAt) if (entry.seen !== stamp) this.movedAt.delete(mac);
    let unlisted = 0;
    for (const mac of this.unlistedNow) {
      if (!this.checkedUnlisted.has(mac) && !authing(mac) && !this.rostered().has(mac)) unlisted++;
    }
    this.policy.afterTick(unlisted, this.addressNews, stalled);
    this.addressNews = 0;
    if (this.gateOpenedSinceTick) this.policy.gateOpened(now);
    this.gateOpenedSinceTick = false;
  }

  /**
   * Every ADDRESS_WATCH_MS at most, before afterBilling: the paying clients (with counters) the neighbour table shows
   * on an address no listing showed them with (a new lease: openNDS lists it behind its splash until sluice re-opens
   * it), each pair once, for the listing policy's `moved` reason.
   */
  async watchAddresses(now: number, sessions: SessionsPort): Promise<void> {
    const read = this.options.neighbours;
    if (read === undefined || now - this.addressesReadAt < ADDRESS_WATCH_MS) return;
    this.addressesReadAt = now;
    const table = await read();
    if (table === null) return;
    const paying = new Set<string>();
    for (const s of sessions.activeSessions()) if (this.counters.has(s.mac)) paying.add(s.mac);
    this.addressNews += this.addressWatch.news(table, paying);
  }

  private rostered(): ReadonlySet<string> {
    if (this.rosterMacs?.key !== this.rosterKey) {
      const macs = new Set<string>();
      for (const [mac] of this.roster) macs.add(mac);
      this.rosterMacs = { key: this.rosterKey, macs };
    }
    return this.rosterMacs.macs;
  }

  /** sluice is about to auth this client (its counters made just before): see AddressWatch.authing. */
  authStarting(mac: string): void {
    this.addressWatch.authing(mac);
  }

  /** That auth ended, whatever its outcome (after opened() when it opened the gate). */
  authEnded(mac: string): void {
    this.addressWatch.settled(mac);
  }

  /**
   * sluice's own auth opened this client's gate: the roster says so from now, without a listing (the listing after
   * every purchase held the portal's queue in front of the next purchase's auth; openNDS answers an auth only for a
   * Preauthenticated client, so 'opened' is the portal's word). Its fresh counters' first reading then starts an open
   * epoch, billed in full by the first-reading watch.
   */
  opened(mac: string, ip: string | null = null): void {
    this.gateOpenedSinceTick = true;
    // The address sluice just authed it on is no news to the address watch: without this every new customer's first
    // sighting in the neighbour table asked for a listing (at 32 clients on openNDS 10.3.1, ≈ 3 s of its CPU each).
    if (ip !== null) this.addressWatch.authed(mac, ip);
    // The listing in flight may have been read before this auth (the portal's queue is free once it is read): settle()
    // writes the gate open into its roster too, else that roster would say closed until the next listing (up to the
    // safety net's minute: the gate reported for re-opening, its bytes unbilled meanwhile).
    // Not with the counters off (no kernel task settles then: a tick that threw before them left the list open).
    if (this.on) this.openedInFlight?.push(mac);
    if (this.rosterAt === undefined) return;
    this.roster = withOpen(this.roster, mac);
    this.rosterKey = newRosterKey();
  }

  /**
   * A close sluice made ended, and the portal's word on that client right after it (`state`, null: not listed): the
   * roster says so from now, as opened() does for an auth; the listing in flight, read before it, too. Without that
   * word (the close failed, or nobody looked) the portal is listed: it shows what the close did.
   */
  closed(mac: string, state: string | null | undefined): void {
    const code = state === null || state === undefined ? undefined : stateCodeOf(state);
    if (state === undefined || (code !== undefined && OPEN_CODES.has(code))) {
      this.policy.changed();
      return;
    }
    if (this.on) this.closedInFlight?.push([mac, code]);
    if (this.rosterAt === undefined) return;
    this.roster = withState(this.roster, mac, code);
    this.rosterKey = newRosterKey();
  }

  /**
   * Whether sluice opened this gate after the last tick's listing was read: that tick's readings show it closed, which
   * is not the portal's word any more (not a gate to re-open).
   */
  openedSinceListing(mac: string): boolean {
    return this.openedAfterListing.has(mac);
  }

  /** The next tick is wanted by then (ms from `now`) for a listing that is due. */
  listingInMs(now: number): number {
    const at = this.policy.nextAt();
    return at === undefined ? 0 : Math.max(0, at - now);
  }
}

/** A copy of `roster` with `mac`'s gate open (Authenticated), added if absent: a roster is never changed in place. */
function withOpen(roster: readonly RosterEntry[], mac: string): RosterEntry[] {
  return withState(roster, mac, STATE_CODES.Authenticated);
}

/** A copy of `roster` with `mac` in state `code` (added if absent), or without it (undefined: not listed). */
function withState(roster: readonly RosterEntry[], mac: string, code: number | undefined): RosterEntry[] {
  const out = roster.slice();
  const i = out.findIndex(([m]) => m === mac);
  if (code === undefined) {
    if (i >= 0) out.splice(i, 1);
    return out;
  }
  const entry: RosterEntry = [mac, code];
  if (i >= 0) out[i] = entry;
  else out.push(entry);
  return out;
}
