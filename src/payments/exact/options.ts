/**
 * The x402 `exact` method's options and timing, the sessions port its resolver grants through, the resolver's report.
 */
import type { Log } from '../../log.ts';
import type { Clock, Timers } from '../../time.ts';
import type { X402Config } from '../../config/index.ts';
import type { Grant, PaymentRef, Session } from '../../sessions/index.ts';

/** validBefore must leave the facilitator this long to land the transfer (x402's facilitators use 6 s). */
export const WINDOW_MARGIN_SECONDS = 6n;
/** How often pending purchases are resolved while any exist. */
export const RESOLVE_INTERVAL_MS = 5000;

export interface X402SessionsPort {
  activate(grant: Grant): Promise<{ session: Session; toppedUp: boolean }>;
  isApplied(payment: Pick<PaymentRef, 'method' | 'reference'> | null): boolean;
}

export interface X402MethodOptions {
  config: X402Config;
  stateDir: string;
  /** Sessions: the resolver grants purchases whose settle was confirmed late. */
  sessions: X402SessionsPort;
  log?: Log;
  clock?: Clock;
  /** The resolver's retry timer; by default one that never keeps the daemon alive on its own. */
  timers?: Timers;
  /** Opened at the daemon's start (PluginHost.atStart): its store is read synchronously. */
  atStart?: boolean;
}

export interface ResolveReport {
  granted: number;
  /** Failed or void: no money reached pay_to. */
  failed: number;
  pending: number;
  /** Kept undecided until a chain lookup (x402.rpc_url) decides them. */
  unconfirmed: number;
}
