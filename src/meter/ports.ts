/**
 * What the meter needs from the rest of sluice, as small interfaces the daemon wires (docs/performance.md has the data
 * flow). Times are milliseconds on the clock passed to the Meter (Date.now by default), the sessions' clock too.
 */
import type { UsageResult, UsageTask } from './task.ts';

/** An ACTIVE session, as the meter sees it. Time sessions matter too: their gates must stay open. */
export interface MeteredSession {
  id: string;
  /** Lowercase colon form, as both portals print it. */
  mac: string;
  metric: 'bytes' | 'seconds';
  /** When the session became ACTIVE: bytes the portal counted before this are never billed. */
  startedAt: number;
  /** Data sessions: bytes used so far and bytes bought (top-ups included). Ignored for time sessions. */
  usedBytes: number;
  allotmentBytes: number;
}

export interface SessionsPort {
  activeSessions(): Iterable<MeteredSession>;
  /**
   * Adds bytes to the active data sessions of these MACs and ends those at or past their allotment with `data-limit`
   * (which closes the gate through the valve). MACs without an active data session are ignored.
   */
  applyUsage(deltas: Iterable<readonly [mac: string, bytes: number]>): unknown;
}

/** The valve's serialized ndsctl queue: `fn` runs when no other portal call is in flight. */
export interface ExclusivePort {
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** Runs usage tasks: the Piscina pool in production, in-process in some tests. */
export interface UsageTaskRunner {
  run(task: UsageTask): Promise<UsageResult>;
  /** Waits for running tasks, then stops the threads. */
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** One data session's usage in a tick (the lead turns a batch into `sluice.session {event:'usage', …}`). */
export interface UsageReport {
  mac: string;
  sessionId: string;
  /** Bytes added this tick (download + upload). */
  deltaBytes: number;
  deltaDownloadBytes: number;
  deltaUploadBytes: number;
  /** Session totals after this tick. */
  usedBytes: number;
  allotmentBytes: number;
  remainingBytes: number;
  /** usedBytes >= allotmentBytes: applyUsage ended it with data-limit. */
  exhausted: boolean;
}
