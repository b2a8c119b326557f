/**
 * The `sluice.session` ubus event contract (docs/ubus-api.md "Events"): one table of the sessions' kinds and their
 * payloads, and the publisher that follows the sessions (the meter's usage among their events) and the gate's closes
 * and sends them (with the matching log lines, so logread tells the same story as `ubus listen`), beside the events a
 * payment method announces of its own (PluginHost.announce: escrow's holds, releases and closes).
 * Events are best effort (`ubus send`): while ubus is down they are dropped, never queued; what must not be lost goes
 * to the upstream outbox instead.
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { systemClock, type Clock } from '../time.ts';
import type { PaymentRef, SessionEventsView, SessionFiguresView } from '../sessions/index.ts';
import type { BlobmsgTable, BlobmsgValue, UbusClient } from '../ubus/index.ts';
import type { GateCloseState, RatesChanged } from './backend.ts';
import { GATE_REPLY_WAIT_MS, waitForClose, waitForOpen } from './daemon-backend.ts';
import type { Gatekeeper } from '../gate/index.ts';
import { sessionView } from './view.ts';

export const SESSION_EVENT = 'sluice.session';
/** Sessions per `usage` event: keeps each ubus message far below the 1 MiB limit (~120 bytes per entry). */
export const USAGE_EVENT_CHUNK = 1000;

/** One session's line of a `usage` event. */
export interface UsageEntry {
  id: string;
  mac: string;
  metric: 'bytes' | 'seconds';
  /** Bytes read this tick. */
  delta: number;
  used: string | null;
  remaining: string | null;
  exhausted: boolean;
}

/** Each kind's payload besides `event` (sessionView tables for `session`). */
export interface SessionEventPayloads {
  started: { session: BlobmsgTable };
  topup: { session: BlobmsgTable; payment: { method: string; reference: string; amount: string; asset: string } };
  ended: { session: BlobmsgTable; gate: GateCloseState };
  /** A live session now on another MAC (ubus `move`, a restore on the pay page); `from` is the MAC it left. */
  moved: { session: BlobmsgTable; from: string };
  /** A live session's speed tier set anew (`session` has the new rate_down/rate_up); who asked: ubus, mqtt, coa. */
  rates: { session: BlobmsgTable; previous: { rate_down: number | null; rate_up: number | null }; by: string };
  usage: { sessions: UsageEntry[] };
}
export type SessionEventKind = keyof SessionEventPayloads;
export const SESSION_EVENT_KINDS = [
  'started',
  'topup',
  'ended',
  'moved',
  'rates',
  'usage',
] as const satisfies readonly SessionEventKind[];

/** The table sent for one event: `{event: kind, ...payload}`. */
export function sessionEvent<K extends SessionEventKind>(kind: K, payload: SessionEventPayloads[K]): BlobmsgTable {
  return { event: kind, ...(payload as unknown as Record<string, BlobmsgValue>) };
}

/** What the meter reports per billed session (meter's UsageReport: the fields the event and the log lines show). */
export interface UsageFact {
  sessionId: string;
  mac: string;
  metric: 'bytes' | 'seconds';
  deltaBytes: number;
  exhausted: boolean;
  /** A cut between readings: the remainder billed ahead of the reading (or left by the kernel quota's stop). */
  billedAheadBytes?: number;
  stoppedByKernel?: boolean;
  cutRate?: number;
  cutCloseMs?: number;
}

export interface EventPublisherOptions {
  ubus: Pick<UbusClient, 'state' | 'send'>;
  sessions: SessionEventsView & Pick<SessionFiguresView, 'usageOf'>;
  /**
   * The `started` event waits (bounded) for the session's gate opening; the `ended` event for the gate's close, and
   * says how it went.
   */
  gates: Pick<Gatekeeper, 'opened' | 'closed'>;
  log: Log;
  clock?: Clock;
  gateWaitMs?: number;
}

export class EventPublisher {
  private readonly clock: Clock;
  /** Each session's `started` line and event not yet out, to tell now: a later one of its own tells them first. */
  private readonly starting = new Map<string, () => void>();
  /** The `started` lines and events due, told together in one turn: their frames leave in one write. */
  private readonly due: Array<() => void> = [];

  constructor(private readonly options: EventPublisherOptions) {
    this.clock = options.clock ?? systemClock;
    const { sessions, gates, log } = options;
    const waitMs = options.gateWaitMs ?? GATE_REPLY_WAIT_MS;
    // `started` is emitted once the sale is on flash; its line and event then wait for the session's gate opening
    // (bounded, as the purchase's reply does) and the replies of that moment: building and encoding them is off the
    // opening's path, and the openings of a burst reach nft together. The opening is looked up once every listener
    // of the emit ran (the gate's begins it). A later event of the session sends them at once, before its own.
    sessions.on('started', (s) => {
      const at = this.clock.now();
      const tell = (): void => {
        if (this.starting.get(s.id) !== tell) return;
        this.starting.delete(s.id);
        log.info('session started', {
          id: s.id,
          mac: s.mac,
          metric: s.metric,
          allotment: s.allotment,
          user: s.user ?? undefined,
        });
        this.send('started', { session: sessionView(s, at) });
      };
      this.starting.set(s.id, tell);
      // An opening that failed outright sends them too (its failure is the gate's to tell).
      void Promise.resolve()
        .then(() => waitForOpen(gates, s, waitMs))
        .catch(() => undefined)
        .then(() => this.tellSoon(tell));
    });
    sessions.on('topup', (s, payment: PaymentRef) => {
      this.startedFirst(s.id);
      log.info('session topped up', { id: s.id, mac: s.mac, allotment: s.allotment, method: payment.method });
      this.send('topup', {
        session: sessionView(s, this.clock.now()),
        payment: {
          method: payment.method,
          reference: payment.reference,
          amount: payment.amount.toString(),
          asset: payment.asset,
        },
      });
    });
    sessions.on('moved', (s, from) => {
      this.startedFirst(s.id);
      log.info('session moved', { id: s.id, from, mac: s.mac });
      this.send('moved', { session: sessionView(s, this.clock.now()), from });
    });
    sessions.on('ended', (s) => {
      this.startedFirst(s.id);
      log.info('session ended', {
        id: s.id,
        mac: s.mac,
        state: s.state,
        cause: s.endCause,
        used: s.used,
        allotment: s.allotment,
      });
    });
    // The event goes out once the end is on flash (a crash before that brings the session back ACTIVE: no event may
    // have said it ended), and once the portal answered the deauth (bounded wait), so it says whether the gate closed.
    sessions.on('end-written', (s) => {
      void waitForClose(gates, s.mac, waitMs).then((gate) => {
        this.send('ended', { session: sessionView(s, this.clock.now()), gate });
      });
    });
    sessions.on('usage', (batch) => this.usage(batch));
  }

  /** After the I/O due now (the replies of the moment go first), with the others due then. */
  private tellSoon(tell: () => void): void {
    this.due.push(tell);
    if (this.due.length === 1) setImmediate(() => this.due.splice(0).forEach((t) => t()));
  }

  /** A session's `started` line and event, at once if not out yet: none of its own goes before them. */
  private startedFirst(id: string): void {
    this.starting.get(id)?.();
  }

  /** A rate change went through the change path (DaemonBackend's `ratesChanged`): one log line, one event. */
  rates({ session: s, previous, by }: RatesChanged): void {
    this.startedFirst(s.id);
    this.options.log.info('session rates changed', {
      id: s.id,
      mac: s.mac,
      by,
      down: s.rates?.downBps ?? null,
      up: s.rates?.upBps ?? null,
      was_down: previous?.downBps ?? null,
      was_up: previous?.upBps ?? null,
    });
    this.send('rates', {
      session: sessionView(s, this.clock.now()),
      by,
      previous: { rate_down: previous?.downBps ?? null, rate_up: previous?.upBps ?? null },
    });
  }

  /** A payment method's own event (its kind and payload its own: docs/ubus-api.md lists them), sent as it is given. */
  method(kind: string, payload: object): void {
    this.sendTable({ event: kind, ...(payload as Record<string, BlobmsgValue>) });
  }

  /**
   * One `usage` event per tick (the sessions' `usage`), in chunks far below ubus's 1 MiB message limit; each chunk
   * is built in its own event-loop turn so a tick with tens of thousands of billed sessions never holds the main
   * thread for long.
   */
  usage(batch: readonly UsageFact[]): void {
    if (this.starting.size > 0) for (const u of batch) this.startedFirst(u.sessionId);
    this.logCuts(batch);
    if (batch.length === 0 || this.options.ubus.state !== 'ready') return;
    const sendChunk = (from: number): void => {
      const now = this.clock.now();
      const end = Math.min(batch.length, from + USAGE_EVENT_CHUNK);
      const sessions: UsageEntry[] = [];
      for (let i = from; i < end; i++) {
        const u = batch[i]!;
        const figures = this.options.sessions.usageOf(u.sessionId, now);
        sessions.push({
          id: u.sessionId,
          mac: u.mac,
          metric: u.metric,
          delta: u.deltaBytes,
          used: figures ? figures.used.toString() : null,
          remaining: figures ? figures.remaining.toString() : null,
          exhausted: u.exhausted,
        });
      }
      this.send('usage', { sessions });
      if (end < batch.length) setImmediate(sendChunk, end);
    };
    sendChunk(0);
  }

  /** The meter's cuts between readings (billed ahead, or stopped by the kernel quota), one line each. */
  private logCuts(batch: readonly UsageFact[]): void {
    const { log } = this.options;
    for (const u of batch) {
      if (u.billedAheadBytes === undefined) continue;
      const fields = {
        mac: u.mac,
        session: u.sessionId,
        billed_ahead: u.billedAheadBytes,
        read: u.deltaBytes - u.billedAheadBytes,
      };
      if (u.stoppedByKernel) log.info('stopped by the kernel quota', fields);
      else
        log.info('cut at the crossing', {
          ...fields,
          rate_kib_s: Math.round(((u.cutRate ?? 0) * 1000) / 1024),
          close_ms: Math.round(u.cutCloseMs ?? 0),
        });
    }
  }

  send<K extends SessionEventKind>(kind: K, payload: SessionEventPayloads[K]): void {
    this.sendTable(sessionEvent(kind, payload));
  }

  private sendTable(table: BlobmsgTable): void {
    const { ubus, log } = this.options;
    if (ubus.state !== 'ready') return;
    ubus.send(SESSION_EVENT, table).catch((err: unknown) => {
      log.debug('event not sent', { reason: toSluiceError(err).message });
    });
  }
}
