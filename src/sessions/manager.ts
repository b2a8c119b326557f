/**
 * The single owner of sessions in memory, and the one place their state changes. Decisions (top-up or new, replay,
 * device limit) are made synchronously so concurrent purchases cannot race; durability is awaited afterwards, and only
 * then does anyone hear "yes" (`started`/`topup` events, the resolved promise). A new session is PENDING while its
 * purchase is being written, ACTIVE once it is on flash; the gate alone hears of it meanwhile (`selling`, then `unsold`
 * if the write fails), to change the kernel while the write runs and tell nobody. Every end goes through
 * `end()`/`endNow()`, which emits `ended`
 * exactly once. What it decides with, and the parts that write one kind of change under it, are apart: admission.ts
 * (replays, purchases in flight, the session limit), purchase.ts and sales.ts (a sale or a top-up, and its writing),
 * limits.ts and changes.ts (CoA totals, rates, a clock's start, and their writing), reads.ts (lists, figures),
 * background-writes.ts (end records and checkpoints nobody awaits), billing.ts (the meter's bytes per tick),
 * moves.ts (a session to another MAC) and end-replay.ts (the ends a restart hands the sinks again). What it answers
 * without changing anything is the class it extends (queries.ts).
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import type { LimitsConfig } from '../config/index.ts';
import { Admission, spentCause } from './admission.ts';
import { BackgroundWrites } from './background-writes.ts';
import { SessionChanges, type ChargeResult } from './changes.ts';
import { UsageBilling } from './billing.ts';
import { CheckpointSchedule } from './checkpoints.ts';
import { DeadlineScheduler } from './deadlines.ts';
import { lastEnds, lastPayments, stillRetained } from './end-replay.ts';
import { Emitter } from './events.ts';
import { validateGrant } from './grant.ts';
import type { Grant, GrantDraft } from './grant.ts';
import type { Hold } from './holds.ts';
import { activate as toActive, endSession, isEndCause } from './lifecycle.ts';
import type { LimitsChange } from './limits.ts';
import type {
  RecoveryReport,
  SessionEvents,
  SessionManagerOptions,
  SessionStats,
  SessionNumbers,
  UsageReport,
} from './manager-types.ts';
import { copySession, isLive, limitReached, paymentKeys, UNLIMITED, usedAt, viewSession } from './model.ts';
import type { EndCause, PaymentRef, Session, SessionRates } from './model.ts';
import { DeviceJoins } from './device-joins.ts';
import { SessionMoves } from './moves.ts';
import { liveCounts } from './reads.ts';
import { SessionQueries } from './queries.ts';
import { SessionSales } from './sales.ts';
import { UsageHold } from './usage-hold.ts';
import { DEFAULT_RETENTION } from './store.ts';
import type { EndRecord, RetentionPolicy, SessionStore, StoreRecord } from './store.ts';
import { systemClock, systemTimers } from './time.ts';
import type { Timers } from './time.ts';

export class SessionManager extends SessionQueries {
  private readonly store: SessionStore;
  private readonly timers: Timers;
  private limits: LimitsConfig;
  private readonly retention: RetentionPolicy;
  private readonly admission = new Admission(this.reg, () => this.limits.maxSessions);
  private readonly scheduler: DeadlineScheduler;
  private readonly events = new Emitter<SessionEvents>((err, event) =>
    event === 'warning'
      ? undefined
      : this.warn(toSluiceError(err, 'ERR_LISTENER'), `a '${String(event)}' listener threw`),
  );
  private readonly checkpoints: CheckpointSchedule;
  private readonly billing: UsageBilling;
  /**
   * recover() is ending what ran out while sluice was down: those ends are reported through recovered(), not
   * `end-written`.
   */
  private recovering = false;
  /** End records and checkpoints; an end the store refused stays ended here (its gate closed) and is retried. */
  private readonly writes: BackgroundWrites;
  private phase: 'new' | 'open' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | null = null;
  private readonly counters = {
    started: 0,
    toppedUp: 0,
    checkpoints: 0,
    ended: {} as Partial<Record<EndCause, number>>,
  };
  recovery: RecoveryReport | null = null;
  private readonly joins: DeviceJoins;
  private readonly moves: SessionMoves;
  private readonly changes: SessionChanges;
  private readonly sales: SessionSales;
  private readonly planRates: (plan: string) => SessionRates | null;
  /** Usage billed but not on flash yet: `usage-written` tells it once a checkpoint or an end record holds it. */
  private readonly unwritten = new UsageHold();

  constructor(options: SessionManagerOptions) {
    super(options.clock ?? systemClock);
    this.store = options.store;
    this.timers = options.timers ?? systemTimers;
    this.limits = { maxDevicesPerUser: 0, maxSessions: 0, ...options.limits };
    this.retention = { ...DEFAULT_RETENTION, ...options.retention };
    this.planRates = options.planRates ?? (() => null);
    this.joins = new DeviceJoins({
      reg: this.reg,
      store: this.store,
      clock: this.clock,
      live: (id) => this.live(id),
      emit: (event, session, mac) => this.events.emit(event, session, mac),
    });
    this.moves = new SessionMoves({
      reg: this.reg,
      store: this.store,
      clock: this.clock,
      live: (id, meanwhile) => this.live(id, meanwhile),
      emit: (session, from) => this.events.emit('moved', session, from),
    });
    this.writes = new BackgroundWrites(this.store, this.timers, options.endRetryMs ?? 5000, (err, context) =>
      this.warn(err, context),
    );
    this.checkpoints = new CheckpointSchedule(
      this.timers,
      this.clock,
      options.checkpointIntervalMs ?? 300_000,
      () => void this.checkpoint(),
    );
    this.billing = new UsageBilling({
      reg: this.reg,
      checkpoints: this.checkpoints,
      endNow: (id, cause, now) => this.endNow(id, cause, now),
    });
    this.scheduler = new DeadlineScheduler({
      clock: this.clock,
      timers: this.timers,
      maxSleepMs: options.maxSleepMs ?? 30_000,
      onDue: (ids, now) => this.onDeadlines(ids, now),
    });
    this.sales = new SessionSales({
      reg: this.reg,
      store: this.store,
      clock: this.clock,
      scheduler: this.scheduler,
      maxDevicesPerUser: () => this.limits.maxDevicesPerUser,
      planRates: (plan) => this.planRates(plan),
      endNow: (id, cause, now) => this.endNow(id, cause, now),
      selling: (session) => this.events.emit('selling', session),
      unsold: (session) => this.events.emit('unsold', session),
      started: (session) => {
        this.counters.started++;
        this.events.emit('started', session);
      },
      toppedUp: (session, payment) => {
        this.counters.toppedUp++;
        this.events.emit('topup', session, payment);
      },
    });
    this.changes = new SessionChanges({
      reg: this.reg,
      store: this.store,
      clock: this.clock,
      scheduler: this.scheduler,
      live: (id, meanwhile) => this.live(id, meanwhile),
      endNow: (id, cause, now) => this.endNow(id, cause, now),
      emit: (event, session) => this.events.emit(event, session),
    });
  }

  /** new + recover(): listeners attached afterwards miss the ends recovery made (they are in `recovery.ended`). */
  static async open(options: SessionManagerOptions): Promise<SessionManager> {
    const manager = new SessionManager(options);
    await manager.recover();
    return manager;
  }

  on<K extends keyof SessionEvents>(event: K, listener: (...args: SessionEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  configure(options: { limits?: Partial<LimitsConfig>; checkpointIntervalMs?: number }): void {
    if (options.limits) this.limits = { ...this.limits, ...options.limits };
    if (options.checkpointIntervalMs !== undefined) this.checkpoints.setInterval(options.checkpointIntervalMs);
  }

  /**
   * Loads the store. Time sessions whose deadline passed while sluice was down end as `time-limit`; data sessions
   * resume from their last checkpoint (and end as `data-limit` if that already reached the allotment).
   */
  async recover(): Promise<RecoveryReport> {
    if (this.phase !== 'new') throw new SluiceError('ERR_SESSIONS_STATE', 'recover() runs once, before anything else');
    const loaded = await this.store.load();
    for (const [key, at] of loaded.refs) this.reg.refs.set(key, at);
    this.reg.sales = loaded.sales;
    for (const stored of loaded.sessions.values()) {
      // The store only ever records purchases that completed, so a PENDING session there is ACTIVE.
      const session = stored.state === 'PENDING' ? toActive(stored) : stored;
      // Journaled before sessions carried rates: its plan's, as the gate looked them up then (memory only; the same
      // lookup is made at every start until the session ends).
      if (session.rates === undefined)
        session.rates = { ...((session.plan === null ? null : this.planRates(session.plan)) ?? UNLIMITED) };
      this.reg.install(session);
    }
    this.phase = 'open';
    const now = this.clock.now();
    const report: RecoveryReport = {
      active: [],
      ended: [],
      lastEnds: lastEnds(this.reg.ended()),
      lastPayments: lastPayments(this.reg.sessions.values()),
      warnings: loaded.warnings,
    };
    this.recovering = true;
    for (const session of [...this.reg.live()]) {
      const cause = limitReached(session, now);
      if (cause) {
        const ended = this.endNow(session.id, cause, now);
        if (ended) report.ended.push(ended);
      } else {
        if (session.expiresAt !== null) this.scheduler.set(session.id, session.expiresAt);
        report.active.push(viewSession(session, now));
      }
    }
    this.recovering = false;
    for (const w of loaded.warnings) this.events.emit('warning', w);
    this.reg.prune(now, this.retention);
    report.lastEnds = stillRetained(report.lastEnds, this.reg.sessions);
    this.recovery = report;
    return report;
  }

  /** Whether a payment (by method + reference) or an idempotency key was already applied: lets a caller refuse a
   * replay before it takes money. activate() checks again, atomically. */
  isApplied(payment: Pick<PaymentRef, 'method' | 'reference'> | null, idempotencyKey?: string): boolean {
    return this.admission.isApplied(payment, idempotencyKey);
  }

  /** Whether some session holds this payment reference (applied), or an in-flight purchase has claimed it. */
  holdsReference(payment: Pick<PaymentRef, 'method' | 'reference'>, self?: Hold): boolean {
    return this.admission.holdsReference(payment, self);
  }

  /**
   * Every check activate() would make that needs no money, made before a payment method collects, and a hold on what
   * the purchase will need: its idempotency key and payment reference (a concurrent purchase with either is refused
   * with ERR_PAYMENT_IN_PROGRESS, a finished one with ERR_PAYMENT_REPLAYED) and, if it starts a new session, a slot
   * under max_sessions. The caller passes the hold to activate() and releases it when the purchase is over (either
   * way).
   */
  prepare(draft: GrantDraft): Hold {
    this.assertOpen();
    return this.admission.prepare(draft, () => this.clock.now());
  }

  /**
   * Sells a session or tops one up. Resolves once the purchase is durable in the store. `hold` is what prepare()
   * returned for this purchase: its keys and slot count as this purchase's own, not as a concurrent one's.
   */
  async activate(grant: Grant, hold?: Hold): Promise<{ session: Session; toppedUp: boolean }> {
    this.assertOpen();
    const g = validateGrant(grant);
    const now = this.clock.now();
    const keys = paymentKeys(g.payment, g.idempotencyKey);
    this.admission.assertNotApplied(keys, hold);
    if (this.moves.isMoving(g.mac))
      throw new SluiceError('ERR_SESSION_MOVING', `a session is being moved to ${g.mac}; try again`);
    const live = this.reg.liveFor(g.mac);
    // A spent session is not topped up: it ends here, and the purchase starts a new one.
    const spent = spentCause(live, now);
    if (live && spent) this.endNow(live.id, spent, now);
    else if (live) return this.sales.topUp(live, g, keys, now);
    if (grant.liveOnly === true) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${g.mac}`);
    this.admission.assertSlotFree(g.mac);
    return this.sales.create(g, keys, now);
  }

  /**
   * Sets a live session's limits anew (a RADIUS CoA-Request), as totals from its start; a session already past them
   * ends at once. Resolves with the session's view (changes.ts).
   */
  async setLimits(id: string, change: LimitsChange): Promise<Session> {
    this.assertOpen();
    return this.changes.setLimits(id, change);
  }

  /** Takes `amount` off what is left of a live session, once per `key`, durable before it applies (changes.ts). */
  async charge(id: string, amount: bigint, key: string): Promise<ChargeResult> {
    this.assertOpen();
    return this.changes.charge(id, amount, key);
  }

  /** Sets a live session's speed tier from now (ubus `change`, a RADIUS CoA-Request; changes.ts). */
  async setRates(id: string, rates: SessionRates): Promise<Session> {
    this.assertOpen();
    return this.changes.setRates(id, rates);
  }

  /** A time session's clock starts when its gate opens, not at the request (once per session; changes.ts). */
  async startClock(id: string, at: number): Promise<void> {
    return this.changes.startClock(id, at);
  }

  /**
   * The client's address as the portal lists it, for a live session that was sold without one (ubus `grant` and
   * `purchase` take it optionally; the LAN endpoint knows it): shown by `session`, sent as Framed-IP-Address. Memory
   * only — a restart learns it again from the portal — so a DHCP renewal or a gate opening costs no flash write.
   */
  noteIp(id: string, ip: string): void {
    const session = this.reg.sessions.get(id);
    if (session && isLive(session) && session.ip !== ip) session.ip = ip;
  }

  /** The code a second device types to join this live multi-device session; null for a single-device or ended one. */
  joinCode(id: string): string | null {
    return this.joins.code(id);
  }

  /**
   * `mac` joins the live multi-device session whose code is `code` (device-joins.ts: the errors, the order of writes).
   */
  async joinDevice(code: string, mac: string): Promise<Session> {
    this.assertOpen();
    return this.joins.join(code, mac);
  }

  /** Removes a joined device from a live session (device-joins.ts). */
  async removeDevice(id: string, mac: string): Promise<Session> {
    this.assertOpen();
    return this.joins.remove(id, mac);
  }

  /** Moves a live session to another MAC, written before anyone hears `moved` (moves.ts: the errors, the order). */
  async move(id: string, toMac: string): Promise<Session> {
    this.assertOpen();
    return this.moves.move(id, toMac);
  }

  /**
   * The one end path. Idempotent: ending an unknown or ended session returns null. Resolves once the end is written.
   */
  async end(id: string, cause: EndCause): Promise<Session | null> {
    const ended = this.endWithWrite(id, cause, this.clock.now());
    if (!ended) return null;
    await ended.written;
    return ended.session;
  }

  /** Ends all live sessions of a user (PC logout). */
  async endUser(user: string, cause: EndCause = 'pc-logout'): Promise<Session[]> {
    const now = this.clock.now();
    const ended = [...this.reg.liveOfUser(user)].flatMap((s) => this.endWithWrite(s.id, cause, now) ?? []);
    await Promise.all(ended.map((e) => e.written));
    return ended.map((e) => e.session);
  }

  /**
   * Synchronous core of every end: transition, indexes, `ended` event, end record queued (a failure to write it is
   * a warning: the gate must close regardless). Returns the ended session's view, or null if it was not live.
   */
  endNow(id: string, cause: EndCause, now = this.clock.now()): Session | null {
    return this.endWithWrite(id, cause, now)?.session ?? null;
  }

  private endWithWrite(id: string, cause: EndCause, now: number): { session: Session; written: Promise<void> } | null {
    if (!isEndCause(cause))
      throw new SluiceError('ERR_INVALID_END_CAUSE', `unknown end cause: ${String(cause).slice(0, 40)}`);
    this.changes.forget(id);
    const session = this.reg.sessions.get(id);
    if (!session || !isLive(session)) return null;
    // The end's last usage is told with the session's figures as it ended (what it had left), as each tick's was: an
    // ended session's own figures say nothing is left, which a venue's lease would take for the holder's last report.
    const last = this.recovering || !this.events.listens('usage-written') ? null : this.figuresAt([id], now);
    const ended = endSession(session, cause, now);
    ended.used = usedAt(session, now);
    this.reg.replace(ended);
    this.scheduler.delete(id);
    this.checkpoints.forget(id);
    this.billing.forget(id);
    this.counters.ended[cause] = (this.counters.ended[cause] ?? 0) + 1;
    const record: EndRecord = {
      t: 'end',
      id,
      state: ended.state as 'EXPIRED' | 'TERMINATED',
      cause,
      at: now,
      used: ended.used,
      bytes: ended.bytes,
    };
    const view = copySession(ended);
    if (!this.recovering) this.unwritten.end(id);
    // The announcements (RADIUS Stop, events, hook, MQTT) follow the durable end, its last usage before it; recovery's
    // ends reach the sinks through recovered() instead.
    const written = this.writes.end(
      record,
      this.recovering
        ? undefined
        : () => {
            const usage = this.unwritten.ended(id);
            if (usage !== null) this.events.emit('usage-written', [usage], now, last ?? new Map());
            this.events.emit('end-written', copySession(view));
          },
    );
    this.events.emit('ended', view);
    if (this.reg.endedCount() > this.retention.endedMax + 100) this.reg.prune(now, this.retention);
    return { session: view, written };
  }

  /**
   * Bills the meter's per-tick bytes by session id (billing.ts: the rule, the arrays, what `remainingBytesOut` gets).
   */
  applyUsage(
    ids: readonly string[],
    bytes: ArrayLike<number>,
    count: number,
    remainingBytesOut?: Float64Array,
    now = this.clock.now(),
    slots?: ArrayLike<number>,
  ): Session[] {
    return this.billing.apply(ids, bytes, count, remainingBytesOut, now, this.phase === 'open', slots);
  }

  /** The meter's reports of what applyUsage just billed: told to every follower of `usage` (one event per batch). */
  reportUsage(batch: readonly UsageReport[]): void {
    this.events.emit('usage', batch);
    if (this.events.listens('usage-written')) this.unwritten.add(batch);
  }

  /** Each session's figures as of `now`: taken with the write that records them, told once it is durable. */
  private figuresAt(ids: readonly string[], now: number): Map<string, SessionNumbers> {
    const figures = new Map<string, SessionNumbers>();
    for (const id of ids) {
      const out: SessionNumbers = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'ACTIVE' };
      if (this.figuresInto(id, now, out)) figures.set(id, out);
    }
    return figures;
  }

  stats(): SessionStats {
    const { pending, activeTime, activeData } = liveCounts(this.reg.live());
    return {
      live: this.reg.liveCount(),
      pending,
      active: activeTime + activeData,
      activeTime,
      activeData,
      retainedEnded: this.reg.endedCount(),
      started: this.counters.started,
      toppedUp: this.counters.toppedUp,
      ended: { ...this.counters.ended },
      rejectedDeltas: this.billing.rejectedDeltas,
      checkpoints: this.counters.checkpoints,
      unwrittenEnds: this.writes.unwrittenEndCount,
    };
  }

  /** Writes the usage changed since the last checkpoint (runs by itself every checkpointIntervalMs). */
  async checkpoint(): Promise<void> {
    const ids = this.checkpoints.take();
    const now = this.clock.now();
    const entries: Array<[string, number, number]> = [];
    for (const id of ids) {
      const s = this.reg.sessions.get(id);
      if (s?.state === 'ACTIVE') entries.push([id, usedAt(s, now), s.bytes]);
    }
    this.reg.prune(now, this.retention);
    if (entries.length === 0) return;
    this.counters.checkpoints++;
    const record: StoreRecord = { t: 'usage', at: now, entries };
    const held = this.unwritten.take(entries.map(([id]) => id));
    const figures =
      held.length === 0
        ? null
        : this.figuresAt(
            held.map((u) => u.sessionId),
            now,
          );
    // A refused checkpoint marks its sessions again: their usage goes in the next one (or their end record).
    const write = this.store.append([record]).then(() => {
      if (figures !== null) this.events.emit('usage-written', held, now, figures);
    });
    await this.writes.track(write, 'usage checkpoint', () => {
      this.unwritten.putBack(held);
      for (const [id] of entries) if (this.reg.sessions.get(id)?.state === 'ACTIVE') this.checkpoints.mark(id);
    });
  }

  /** Clean stop: last checkpoint, pending writes drained, store closed. Idempotent. */
  /**
   * Waits for the end records and checkpoints in flight (their `end-written` told): a clean stop calls it before it
   * closes the upstream sinks, so an end written during the stop is still announced.
   */
  writesSettled(): Promise<void> {
    return this.writes.settle();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const wasOpen = this.phase === 'open';
      this.phase = 'closing';
      this.scheduler.stop();
      if (wasOpen) await this.checkpoint();
      this.checkpoints.stop();
      await this.writes.settle();
      await this.writes.lastTry();
      await this.store.close();
      this.phase = 'closed';
      this.writes.stop();
    })();
    return this.closing;
  }

  private onDeadlines(ids: string[], now: number): void {
    for (const id of ids) {
      const s = this.reg.sessions.get(id);
      // Re-checked against the clock: a top-up may have moved the deadline since the timer was armed.
      if (s?.state === 'ACTIVE' && limitReached(s, now) === 'time-limit') this.endNow(id, 'time-limit', now);
      else if (s?.state === 'ACTIVE' && s.expiresAt !== null) this.scheduler.set(id, s.expiresAt);
    }
  }

  /** Writes the ends the store refused before, in one append; on failure they wait for the next try. */
  retryEnds(): Promise<void> {
    return this.writes.retryEnds();
  }

  private warn(err: SluiceError, context: string): void {
    const wrapped = new SluiceError(err.code, `${context}: ${err.message}`, { cause: err });
    this.events.emit('warning', wrapped);
  }

  /**
   * The live session `id`; ERR_SESSION_NOT_FOUND if there is none (`meanwhile`: it ended while a record was written).
   */
  private live(id: string, meanwhile?: 'meanwhile'): Session {
    const session = this.reg.sessions.get(id);
    if (session && isLive(session)) return session;
    throw new SluiceError(
      'ERR_SESSION_NOT_FOUND',
      meanwhile ? `session ${id} ended meanwhile` : `no live session ${id}`,
    );
  }

  private assertOpen(): void {
    if (this.phase === 'new')
      throw new SluiceError('ERR_SESSIONS_STATE', 'session manager not recovered yet (call recover())');
    if (this.phase !== 'open') throw new SluiceError('ERR_SESSIONS_CLOSED', 'session manager is closed');
  }
}
