/**
 * What the meter needs from the rest of sluice, as small interfaces the daemon wires (docs/metering.md has the data
 * flow). Times are milliseconds on the Clock passed to the Meter (src/time.ts; the system clock by default), the
 * sessions' clock too.
 */
import type { UsageReport } from '../sessions/index.ts';
import type { UsageResult, UsageTask } from './task.ts';
import type { KernelUsageResult, KernelUsageTask } from './kernel-task.ts';

/** An ACTIVE session, as the meter sees it. Time sessions count too: their gates must stay open, and upstream
 *  accounting wants their octets. */
export interface MeteredSession {
  id: string;
  /** Lowercase colon form, as both portals print it. */
  mac: string;
  metric: 'bytes' | 'seconds';
  /** When the session became ACTIVE: bytes the portal counted before this are never billed. */
  startedAt: number;
  /** The session manager's slot for it (SessionManager.slotOf), passed on in UsageReport; -1 if unknown. */
  slot?: number;
}

export interface SessionsPort {
  /** The ACTIVE session of this MAC (lowercase colon form), if any. */
  active(mac: string): MeteredSession | undefined;
  /** Every ACTIVE session (gate checks, once per tick). */
  activeSessions(): Iterable<MeteredSession>;
  /**
   * A number that changes whenever active() or activeSessions() would answer differently (a session started, ended,
   * joined, left or moved). The tick keeps a slot → session index while it stays the same (slot-sessions.ts); a port
   * without it is indexed afresh every tick.
   */
  version?(): number;
  /**
   * The one usage path: entry i (i < count) adds `bytes[i]` to the session with id `ids[i]` if it is still ACTIVE, ends
   * a data session at or past its allotment with `data-limit` (which closes the gate through the gatekeeper), and
   * writes what that data session may still use into `remainingBytesOut[i]` (0 once ended or unknown, Infinity for a
   * time session). By id and in arrays: a tick at 100k clients allocates no object per client (no GC pauses), and a
   * session replaced by a new purchase since the meter looked it up gets nothing. `slots[i]`, when given, is that
   * session's MeteredSession.slot (-1: none): it saves the lookup by id while the slot still holds that id.
   */
  applyUsage(
    ids: readonly string[],
    bytes: Float64Array,
    count: number,
    remainingBytesOut: Float64Array,
    slots?: Int32Array,
  ): unknown;
  /** Bytes a data session may still use (0 once ended; Infinity for time sessions). */
  remainingBytes(sessionId: string): number;
  /**
   * The devices of a live session that has more than one (a plan's `devices`, after a join), in join order; undefined
   * for a session of one device. The kernel quota splits such a session's bytes left among them (shared-quota.ts).
   */
  sharedDevices?(sessionId: string): readonly string[] | undefined;
  /**
   * What applyUsage billed, as reports, once per tick (and per cut between ticks): the session manager tells its
   * followers (its `usage` event: the ubus event, the upstream sinks, escrow's credit). Absent: nobody is told.
   */
  reportUsage?(batch: readonly UsageReport[]): void;
}

/**
 * What the gate tells the meter (gate/gatekeeper.ts GateEvents): around every auth sluice makes, the client's counters
 * start at 0 (first-readings.ts); a started session's gate is open, its first reading is due soon; a close ended, and
 * what the portal then said of that client (the kernel mode's roster takes it instead of listing every client).
 */
export type GateFacts = {
  'auth-starting': [mac: string, sessionId: string];
  /** `ip`: the address the portal authed the client with (null: not known). */
  'auth-finished': [mac: string, sessionId: string, result: 'opened' | 'already-open' | 'failed', ip: string | null];
  opened: [session: { mac: string }];
  /**
   * A close sluice made ended; `state`: the portal's word on that client after it (null: not listed; undefined: none).
   */
  closed: [mac: string, state: string | null | undefined];
  /** A live session's gate is kept closed on purpose (escrow credit) from now (`held`), or no longer. */
  held: [mac: string, held: boolean];
};

/** The gate as the meter follows it: its facts, each told once as it happens (never asked for during a tick). */
export interface GatePort {
  on<K extends keyof GateFacts>(event: K, listener: (...args: GateFacts[K]) => void): () => void;
}

/** The portal's serialized ndsctl queue (portal/valve.ts): `fn` runs when no other portal call is in flight. */
export interface ExclusivePort {
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * A kernel tick read the portal's listing (`tookMs`): each listed client's MAC and token, flat (mac, token, …), for
   * the gate's calls by token (Valve.noteListing).
   */
  noteListing?(pairs: readonly string[], flavour: 'opennds' | 'nodogsplash', tookMs: number): void;
  /**
   * The worker's own listing of the portal was answered, or got no answer in time (false): the portal's calls pause
   * after a timeout (portal/runner.ts TimeoutBackoff).
   */
  noteFetch?(answered: boolean): void;
}

/**
 * One client's reading from the portal (`ndsctl json <mac>`); `onStart` is called when the portal takes the call (a
 * reading that waited behind a snapshot is not slow). null: the portal does not list the client.
 */
export type ReadClient = (
  mac: string,
  onStart: () => void,
) => Promise<{ downloadBytes: number; uploadBytes: number; state: string } | null>;

/** The portal's own deauths (portal/binauth-watch.ts BinauthWatch). */
export interface PortalDeauthsPort {
  /** Since when (clock ms) they are reported without a gap; undefined: not now. */
  readonly liveSince: number | undefined;
  /** How many were reported (stats). */
  readonly deauths: number;
  /** `listener` hears the MAC (canonical) of each gate the portal closed. */
  onDeauth(listener: (mac: string) => void): void;
}

/** What the meter asks of the kernel quota (portal/kernel-quota.ts). */
export interface KernelQuotaPort {
  has(mac: string): boolean;
  /** The clients whose quota is used up (their packets are dropped). */
  usedUp(): Promise<ReadonlySet<string>>;
  /**
   * Each braked client's quota as the kernel lists it now (MAC → limit and bytes counted; a quota the kernel no longer
   * lists is absent); null when it cannot be read.
   */
  quotas?(): Promise<ReadonlyMap<string, { limitBytes: number; usedBytes: number }> | null>;
  /** A fresh quota of `limitBytes` from now for a client the kernel stopped short of its allotment. */
  refill?(mac: string, limitBytes: number): Promise<void>;
  /** The client's quota given this limit in place, its count going on (a count reset behind sluice's back). */
  rearm?(mac: string, limitBytes: number): Promise<void>;
  /**
   * The limit the client's quota was last installed with (undefined: none). Its download side counts each packet's
   * 14-byte Ethernet header too (portal/kernel-quota-nft.ts), so it stops a client up to that much short: the watch
   * widens with it (brake-watch.ts).
   */
  limitOf?(mac: string): number | undefined;
  /**
   * Each client's quota set to let exactly `shareBytes` more through from now (the kernel's count so far plus the
   * share), in one read and one change: the devices of one session splitting its bytes left (shared-quota.ts).
   */
  share?(shares: ReadonlyArray<{ mac: string; shareBytes: number }>): Promise<void>;
  /** The meter billed `bytes` more for a device of a shared purchase: share() counts what the kernel saw beyond it. */
  noteBilled?(mac: string, bytes: number): void;
}

/**
 * The kernel's per-client counters (portal/kernel-counting.ts KernelCounters), as the meter uses them while they are
 * on: their dump's argv for the worker, and the few changes only the listing can ask for (meter/kernel-mode.ts).
 */
export interface KernelCountersPort {
  readonly enabled: boolean;
  /** `nft -j list table netdev sluice_count`. */
  readonly dumpArgv: string[];
  /** Changes when sluice removed a client's counters (its gate closed) or made the table again. */
  readonly changes: number;
  has(mac: string): boolean;
  count(mac: string): Promise<void>;
  rebuild(reason: string): Promise<void>;
}

/** Runs usage tasks: the Piscina pool in production, in-process in some tests. */
export interface UsageTaskRunner {
  run(task: UsageTask): Promise<UsageResult>;
  /** A tick from the kernel's counters (meter/kernel-task.ts), on the same threads; absent: the runner has none. */
  runKernel?(task: KernelUsageTask): Promise<KernelUsageResult>;
  /** Waits for running tasks, then stops the threads. */
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * One session's usage in a tick: the meter builds them, the session manager's `usage` event carries them (defined with
 * that event in sessions/, which is below meter/).
 */
export type { UsageReport };
