/**
 * RADIUS accounting as an upstream sink: Start when a session starts, Interim-Update every interval (the voucher's
 * Acct-Interim-Interval, else `radius.interim_interval`), Stop when it ends. Every record goes through the outbox
 * first (Start and Stop durable: fsynced before anything is sent; Interim droppable: the first to go when the queue is
 * full) and leaves it only once the server acknowledged it; acknowledgements are logged at once (ack-log.ts), so a
 * restart or kill -9 resends nothing the server already has. A session gets one Stop, ever: the ids of sessions whose
 * Stop was queued are logged too, so a session that recovery ends again after a crash (its end had not reached the
 * session journal yet) gets no second one. Sending never blocks the caller: the delivery loop (delivery.ts) sends
 * records in the background, at most `maxInFlight` at a time (one after a failure, one more per acknowledgement), and
 * while no server answers it pauses (doubling, up to `maxBackoffMs`) and the queue waits on flash for as long as the
 * outage lasts.
 *
 * Per-session figures: Acct-Session-Time from the session's start; octets from the NAS's point of view (input = from
 * the client); the total is sluice's metered `bytes` as the session journal has written it, split by the portal's
 * per-direction counters. Usage reaches this sink only once a checkpoint or the session's end record holds it (the
 * host's usage event follows the manager's usage-written), and an Interim carries the total that write recorded, never
 * the live one: after a kill -9 the restart resumes from the journal's total, so the server never sees octets go back
 * nor is told usage the router then bills again. Octets so advance once per checkpoint interval; an Interim between
 * repeats the last written figures, its Acct-Session-Time the clock's.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Backoff } from '../../backoff.ts';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { Session, SessionNumbers } from '../../sessions/index.ts';
import type { JsonTable } from '../../storage/index.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../../time.ts';
import { DeliveryLoop, deliveryTimers } from '../delivery.ts';
import { Outbox, type OutboxRecord } from '../outbox.ts';
import type { SinkEvent } from '../sink.ts';
import { EndMarks } from '../end-marks.ts';
import { AckLog } from './ack-log.ts';
import { openTrackedState, type TrackedState } from './tracked-state.ts';
import { CODE, encodeRequest, type NasIdentity, type RadiusClient } from '../../radius/index.ts';
import {
  accountingAttributes,
  decodeRecord,
  encodeRecord,
  TERMINATE_CAUSE_OF,
  type AcctKind,
  type AcctRecord,
} from './records.ts';
import { lostSessionStop, recordOf, savedOf, trackSession, type Tracked } from './session-records.ts';

export { accountingUserName } from './session-records.ts';

const CONSUMER = 'radius';
const TYPE_OF: Record<AcctKind, number> = { Start: 1, 'Interim-Update': 3, Stop: 2 };
/** Sessions tracked or let go: saved this soon (batched). */
const STATE_SAVE_MS = 60_000;
/**
 * Octets only: saved this seldom. They only split sluice's own total (the journal's) into the two directions, so a
 * crash costs at most this much of the split, not a byte of the total; each save is two atomic replaces (the file and
 * its seal, ~130 KiB at the block device on ext4: docs/performance.md), once a minute they were most of the flash.
 */
const OCTETS_SAVE_MS = 3_600_000;

/** Per payment reference: what the voucher's Access-Accept said (kept until the session starts). */
export interface VoucherAccounting {
  interimIntervalS: number | null;
  classes: Buffer[];
}

export interface AccountingOptions {
  dir: string;
  maxBytes: number;
  client: () => RadiusClient;
  nas: () => NasIdentity;
  interimMs: () => number;
  maxInFlight: number;
  /** Longest pause between attempts while no server answers. Default 60 s. */
  maxBackoffMs?: number;
  log: Log;
  /** A session by id, live or retained after its end (SessionManager.get). */
  session: (id: string) => Session | null;
  /** In a venue: the venue session a session is a part of (its Acct-Multi-Session-Id; null: none). */
  multiSessionOf?: (s: Session) => string | null;
  /** Sessions live when sluice (re)started, and those its recovery ended (their Stop is due). */
  recovered: () => { active: readonly Session[]; ended: readonly Session[] };
  clock?: Clock;
  /**
   * The ticker's, the queue's and the delivery loop's. Default backgroundTimers: RADIUS sockets keep the process alive,
   * not these.
   */
  timers?: Timers;
  syncIntervalMs?: number;
  cursorIntervalMs?: number;
  /** Started at the daemon's start (PluginHost.atStart): `sessions.json` and the outbox are read synchronously. */
  atStart?: boolean;
}

export class RadiusAccounting {
  private outbox: Outbox | undefined;
  private acks: AckLog | undefined;
  /** Sessions whose Stop was queued (delivered or not): they never get another. */
  private stopped: EndMarks | undefined;
  private readonly tracked = new Map<string, Tracked>();
  private readonly vouchers = new Map<string, VoucherAccounting>();
  private readonly early: SinkEvent[] = [];
  /** A usage event's figures for one session, read into this one object. */
  private readonly written: SessionNumbers = {
    user: null,
    allotment: 0,
    used: 0,
    remaining: 0,
    bytes: 0,
    state: 'ACTIVE',
  };
  private delivery: DeliveryLoop | undefined;
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private maxInFlight: number;
  /** Exact, no jitter: one NAS's accounting, paced as it always was (1 s, doubling to radius.backoff_max). */
  private readonly backoff: Backoff;
  private ticker: TimerHandle | null = null;
  /** sessions.json (tracked-state.ts): saved STATE_SAVE_MS after a session is tracked or let go, octets alone after
   * OCTETS_SAVE_MS, and at close. */
  private saved: JsonTable<TrackedState> | undefined;
  /** Octets changed since the last save. */
  private stateDirty = false;
  /** A session tracked or let go since the last save. */
  private trackedChanged = false;
  private lastStateSave = 0;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly counters = {
    produced: { Start: 0, 'Interim-Update': 0, Stop: 0 },
    delivered: { Start: 0, 'Interim-Update': 0, Stop: 0 },
    failures: 0,
    unreadable: 0,
    queueErrors: 0,
    unexpectedReplies: 0,
  };

  constructor(private readonly options: AccountingOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    this.maxInFlight = options.maxInFlight;
    const maxMs = options.maxBackoffMs ?? 60_000;
    this.backoff = new Backoff({ minMs: Math.min(1000, maxMs), maxMs });
  }

  /** A reload's new bounds: in-flight requests, the longest pause, the queue's size (dropping at once if over). */
  configure(next: { maxInFlight: number; maxBackoffMs: number; maxBytes: number }): void {
    this.maxInFlight = next.maxInFlight;
    this.backoff.configure({ minMs: Math.min(1000, next.maxBackoffMs), maxMs: next.maxBackoffMs });
    this.outbox?.setMaxBytes(next.maxBytes);
    this.delivery?.kick();
  }

  /**
   * Ends the current pause and sends now (a reload pointed accounting at other servers: no reason to wait for them).
   */
  retryNow(): void {
    this.delivery?.retryNow();
  }

  /** The voucher method tells us what an Accept said; the session that payment starts picks it up. */
  rememberVoucher(reference: string, info: VoucherAccounting): void {
    this.vouchers.set(reference, info);
    if (this.vouchers.size > 10_000) this.vouchers.delete(this.vouchers.keys().next().value!);
  }

  async start(): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true });
    // First, before anything is opened: a damaged file refuses the start (ERR_RADIUS_STATE), and the host runs without
    // accounting rather than report sessions from zero and never stop the ones it lost.
    this.saved = await openTrackedState(this.options.dir, { atStart: this.options.atStart === true });
    this.outbox = await Outbox.open({
      dir: join(this.options.dir, 'outbox'),
      maxBytes: this.options.maxBytes,
      consumers: [CONSUMER],
      // Interim-Updates stay in RAM: each carries the session's totals, so losing one in a crash loses nothing in sum
      // and the flash is not written on every interim; Start and Stop are durable on file.
      droppableInRam: true,
      atStart: this.options.atStart === true,
      clock: this.clock,
      timers: this.timers,
      ...(this.options.syncIntervalMs !== undefined && { syncIntervalMs: this.options.syncIntervalMs }),
      ...(this.options.cursorIntervalMs !== undefined && { cursorIntervalMs: this.options.cursorIntervalMs }),
      onWarning: (err) => this.options.log.warn('radius outbox', { code: err.code, reason: err.message }),
    });
    // A crash between queuing a Stop and its mark loses the mark, not the Stop: the outbox still holds it.
    const queuedStops: string[] = [];
    for (const r of this.outbox.pending(CONSUMER, { limit: Number.MAX_SAFE_INTEGER, type: TYPE_OF.Stop })) {
      try {
        queuedStops.push(decodeRecord(r.payload).sessionId);
      } catch {
        /* unreadable: counted when sent */
      }
    }
    this.stopped = EndMarks.open(
      join(this.options.dir, 'stopped'),
      queuedStops,
      (id) => this.options.session(id) !== null,
    );
    const { acks, seqs } = AckLog.open(join(this.options.dir, 'acked'));
    this.acks = acks;
    for (const seq of seqs) this.outbox.ack(CONSUMER, seq);
    this.restore();
    this.state = 'running';
    for (const e of this.early.splice(0)) this.onEvent(e);
    this.delivery = new DeliveryLoop({
      source: this.outbox,
      consumer: CONSUMER,
      maxInFlight: () => this.maxInFlight,
      backoff: this.backoff,
      timers: deliveryTimers(this.clock, this.timers),
      send: (record) => this.send(record),
      ack: (seq) => this.ack(seq),
      onFailure: (err, _record, pause) => {
        this.counters.failures++;
        if (pause && (pause.first || pause.capped)) {
          this.options.log.warn('radius: accounting not delivered, queued on flash', {
            reason: toSluiceError(err).message,
            retry_in_ms: pause.ms,
          });
        }
      },
    });
    this.delivery.start();
    // A timeout re-armed each second (Timers has timeouts only), armed before the tick runs as an interval's would be.
    const beat = (): void => {
      this.ticker = this.timers.setTimeout(beat, 1000);
      this.tick();
    };
    this.ticker = this.timers.setTimeout(beat, 1000);
  }

  /** Tracking from the last saved state; Stops for sessions that ended while sluice was down or that it lost. */
  private restore(): void {
    const now = this.clock.now();
    // No file (first start): sessions are tracked from now with the configured interval.
    const saved: Record<string, TrackedState> = Object.fromEntries(this.saved!.list().map((t) => [t.id, t]));
    const { active, ended } = this.options.recovered();
    const interval = this.options.interimMs();
    for (const s of active) {
      if (this.stopped!.has(s.id)) {
        // Ended and its Stop queued, then back after a crash (the end had not reached the journal): the server has its
        // Stop, so accounting for it is over; Interims or a second Stop would contradict it.
        this.options.log.warn('radius: a session resumed after its Stop was sent; no more accounting for it', {
          session: s.id,
        });
        continue;
      }
      const prev = saved[s.id];
      const t = this.track(s, prev?.interimMs ?? null, prev?.classes ?? []);
      if (prev) {
        t.up = prev.up;
        t.down = prev.down;
      }
      // Restarted sessions do not all report at once: spread over one interval.
      t.nextInterimAt = now + Math.floor(Math.random() * (t.interimMs ?? interval));
    }
    for (const s of ended) {
      const prev = saved[s.id];
      const t = this.track(s, prev?.interimMs ?? null, prev?.classes ?? []);
      if (prev) {
        t.up = prev.up;
        t.down = prev.down;
      }
      this.stop(s, TERMINATE_CAUSE_OF[s.endCause ?? 'admin']);
    }
    for (const [id, prev] of Object.entries(saved)) {
      if (this.tracked.has(id) || this.stopped!.has(id) || ended.some((s) => s.id === id)) continue;
      // Accounting had started it, and the session store no longer knows it: its Stop (NAS-Reboot). A session ended
      // normally is still retained: its Stop was queued when it ended.
      if (this.options.session(id) !== null) continue;
      this.append(lostSessionStop(prev, now), true);
      this.markStopped(id);
    }
    this.trackedChanged = true;
  }

  private track(s: Session, interimMs: number | null, classes: string[]): Tracked {
    const t = trackSession(s, { interimMs, classes, defaultInterimMs: this.options.interimMs() });
    this.tracked.set(s.id, t);
    return t;
  }

  onEvent(event: SinkEvent): void {
    if (this.state === 'new') {
      this.early.push(event);
      return;
    }
    if (this.state !== 'running') return;
    switch (event.type) {
      case 'started': {
        const s = event.session;
        const voucher = s.payments.map((p) => this.vouchers.get(p.reference)).find((v) => v !== undefined);
        const t = this.track(
          s,
          voucher?.interimIntervalS ? voucher.interimIntervalS * 1000 : null,
          (voucher?.classes ?? []).map((c) => c.toString('base64')),
        );
        for (const p of s.payments) this.vouchers.delete(p.reference);
        const start = this.recordOf(t, 'Start', t.startedAt, null);
        // The speed tier it was sold with (a later change is not accounted: it is in the journal and the reports).
        if (s.rates && (s.rates.downBps !== null || s.rates.upBps !== null))
          start.rates = { down: s.rates.downBps, up: s.rates.upBps };
        this.append(start, true);
        this.trackedChanged = true;
        return;
      }
      case 'topup': {
        // The back end hears of the new allotment at once rather than at the next interval (with the written usage).
        const t = this.tracked.get(event.session.id);
        if (t) this.interim(t, event.at);
        return;
      }
      case 'usage': {
        for (const u of event.usage) {
          const t = this.tracked.get(u.sessionId);
          if (!t) continue;
          if (u.deltaUploadBytes > 0) t.up += BigInt(Math.round(u.deltaUploadBytes));
          if (u.deltaDownloadBytes > 0) t.down += BigInt(Math.round(u.deltaDownloadBytes));
          // The figures the write that holds this usage recorded (the host hands them with the event).
          if (event.figuresInto(u.sessionId, this.written, u.slot)) {
            const total = BigInt(Math.round(this.written.bytes));
            if (total > t.writtenBytes) t.writtenBytes = total;
          }
        }
        this.stateDirty = true;
        return;
      }
      case 'ended': {
        const s = event.session;
        if (!this.tracked.has(s.id)) this.track(s, null, []);
        this.stop(s, TERMINATE_CAUSE_OF[s.endCause ?? 'admin']);
        return;
      }
    }
  }

  private stop(s: Session, cause: NonNullable<AcctRecord['cause']>): void {
    const t = this.tracked.get(s.id)!;
    this.tracked.delete(s.id);
    this.trackedChanged = true;
    // Recovery ends a session again when its end had not reached the journal before a crash: one Stop is all it gets.
    if (this.stopped?.has(s.id)) return;
    const at = s.endedAt ?? this.clock.now();
    this.append({ ...this.recordOf(t, 'Stop', at, BigInt(s.bytes)), cause }, true);
    this.markStopped(s.id);
  }

  /** After the Stop's append (a crash in between leaves the Stop in the outbox, where start() finds it). */
  private markStopped(id: string): void {
    this.stopped?.mark(id);
  }

  /** The record for `t` at `at`; `total` is sluice's metered byte count (null: only what the meter's deltas said). */
  private recordOf(t: Tracked, kind: AcctKind, at: number, total: bigint | null): AcctRecord {
    const session = this.options.multiSessionOf ? this.options.session(t.id) : null;
    const multiSessionId = session === null ? null : this.options.multiSessionOf!(session);
    return recordOf(t, kind, at, { total, multiSessionId });
  }

  private interim(t: Tracked, at: number): void {
    this.append(this.recordOf(t, 'Interim-Update', at, t.writtenBytes), false);
    t.nextInterimAt = at + (t.interimMs ?? this.options.interimMs());
  }

  private tick(): void {
    const now = this.clock.now();
    for (const t of this.tracked.values()) if (t.nextInterimAt <= now) this.interim(t, now);
    const since = now - this.lastStateSave;
    if ((this.trackedChanged && since >= STATE_SAVE_MS) || (this.stateDirty && since >= OCTETS_SAVE_MS))
      void this.saveState();
    this.compactAckLog();
    this.delivery?.kick();
  }

  private append(r: AcctRecord, durable: boolean): void {
    this.counters.produced[r.kind]++;
    this.outbox!.append(encodeRecord(r), { durable, type: TYPE_OF[r.kind] }).catch((err: unknown) => {
      // A durable record is on the page cache even when its fsync failed; a refused one is lost: say so loudly.
      this.counters.queueErrors++;
      const e = toSluiceError(err);
      this.options.log.error('radius: accounting record not queued', {
        kind: r.kind,
        session: r.sessionId,
        code: e.code,
        reason: e.message,
      });
    });
  }

  /** One Accounting-Request for a queued record: resolves once the server answered it ('skip': unreadable, dropped). */
  private send(record: OutboxRecord): Promise<void> | 'skip' {
    let r: AcctRecord;
    try {
      r = decodeRecord(record.payload);
    } catch {
      this.counters.unreadable++;
      return 'skip';
    }
    return this.options
      .client()
      .request(({ identifier, server }) =>
        encodeRequest({
          code: 'Accounting-Request',
          identifier,
          secret: server.secret,
          messageAuthenticator: false,
          attributes: accountingAttributes(r, this.options.nas(), this.clock.now()),
        }),
      )
      .then((reply) => {
        if (reply.code !== CODE['Accounting-Response']) {
          this.counters.unexpectedReplies++;
          throw new SluiceError(
            'ERR_UPSTREAM_UNAVAILABLE',
            `RADIUS server answered an Accounting-Request with code ${reply.code}`,
          );
        }
        this.counters.delivered[r.kind]++;
      });
  }

  private ack(seq: number): void {
    if (this.state === 'closed') return;
    // Only a record on file comes back after a restart: an Interim-Update held in RAM needs no line on flash.
    if (this.outbox?.isOnFile(seq) !== false) this.acks?.record(seq);
    if (this.state === 'running') this.outbox?.ack(CONSUMER, seq);
  }

  /** Keeps the ack log small: once it holds many, flush the outbox's cursor and keep only what the cursor lacks. */
  private compacting = false;
  private compactAckLog(): void {
    if (this.compacting || !this.acks || !this.outbox || this.acks.size < 4096) return;
    this.compacting = true;
    const floor = this.outbox.stats().consumers[CONSUMER]?.floor ?? 0;
    this.outbox
      .flush()
      .then(() => this.acks?.keepAbove(floor))
      .catch((err: unknown) =>
        this.options.log.warn('radius: ack log not compacted', { reason: toSluiceError(err).message }),
      )
      .finally(() => {
        this.compacting = false;
      });
  }

  private async saveState(): Promise<void> {
    this.stateDirty = this.trackedChanged = false;
    this.lastStateSave = this.clock.now();
    const saved = this.saved;
    if (!saved) return;
    saved.replace([...this.tracked.values()].map(savedOf), undefined);
    try {
      await saved.flush();
    } catch (err) {
      this.stateDirty = this.trackedChanged = true;
      this.options.log.warn('radius: session state not saved', { reason: toSluiceError(err).message });
    }
  }

  stats(): Record<string, unknown> {
    const box = this.outbox?.stats();
    return {
      produced: { ...this.counters.produced },
      delivered: { ...this.counters.delivered },
      queued: box?.consumers[CONSUMER]?.pending ?? 0,
      in_flight: this.delivery?.inFlightCount ?? 0,
      dropped_interim: box?.dropped ?? 0,
      queue_bytes: box?.bytes ?? 0,
      failures: this.counters.failures,
      unreadable: this.counters.unreadable,
      queue_errors: this.counters.queueErrors,
      tracked: this.tracked.size,
      backing_off_ms: this.delivery?.pausedForMs ?? 0,
      window: this.delivery?.windowSize ?? this.maxInFlight,
    };
  }

  /** Outbox records still waiting (for tests and the bench). */
  pendingCount(): number {
    return this.outbox?.stats().consumers[CONSUMER]?.pending ?? 0;
  }

  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    const wasRunning = this.state === 'running';
    this.state = 'closing';
    if (this.ticker !== null) this.timers.clearTimeout(this.ticker);
    // Requests already sent get a moment to be acknowledged (else the server may see them again after the restart).
    await this.delivery?.close(1000);
    if (wasRunning) await this.saveState();
    await this.outbox?.close();
    const floor = this.outbox?.stats().consumers[CONSUMER]?.floor ?? 0;
    try {
      this.acks?.keepAbove(floor);
    } catch {
      /* the full log stays: still correct */
    }
    this.acks?.close();
    this.stopped?.close();
    this.state = 'closed';
  }

  destroy(): void {
    this.state = 'closed';
    if (this.ticker !== null) this.timers.clearTimeout(this.ticker);
    this.delivery?.destroy();
    this.acks?.close();
    this.stopped?.abandon();
  }
}
