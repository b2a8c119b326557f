/**
 * The Meter's contract with the daemon: what `new Meter({...})` takes, what it tells (MeterEvents) and what each tick
 * reports. The option names are the daemon's and the bench's; each part of the meter (tick-loop, cut-planner,
 * brake-watch, first-readings, gate-checks, blind-watch) reads the few it uses.
 */
import type { SluiceError } from '../errors.ts';
import type { Clock, Timers } from '../time.ts';
import type { Log } from '../log.ts';
import type {
  ExclusivePort,
  GatePort,
  KernelCountersPort,
  KernelQuotaPort,
  PortalDeauthsPort,
  ReadClient,
  SessionsPort,
  UsageReport,
  UsageTaskRunner,
} from './ports.ts';
import type { PortalFlavour as Flavour } from '../portal/index.ts';
import type { CounterMark } from './table.ts';
import type { SkipReason, TaskSource } from './task.ts';

export interface MeterOptions {
  /** Where the worker fetches snapshots: `{kind:'command', argv: main.ndsctl}` or `{kind:'socket', path}`. */
  source: TaskSource;
  /** `main.portal`: 'auto' detects the format per snapshot. */
  flavour?: Flavour | 'auto';
  /** `main.poll_interval`. */
  pollIntervalMs: number;
  /** `main.ndsctl_timeout`: bound on one fetch (busy retries included). Default 5000. */
  fetchTimeoutMs?: number;
  /** The most bytes one snapshot may have (`main.portal_output_max`); default 32 MiB (output-bound.ts). */
  maxSnapshotBytes?: number;
  /**
   * Adaptive precision never ticks more often than this, nor more often than twice the last tick's duration (so the
   * meter never spends more than half its time ticking). Default 20 ms.
   */
  minIntervalMs?: number;
  /**
   * The gate, followed: its auth events (counters from 0 at an auth sluice made, a started session's first reading
   * soon), and its held gates (escrow credit: Gatekeeper.hold) — a held live session shown open by the portal is
   * reported with the open unpaid clients, so the gate's enforce closes it again like any gate that did not take.
   */
  gate?: GatePort;
  /** Where the meter's errors (warn) and skipped ticks (debug) are logged. */
  log?: Log;
  /**
   * A data session's first reading after its gate opened is taken this soon (no blind first interval), unless the
   * kernel quota stops it (a time session's first reading waits for the poll interval too). Default 1000.
   */
  firstReadingMs?: number;
  /**
   * The fastest a client is assumed able to go (bytes/s) until a faster one is seen: a data session is read again no
   * later than its remaining bytes would last at that rate, so a client that was idle at its last reading (or at its
   * first) and then downloads at full speed cannot run far past its allotment unseen. Default 12.5e6 (100 Mbit/s).
   */
  peakRateBytesPerS?: number;
  /**
   * How long a gate takes to close after the reading that ends its session (the reading's share of a fetch, applying
   * it, the deauth until the portal stops the client's traffic). A data session whose remaining bytes would pass in
   * that time at its own rate is ended at that reading, its remainder billed ahead: the bytes that pass while the gate
   * closes fill the allotment instead of running past it. Default: closeOf(the median of the last five fetches).
   */
  closeLatencyMs?: () => number;
  /**
   * One client's reading (`ndsctl json <mac>`, ranked after the deauths, before the snapshots): the final reading of a
   * cut between ticks. Without it that reading is a whole tick. On openNDS a snapshot runs a script per client
   * (get_client_interface.sh) after reading the counters, so one client's reading is fresher and cheaper than a tick's
   * by the number of clients.
   */
  readClient?: ReadClient;
  /**
   * The kernel quota (portal/kernel-quota.ts): the kernel itself stops a client with one at its allotment, so its data
   * session is never billed ahead or cut on a prediction: it is read just after its predicted crossing and ended when
   * its quota is used up (billing the few bytes the kernel's last dropped packet left, at most one segment).
   */
  kernelQuota?: KernelQuotaPort;
  /**
   * The kernel's per-client counters (portal/kernel-counting.ts), started and on: each tick then reads usage from one
   * `nft -j` dump without the portal's queue, and lists the portal only when meter/listing-policy.ts says so
   * (meter/kernel-mode.ts). `readClient` is then not used: a final reading is a tick, which costs the portal nothing.
   * Ticks list the portal every time again if the counters turn off.
   */
  kernelCounters?: KernelCountersPort;
  /** The portal's control socket as device:inode (undefined: none), read each kernel tick: a new one is a restart. */
  portalIdentity?: () => string | undefined;
  /**
   * The kernel's neighbour table's text (`/proc/net/arp`; null: unreadable), read at most every few seconds by a
   * kernel tick: a paying client on an address the portal has not listed it with is a reason to list it
   * (meter/address-watch.ts).
   */
  neighbours?: () => Promise<string | null>;
  /**
   * The portal's own deauths as they happen (portal/binauth-watch.ts: its idle and session timeouts, an admin's
   * `ndsctl deauth`): on the kernel's counters a paying client's is reported for re-opening, and a paying client whose
   * counters stopped while they are reported is no reason to list.
   */
  portalDeauths?: PortalDeauthsPort;
  sessions: SessionsPort;
  /** The valve: the worker's fetch runs inside runExclusive, so no ndsctl auth overlaps a snapshot. */
  portal?: ExclusivePort;
  /** Pool settings (ignored when `runner` is given). */
  workers?: number;
  workerPath?: string | URL;
  workerExecArgv?: string[];
  runner?: UsageTaskRunner;
  clock?: Clock;
  timers?: Timers;
  /** Initial table capacity (clients); it grows on demand. */
  initialCapacity?: number;
  /**
   * Counter readings persisted with the last usage checkpoint (sessions' meterMark), by MAC: after a restart the meter
   * continues those epochs, so the bytes that passed while sluice was down are billed.
   */
  initialMarks?: ReadonlyArray<readonly [mac: string, mark: CounterMark]>;
  /** A paying client seen unauthenticated is reported for re-opening at most this often. Default 5000. */
  reopenBackoffMs?: number;
  /**
   * Sessions younger than this are not judged gone/closed. Default 0: a session whose gate is being opened is told
   * apart by `authStarting`/`authFinished`, not by age (an age-based grace delayed the gate of a client the portal
   * had not listed yet by that long).
   */
  newSessionGraceMs?: number;
}

/**
 * What the meter tells (Meter.on): its facts; what they mean for a gate is the gate's to decide (Gatekeeper.follow).
 * A throwing listener is reported as an `error` and stops neither the others nor the tick.
 */
export type MeterEvents = {
  /** After every tick (skipped ones too): the full report, including `gone` for the portal-lost grace period. */
  tick: [report: TickReport];
  /** A paying client is back in the portal but not authenticated (portal restart, idle timeout): re-open its gate. */
  'paying-client-needs-gate': [mac: string];
  /**
   * The safety net for a portal whose auth takes no limits (nodogsplash): metering has lagged (no reading for two poll
   * intervals) past the moment these data sessions could have used up what they had left (at twice their last rate,
   * or the peak rate): their gates should close now. Their sessions stay ACTIVE; once readings resume, the gate is
   * re-opened like any paying client's (`paying-client-needs-gate`). `flavour`: the portal's (`main.portal`, or the
   * one the snapshots showed when 'auto'). Checked every poll interval once started, if anyone follows it then.
   */
  'metering-overdue': [macs: string[], flavour: string];
  error: [err: SluiceError];
};

export interface TickReport {
  tick: number;
  ok: boolean;
  skipped?: SkipReason;
  message?: string;
  clients: number;
  usage: UsageReport[];
  /** Paying clients present but not authenticated: re-open (each was told as `paying-client-needs-gate`). */
  reopen: string[];
  /** Paying clients absent from the portal (portal-lost grace applies); `goneSince(mac)` says since when. */
  gone: string[];
  /**
   * Clients this snapshot showed with an open gate (Authenticated, AuthBlocked; never Trusted) and no ACTIVE session:
   * the gatekeeper closes them (Gatekeeper.enforce). Empty for a skipped tick.
   */
  openUnpaid: string[];
  /**
   * When the portal's states this tick reports were read (clock ms): the snapshot's dispatch, or on the kernel's
   * counters the last listing's. A close that ended after this is not judged by it.
   */
  at: number;
  /** Deltas of clients without an active data session, dropped. */
  dropped: number;
  /** Deltas of sessions whose previous reading predates their start, dropped (the purchase baseline). */
  baselined: number;
  durationMs: number;
  /** Worker: fetching the snapshot, then scanning + accounting it; main thread: applying the result. */
  fetchMs: number;
  scanMs: number;
  applyMs: number;
  /** Delay chosen for the next tick (shorter than poll_interval when a session is about to run out). */
  nextInMs: number;
}
