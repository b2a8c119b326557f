/**
 * A live session's limits, speed tier and clock start changed after its sale, the session manager's part: each change
 * is written before it applies (a restart agrees), then the deadline timer follows and the gate hears `limits` or
 * `rates`. What the new limits are is computed apart (limits.ts).
 */
import { SluiceError } from '../errors.ts';
import type { DeadlineScheduler } from './deadlines.ts';
import { deadlineFromOpening, limitsAfter, limitsAfterCharge } from './limits.ts';
import type { LimitsChange } from './limits.ts';
import { isSessionRates, limitReached, viewSession } from './model.ts';
import type { EndCause, Session, SessionRates } from './model.ts';
import type { Registry } from './registry.ts';
import type { SessionStore } from './store.ts';
import type { Clock } from './time.ts';

export interface SessionChangesContext {
  reg: Registry;
  store: Pick<SessionStore, 'append'>;
  clock: Clock;
  scheduler: Pick<DeadlineScheduler, 'set' | 'delete'>;
  /** The live session `id`, else ERR_SESSION_NOT_FOUND (`meanwhile`: it ended while a record was written). */
  live(id: string, meanwhile?: 'meanwhile'): Session;
  endNow(id: string, cause: EndCause, now: number): Session | null;
  emit(event: 'limits' | 'rates', session: Session): void;
}

/** What a charge did: `taken` off what was left (null: the charge was made before, its key is applied). */
export interface ChargeResult {
  session: Session;
  taken: bigint | null;
}

/** The applied key that records what the charge of key `ref` took (`<ref>=<whole amount>`). */
export const takenKey = (ref: string, taken: bigint): string => `${ref}=${taken}`;

/** What the charge of idempotency key `key` took, from the applied keys; null: not charged, or not recorded. */
export function takenBy(refs: ReadonlyMap<string, number>, key: string): bigint | null {
  const prefix = `idem:${key}=`;
  for (const k of refs.keys())
    if (k.startsWith(prefix) && /^\d+$/.test(k.slice(prefix.length))) return BigInt(k.slice(prefix.length));
  return null;
}

export class SessionChanges {
  /** Time sessions whose clock was started at their gate's opening (startClock runs once per session). */
  private readonly clockStarted = new Set<string>();
  /** Charges being written, by key: a repeat while one is written waits for it and is told it was made. */
  private readonly charging = new Map<string, Promise<unknown>>();

  constructor(private readonly ctx: SessionChangesContext) {}

  /** The session ended: its clock start is forgotten. */
  forget(id: string): void {
    this.clockStarted.delete(id);
  }

  /**
   * Sets a live session's limits anew (a RADIUS CoA-Request), as totals from the session's start: `seconds` is a time
   * session's allotment (its deadline moves to startedAt + seconds) or a data session's hard deadline; `bytes` is a
   * data session's allotment (a time session has none: ERR_SESSION_METRIC_MISMATCH). Written before it applies; a
   * session already past its new limits ends at once (`time-limit` / `data-limit`). Resolves with the session's view.
   */
  async setLimits(id: string, change: LimitsChange): Promise<Session> {
    const session = this.ctx.live(id);
    const { allotment, expiresAt } = limitsAfter(session, change);
    const now = this.ctx.clock.now();
    await this.ctx.store.append([{ t: 'limits', id, allotment, expiresAt, at: now }]);
    const current = this.ctx.live(id, 'meanwhile');
    current.allotment = allotment;
    current.expiresAt = expiresAt;
    const at = this.ctx.clock.now();
    const cause = current.state === 'ACTIVE' ? limitReached(current, at) : null;
    if (cause) return this.ctx.endNow(id, cause, at) ?? viewSession(current, at);
    if (expiresAt !== null && current.state === 'ACTIVE') this.ctx.scheduler.set(id, expiresAt);
    else this.ctx.scheduler.delete(id);
    const view = viewSession(current, at);
    // Heard by the gate: a data session's kernel quota follows its new allotment (up or down) like a top-up's.
    this.ctx.emit('limits', view);
    return view;
  }

  /**
   * Takes `amount` (the session's metric) off what is left of live session `id`, once per `key` ever: written with the
   * key before it applies, so the charge is durable before anyone hears of it, and a repeat (the same key, before or
   * after a restart) takes nothing and says so (`taken` null). Never more than is left; a session left with nothing
   * ends at once. A time session's deadline comes forward by the seconds taken. Throws ERR_SESSION_NOT_FOUND for a
   * session not live.
   */
  async charge(id: string, amount: bigint, key: string): Promise<ChargeResult> {
    const ref = `idem:${key}`;
    const busy = this.charging.get(ref);
    if (busy !== undefined) await busy.catch(() => undefined);
    if (this.ctx.reg.refs.has(ref)) {
      const s = this.ctx.reg.sessions.get(id);
      if (!s) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session ${id}`);
      return { session: viewSession(s, this.ctx.clock.now()), taken: null };
    }
    const session = this.ctx.live(id);
    const now = this.ctx.clock.now();
    const { allotment, expiresAt, taken } = limitsAfterCharge(session, amount, now);
    // The second key says what was taken: a handover's reply tells the fleet how much, after a restart too.
    const keys = [ref, takenKey(ref, taken)];
    const written = this.ctx.store.append([{ t: 'limits', id, allotment, expiresAt, at: now, keys }]);
    this.charging.set(ref, written);
    try {
      await written;
    } finally {
      this.charging.delete(ref);
    }
    for (const key of keys) this.ctx.reg.refs.set(key, now);
    const current = this.ctx.live(id, 'meanwhile');
    current.allotment = allotment;
    current.expiresAt = expiresAt;
    const at = this.ctx.clock.now();
    const cause = current.state === 'ACTIVE' ? limitReached(current, at) : null;
    if (cause) return { session: this.ctx.endNow(id, cause, at) ?? viewSession(current, at), taken };
    if (expiresAt !== null && current.state === 'ACTIVE') this.ctx.scheduler.set(id, expiresAt);
    const view = viewSession(current, at);
    this.ctx.emit('limits', view);
    return { session: view, taken };
  }

  /**
   * Sets a live session's speed tier from now (ubus `change`, a RADIUS CoA-Request): both directions, each null for not
   * limited. Written before it applies; then `rates` is emitted, on which the gate sets the kernel's limits of every
   * open device of the session. Resolves with the session's view. Throws ERR_SESSION_NOT_FOUND (not live, or ended
   * while the record was written), ERR_INVALID_ARGUMENT (not rates).
   */
  async setRates(id: string, rates: SessionRates): Promise<Session> {
    if (!isSessionRates(rates))
      throw new SluiceError(
        'ERR_INVALID_ARGUMENT',
        'rates must be null or positive whole bits per second for each direction',
      );
    this.ctx.live(id);
    const next: SessionRates = { downBps: rates.downBps, upBps: rates.upBps };
    await this.ctx.store.append([{ t: 'rates', id, rates: next, at: this.ctx.clock.now() }]);
    const current = this.ctx.live(id, 'meanwhile');
    current.rates = { ...next };
    const view = viewSession(current, this.ctx.clock.now());
    this.ctx.emit('rates', view);
    return view;
  }

  /**
   * A time session's clock starts when its gate opens, not at the request: its deadline moves by the time the gate took
   * (rounded up to a whole second, so `expires_at` is the real end, never before it). Once per session; written as a
   * `limits` record (one more journal line per time purchase). A no-op for data sessions and ended ones.
   */
  async startClock(id: string, at: number): Promise<void> {
    const session = this.ctx.reg.sessions.get(id);
    if (!session || session.state !== 'ACTIVE' || session.metric !== 'seconds' || session.expiresAt === null) return;
    if (this.clockStarted.has(id) || session.startedAt === null) return;
    this.clockStarted.add(id);
    const expiresAt = deadlineFromOpening(session, at);
    if (expiresAt === null) return;
    await this.ctx.store.append([{ t: 'limits', id, allotment: session.allotment, expiresAt, at, startedAt: at }]);
    const current = this.ctx.reg.sessions.get(id);
    if (!current || current.state !== 'ACTIVE') return;
    current.startedAt = at;
    current.expiresAt = expiresAt;
    this.ctx.scheduler.set(id, expiresAt);
  }
}
