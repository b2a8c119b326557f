/**
 * What every part of the meter shares: the sessions port, one clock and timers, the meter's events and reports, and
 * its state; the one way any of them bills bytes (billUsage); what an open gate is in the counter table.
 */
import { SluiceError } from '../errors.ts';
import { GATE_OPEN_STATES, STATE_CODES } from '../portal/index.ts';
import type { Clock, Timers } from '../time.ts';
import type { MeterEvents } from './options.ts';
import type { SessionsPort, UsageReport } from './ports.ts';

export type MeterState = 'idle' | 'running' | 'closing' | 'closed';

export interface MeterContext {
  readonly sessions: SessionsPort;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly pollIntervalMs: number;
  /** Set by the Meter only; the parts read it (a reading that answers after close is dropped). */
  state: MeterState;
  /** Tells the meter's followers (MeterEvents); usage and errors go through onUsage and onError. */
  emit<K extends 'tick' | 'paying-client-needs-gate'>(event: K, ...args: MeterEvents[K]): void;
  /** Billed usage: the sessions port's reportUsage (the sessions' `usage` event), the shared sessions' quotas. */
  onUsage(batch: UsageReport[]): void;
  /** Logged and told as the meter's `error` event. */
  onError(err: SluiceError): void;
  /** Ticks as soon as possible (after the tick in flight, if any). */
  requestTick(): void;
}

/** Closing or closed: late answers (a final reading, the kernel's) are not acted on. */
export function stopping(ctx: MeterContext): boolean {
  return ctx.state === 'closing' || ctx.state === 'closed';
}

/**
 * Bills entries [0, count) through the sessions port (SessionsPort.applyUsage) and fills `remainingBytesOut`. A throw
 * is reported and loses these bytes rather than ever counting them twice (the table is already committed); returns
 * false then.
 */
export function billUsage(
  ctx: MeterContext,
  ids: readonly string[],
  bytes: Float64Array,
  count: number,
  remainingBytesOut: Float64Array,
  slots?: Int32Array,
): boolean {
  try {
    ctx.sessions.applyUsage(ids, bytes, count, remainingBytesOut, slots);
    return true;
  } catch (err) {
    ctx.onError(new SluiceError('ERR_METER_APPLY', 'applying usage to sessions failed', { cause: err }));
    return false;
  }
}

/** The table's state codes of an open gate (Authenticated, AuthBlocked: GATE_OPEN_STATES). */
export const OPEN_GATE_CODES: ReadonlySet<number> = new Set(GATE_OPEN_STATES.map((name) => STATE_CODES[name]));
