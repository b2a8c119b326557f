/**
 * The shapes the SessionManager is built with and answers in: its options, its events (a tick's usage reports among
 * them), a list filter, the recovery report, the report figures (as bigints and as plain numbers) and its stats. Types
 * only.
 */
import type { SluiceError } from '../errors.ts';
import type { LimitsConfig } from '../config/index.ts';
import type { EndCause, PaymentRef, Session, SessionRates, SessionState } from './model.ts';
import type { PaidEvent } from './end-replay.ts';
import type { RetentionPolicy, SessionStore } from './store.ts';
import type { Clock, Timers } from './time.ts';

export interface SessionManagerOptions {
  store: SessionStore;
  clock?: Clock;
  timers?: Timers;
  limits?: Partial<LimitsConfig>;
  /** `main.checkpoint_interval`: usage reaches the store at most this often (default 5 min). */
  checkpointIntervalMs?: number;
  retention?: Partial<RetentionPolicy>;
  /** Longest the deadline timer sleeps before re-reading the clock (default 30 s). */
  maxSleepMs?: number;
  /** How often end records the store refused are retried (default 5 s). */
  endRetryMs?: number;
  /**
   * A plan's speed tier (`rate_down`/`rate_up`), null when it has none or is unknown: what a new session of that plan
   * gets unless its grant brings its own, and what a session journaled before sessions carried rates gets at recovery.
   */
  planRates?: (plan: string) => SessionRates | null;
}

export type SessionEvents = {
  /**
   * A new session's purchase is being written (the session PENDING): nobody may be told of it yet, but the gate may
   * begin its kernel change now, to be done when `started` comes, and must undo it on `unsold`.
   */
  selling: [session: Session];
  /** A purchase whose `selling` was emitted was refused by the store: its session is gone, it never started. */
  unsold: [session: Session];
  started: [session: Session];
  topup: [session: Session, payment: PaymentRef];
  /** A live session's limits set anew (setLimits: a RADIUS CoA-Request or ubus `change`), not ended by them. */
  limits: [session: Session];
  /** A live session's speed tier set anew (setRates), on flash already: the gate sets it in the kernel. */
  rates: [session: Session];
  /** A live session now belongs to another MAC (move(): on flash already); `from` is the MAC it left. */
  moved: [session: Session, from: string];
  /**
   * The session ended: at once, before its end record is on flash (the gate must close, the meter stop billing it,
   * whether or not the write succeeds). What announces the end outside (RADIUS Stop, the ubus event, the hook, MQTT)
   * waits for `end-written`: a crash before the write brings the session back ACTIVE, and an announced end must not.
   */
  ended: [session: Session];
  /**
   * The session's end record is durable (its first write, or a retry after the store refused it): once per end, never
   * for an end never written. Not emitted for the ends recover() makes (the sinks read those from recovered()).
   */
  'end-written': [session: Session];
  /** A device joined a multi-device session (on flash): the gate opens for `mac`, the meter bills it to the session. */
  joined: [session: Session, mac: string];
  /** A joined device was removed (on flash): its gate closes; the session and its other devices go on. */
  left: [session: Session, mac: string];
  /**
   * What the meter billed (applyUsage) in one tick or one cut between ticks, as it reports it (reportUsage): the ubus
   * `usage` event, the upstream sinks' reports and escrow's credit follow this one event.
   */
  usage: [batch: readonly UsageReport[]];
  /**
   * Usage now on flash (a checkpoint or the session's end record holds it), summed per session since the last such
   * write, with each session's figures as written: what upstream is told (usage-hold.ts).
   */
  'usage-written': [batch: readonly UsageReport[], at: number, figures: ReadonlyMap<string, SessionNumbers>];
  /** Problems that did not stop the manager: a failed checkpoint or end record, a throwing listener, recovery notes. */
  warning: [err: SluiceError];
};

/**
 * One session's usage in a tick, as the meter bills and reports it (the `usage` event carries a batch of them; the
 * publisher turns it into `sluice.session {event:'usage', …}`). Defined here, with the event: sessions/ is below
 * meter/.
 */
export interface UsageReport {
  mac: string;
  sessionId: string;
  /**
   * The session's slot in the session manager (-1 or absent: none): readers of the batch pass it to
   * SessionManager.figuresInto, which then finds the session by index instead of by id.
   */
  slot?: number;
  metric: 'bytes' | 'seconds';
  /** Bytes added this tick (download + upload; IP-level, as the portal counts them). */
  deltaBytes: number;
  deltaDownloadBytes: number;
  deltaUploadBytes: number;
  /** Data sessions: bytes left after this tick (Infinity for time sessions). */
  remainingBytes: number;
  /** A data session that reached its allotment this tick: applyUsage ended it with data-limit. */
  exhausted: boolean;
  /**
   * Part of deltaBytes (counted as download) not read but billed ahead: the session's remainder, which passes while its
   * gate closes (Meter option closeLatencyMs). Absent when every byte was read.
   */
  billedAheadBytes?: number;
  /** With billedAheadBytes: the rate (bytes/ms) and close latency (ms) the decision used, for the log. */
  cutRate?: number;
  cutCloseMs?: number;
  /** With billedAheadBytes: the kernel quota stopped the client (the bytes billed ahead are what it kept back). */
  stoppedByKernel?: true;
}

export interface SessionFilter {
  state?: SessionState;
  user?: string;
  mac?: string;
}
/**
 * `ended`: what recovery ended (it ran out while sluice was down). `lastEnds`: ends already on flash that were written
 * within UNANNOUNCED_WINDOW_MS (end-replay.ts) of the newest one: announcements follow the durable end, so a crash
 * right after an end's write can leave it unannounced; the sinks' end marks drop those they did announce.
 */
export interface RecoveryReport {
  active: Session[];
  ended: Session[];
  lastEnds: Session[];
  /** Payments written within UNANNOUNCED_WINDOW_MS of the newest one, for the same reason (end-replay.ts). */
  lastPayments: PaidEvent[];
  warnings: SluiceError[];
}
/** What an upstream report says about a session (figuresOf): totals in the metric's unit, bytes whatever the metric. */
export interface SessionFigures {
  user: string | null;
  metric: Session['metric'];
  allotment: bigint;
  used: bigint;
  remaining: bigint;
  bytes: bigint;
  state: SessionState;
}
/** SessionFigures as plain numbers, filled in place by figuresInto (exact below 2^53; a larger allotment or remainder
 * is reported as MAX_COUNTER, 2^53 - 1). */
export interface SessionNumbers {
  user: string | null;
  allotment: number;
  used: number;
  remaining: number;
  bytes: number;
  state: SessionState;
}
export interface SessionStats {
  live: number;
  pending: number;
  active: number;
  activeTime: number;
  activeData: number;
  retainedEnded: number;
  started: number;
  toppedUp: number;
  ended: Partial<Record<EndCause, number>>;
  rejectedDeltas: number;
  checkpoints: number;
  /**
   * Ends not yet on flash (the store refused them; retried): after a restart now these sessions would be live again.
   */
  unwrittenEnds: number;
}
