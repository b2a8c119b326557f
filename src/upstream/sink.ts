/**
 * The one interface every upstream sink (RADIUS accounting, MQTT) implements, and the events it hears (an escrow close
 * among them: the x402-session payment method settles with its facilitator itself, the sinks only report the close).
 * A sink never blocks purchases or metering: onEvent is synchronous and returns at once (queue, then send in the
 * background); what must not be lost goes through an Outbox (outbox.ts) before anything is sent.
 */
import type { Config, ConfigProblem } from '../config/index.ts';
import type { PaymentRef, Session, SessionFigures, SessionNumbers, SessionRates } from '../sessions/index.ts';

export type { SessionFigures, SessionNumbers };
import type { UsageReport } from '../meter/index.ts';

export type SinkEvent =
  | { type: 'started'; at: number; session: Session }
  | { type: 'topup'; at: number; session: Session; payment: PaymentRef }
  | { type: 'ended'; at: number; session: Session }
  /**
   * A live session's speed tier set anew (ubus `change`, MQTT's `change` command, a RADIUS CoA-Request), journaled and
   * set in the kernel: `session.rates` the new rates, `previous` the ones before (null: none), `by` who asked.
   */
  | { type: 'rates'; at: number; session: Session; previous: SessionRates | null; by: RateChangeOrigin }
  /**
   * An escrow session (payment method x402-session) was closed on chain, usually `escrow.close_grace` after its
   * sluice session ended: what the seller was paid and the buyer got back. `session` is null when the journal no
   * longer holds the sluice session (a close retried for long).
   */
  | { type: 'escrow-closed'; at: number; session: Session | null; mac: string; escrow: EscrowClosed }
  /**
   * One per meter tick with usage; `figures` reads a session's live totals, `figuresInto` the same as numbers into a
   * reused object (the hot path: one call per billed session per tick; pass the report's `slot` when it has one).
   * Call them inside onEvent.
   */
  | {
      type: 'usage';
      at: number;
      usage: readonly UsageReport[];
      figures: (sessionId: string) => SessionFigures | null;
      figuresInto: (sessionId: string, out: SessionNumbers, slot?: number) => boolean;
    };

/**
 * Who changed a session's rates: ubus `change` (LuCI, the CLI), MQTT's signed `change` command, a RADIUS CoA-Request.
 */
export type RateChangeOrigin = 'ubus' | 'mqtt' | 'coa';

/** The figures of an escrow close (amounts in the asset's smallest unit, decimal strings). */
export interface EscrowClosed {
  sessionId: string;
  units: string;
  transaction: string | null;
  sellerAmount: string;
  buyerRefund: string;
}

export type SinkStats = Record<string, unknown>;

export interface UpstreamSink {
  /** Short and stable: the key under `stats.upstream` and in log lines (`mqtt`, `radius`). */
  readonly name: string;
  /**
   * Opens local state (its outbox) and starts connecting in the background; an unreachable peer is not an error.
   * `atStart`: started with the daemon, not by a reload: its local state is read synchronously (storage/file-calls.ts),
   * where each thread-pool hop only costs CPU.
   */
  start(options?: { atStart?: boolean }): Promise<void>;
  /** Hears every session event once, in order. Must return at once; a throw is logged and ignored by the host. */
  onEvent(event: SinkEvent): void;
  /**
   * Applies a new config after a reload (the host calls it only when loading succeeded). Returns what it could not
   * apply (a listener's port in use), for the reload's reply beside the file's own problems.
   */
  reload?(config: Config): Promise<readonly ConfigProblem[] | void>;
  /** Plain JSON-able figures for `ubus call sluice stats` (never secrets). */
  stats(): SinkStats;
  /** Drains: flushes queued records to flash, says goodbye to the peer within a short bound. Idempotent. */
  close(): Promise<void>;
  /** A venue claim to the fleet (roaming.md), published now: false when this sink cannot (not MQTT, no connection). */
  publishVenue?(body: Record<string, unknown>): boolean;
  /**
   * Publishes the router's online status now (a venue lease's renewal, upstream/venue-lease.ts) when connected, and
   * counts its next beat from it.
   */
  statusNow?(): void;
  /** Aborts: drops connections at once (queued records stay on flash). Idempotent. */
  destroy(): void;
}
