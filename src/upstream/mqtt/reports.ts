/**
 * What the MQTT sink queues in its outbox for each session event: a tick's usage report (droppable, split under
 * mqtt.max_payload, its parts in one batch) and the session messages (durable: started, topup, rates, ended, escrow
 * closed).
 * A session's `ended` message is queued once, ever (end-marks.ts), also for the sessions the daemon's recovery ended.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttConfig } from '../../config/index.ts';
import { toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { PaidEvent, Session } from '../../sessions/index.ts';
import type { Clock } from '../../time.ts';
import { EndMarks } from '../end-marks.ts';
import type { Outbox } from '../outbox.ts';
import type { SinkEvent } from '../sink.ts';
import { decode, escrowClosedMessage, ratesMessage, RECORD_TYPE, sessionMessage, usageParts } from './messages.ts';
import { MsgpackWriter, RowPrefixes } from './writer.ts';

export interface ReportsDeps {
  log: Log;
  clock: Clock;
  /** The running config's say in what is written (read per event: a reload may change it). */
  settings: () => { format: MqttConfig['format']; routerId: string; maxPayload: number };
  /** Sessions the daemon's recovery ended (they ran out while it was down): their `ended` message is due. */
  recovered?: () => { ended: readonly Session[]; payments?: readonly PaidEvent[] };
  /** A session the session manager still knows (live or retained), for how long an `ended` mark is kept. */
  session?: (id: string) => Session | null;
  /** A session's handover within its venue (roaming.md), carried by its `started`/`ended` message. */
  moved?: (session: Session) => Record<string, unknown> | null;
}

/** The consumer name the sink reads its outbox as. */
export const MQTT_CONSUMER = 'mqtt';

export class MqttReports {
  private outbox: Outbox | undefined;
  /** Sessions whose `ended` message is queued or sent: none gets a second. */
  private ended: EndMarks | undefined;
  /** Payments whose `started`/`topup` message is queued or sent (paymentKey): the restart's replay skips them. */
  private paid: EndMarks | undefined;
  /** Each reported session's encoded [id, mac, user, metric] (messages.ts UsageInput.prefixes), until it ends. */
  private readonly rowPrefixes = new RowPrefixes();
  /** The buffer each tick's usage report is built in (messages.ts UsageInput.writer): the outbox keeps no payload. */
  private readonly usageWriter = new MsgpackWriter(64 * 1024);
  readonly counters = { usage_reports: 0, usage_messages: 0, session_events: 0, queue_failures: 0 };

  constructor(private readonly deps: ReportsDeps) {}

  /**
   * Starts queueing into `outbox`; the end and payment marks live in `dir`. Queues the recovered sessions' `ended`
   * messages, and the `started`/`topup` of the payments written just before the stop that were never queued.
   */
  open(outbox: Outbox, dir: string): void {
    this.outbox = outbox;
    const known = (id: string) => this.deps.session?.(id) !== null;
    const queued = this.queuedSessionMessages();
    this.ended = EndMarks.open(join(dir, 'ended'), queued.ends, known);
    // No file yet: a version that kept no payment marks ran before, so none can tell what it announced.
    const marked = existsSync(join(dir, 'paid'));
    this.paid = EndMarks.open(join(dir, 'paid'), queued.payments, (key) => known(key.slice(0, key.indexOf('/'))));
    const recovered = this.deps.recovered?.();
    for (const p of recovered?.payments ?? [])
      if (marked && !this.paid.has(paymentKey(p.session.id, p.payment)))
        this.queueSessionEvent(p.event, p.session, p.payment.at, p.payment);
    for (const s of recovered?.ended ?? []) this.queueSessionEvent('ended', s, s.endedAt ?? this.deps.clock.now());
  }

  /** `accepting`: whether the sink queues now (enabled and running); an end is forgotten either way. */
  onEvent(event: SinkEvent, accepting: boolean): void {
    if (event.type === 'ended') this.rowPrefixes.delete(event.session.id);
    const box = this.outbox;
    if (!box || !accepting) return;
    const { format, routerId: router, maxPayload } = this.deps.settings();
    const failed = (err: unknown): void => {
      this.counters.queue_failures++;
      const e = toSluiceError(err);
      this.deps.log.warn('mqtt message not queued', { event: event.type, code: e.code, reason: e.message });
    };
    if (event.type === 'usage') {
      // Ends heard while this sink was off leave entries behind: a bound keeps that from growing for ever.
      if (this.rowPrefixes.size > 100_000) this.rowPrefixes.clear();
      const parts = usageParts(format, {
        router,
        at: event.at,
        usage: event.usage,
        figuresInto: event.figuresInto,
        maxPayload,
        prefixes: this.rowPrefixes,
        writer: this.usageWriter,
      });
      this.counters.usage_reports++;
      this.counters.usage_messages += parts.length;
      // The report's parts in one batch: one write for all of them (outbox.appendMany), done before the next report
      // reuses the writer's buffer.
      box
        .appendMany(
          parts.map((part) => (seq: number, prev: number) => part.payload(seq, prev)),
          { durable: false, type: RECORD_TYPE.usage },
        )
        .catch(failed);
      return;
    }
    if (event.type === 'rates') {
      // What a customer pays for changed mid-session: durable like every session message.
      this.counters.session_events++;
      box
        .append(ratesMessage({ format, router, at: event.at }, event), {
          durable: true,
          type: RECORD_TYPE.session,
        })
        .catch(failed);
      return;
    }
    if (event.type === 'escrow-closed') {
      // Money settled: durable like every session message.
      this.counters.session_events++;
      box
        .append(escrowClosedMessage({ format, router, at: event.at }, event), {
          durable: true,
          type: RECORD_TYPE.session,
        })
        .catch(failed);
      return;
    }
    this.queueSessionEvent(event.type, event.session, event.at, event.type === 'topup' ? event.payment : undefined);
  }

  close(): void {
    this.ended?.close();
    this.paid?.close();
  }

  /** Without compacting the marks (a crash-like stop). */
  abandon(): void {
    this.ended?.abandon();
    this.paid?.abandon();
  }

  /** Queues a session message (durable); an `ended` one only once per session, ever. */
  private queueSessionEvent(
    kind: 'started' | 'topup' | 'ended',
    session: Session,
    at: number,
    payment?: Session['payments'][number],
  ): void {
    const box = this.outbox;
    if (!box) return;
    if (kind === 'ended' && this.ended?.has(session.id)) return;
    this.counters.session_events++;
    const { format, routerId } = this.deps.settings();
    // Roaming: a session's handover within its venue is told by its start and its end.
    const moved = kind === 'topup' ? null : (this.deps.moved?.(session) ?? null);
    const paid = kind === 'topup' ? payment : kind === 'started' ? session.payments[0] : undefined;
    box
      .append(sessionMessage({ format, router: routerId, at }, kind, session, { payment, moved }), {
        durable: true,
        type: RECORD_TYPE.session,
      })
      .catch((err: unknown) => {
        this.counters.queue_failures++;
        const e = toSluiceError(err);
        this.deps.log.warn('mqtt message not queued', { event: kind, code: e.code, reason: e.message });
      });
    if (kind === 'ended') this.ended?.mark(session.id);
    if (paid) this.paid?.mark(paymentKey(session.id, paid));
  }

  /**
   * What the queue holds now (a crash may have come before a mark): the ids of the sessions whose `ended` message it
   * holds, the keys of the payments whose `started`/`topup` it holds.
   */
  private queuedSessionMessages(): { ends: string[]; payments: string[] } {
    const ends: string[] = [];
    const payments: string[] = [];
    // Session messages only: the usage reports of a long outage are not read back for this.
    for (const r of this.outbox?.pending(MQTT_CONSUMER, {
      limit: Number.MAX_SAFE_INTEGER,
      type: RECORD_TYPE.session,
    }) ?? []) {
      try {
        const body = decode(r.payload) as {
          event?: unknown;
          session?: { id?: unknown };
          payment?: { method?: unknown; reference?: unknown };
        };
        const id = body.session?.id;
        if (typeof id !== 'string') continue;
        if (body.event === 'ended') ends.push(id);
        const p = body.payment;
        if ((body.event === 'started' || body.event === 'topup') && typeof p?.method === 'string')
          payments.push(paymentKey(id, { method: p.method, reference: String(p.reference) }));
      } catch {
        // Not readable: it is sent as it is.
      }
    }
    return { ends, payments };
  }
}

/** A payment's mark: its session and a digest of its method and reference (unique per payment within its method). */
export function paymentKey(sessionId: string, p: Pick<Session['payments'][number], 'method' | 'reference'>): string {
  return `${sessionId}/${createHash('sha256').update(`${p.method}\u0000${p.reference}`).digest('hex').slice(0, 24)}`;
}
