/**
 * A sale written, the session manager's part: a top-up of the MAC's live session, or a new session (PENDING until its
 * `open` record is on flash, then ACTIVE). The registry changes first so that concurrent purchases see it, the record
 * is awaited, and a failed write undoes the change; only then does anyone hear `started` or `topup`. The gate hears a
 * new session's `selling` as its write begins (it opens meanwhile) and `unsold` if that write fails (it closes). What a
 * sale is (grant checks, top-up arithmetic, the devices a user's new session ends) is apart: grant.ts, purchase.ts.
 */
import { toSluiceError } from '../errors.ts';
import type { DeadlineScheduler } from './deadlines.ts';
import type { ValidGrant } from './grant.ts';
import { activate as toActive } from './lifecycle.ts';
import { copySession, isLive, newSessionId, viewSession } from './model.ts';
import type { EndCause, PaymentRef, Session, SessionRates } from './model.ts';
import { addTopUp, assertTopUpFits, devicesToEnd, newSession, undoTopUp } from './purchase.ts';
import type { Registry } from './registry.ts';
import type { SessionStore } from './store.ts';
import type { Clock } from './time.ts';

export interface SessionSalesContext {
  reg: Registry;
  store: Pick<SessionStore, 'append'>;
  clock: Clock;
  scheduler: Pick<DeadlineScheduler, 'set'>;
  /** limits.max_devices_per_user as configured now (0: no limit). */
  maxDevicesPerUser(): number;
  /** A plan's speed tier, for a new session (null: the plan has none). */
  planRates(plan: string): SessionRates | null;
  endNow(id: string, cause: EndCause, now: number): Session | null;
  /** A new session installed PENDING, its record about to be written (`selling`); `unsold`: that write failed. */
  selling(session: Session): void;
  unsold(session: Session): void;
  /** Counted and emitted once the record is on flash. */
  started(session: Session): void;
  toppedUp(session: Session, payment: PaymentRef): void;
}

export class SessionSales {
  constructor(private readonly ctx: SessionSalesContext) {}

  async topUp(
    existing: Session,
    g: ValidGrant,
    keys: string[],
    now: number,
  ): Promise<{ session: Session; toppedUp: boolean }> {
    assertTopUpFits(existing, g.metric, g.allotment, g.mac);
    const id = existing.id;
    for (const k of keys) this.ctx.reg.refs.set(k, now);
    const before = addTopUp(existing, g);
    this.rescheduleTopUp(existing);
    try {
      await this.ctx.store.append([{ t: 'topup', id, add: g.allotment, payment: g.payment, keys, at: now }]);
    } catch (err) {
      for (const k of keys) this.ctx.reg.refs.delete(k);
      const current = this.ctx.reg.sessions.get(id);
      if (current && isLive(current)) {
        undoTopUp(current, existing, g, before);
        this.rescheduleTopUp(current);
      }
      throw toSluiceError(err, 'ERR_JOURNAL_WRITE');
    }
    this.ctx.reg.sales.add(g.payment);
    const view = viewSession(this.ctx.reg.sessions.get(id) ?? existing, this.ctx.clock.now());
    this.ctx.toppedUp(view, { ...g.payment });
    return { session: view, toppedUp: true };
  }

  /** A time session's deadline moved with a top-up (or its undoing): the timer follows if the session is ACTIVE. */
  private rescheduleTopUp(session: Session): void {
    if (session.expiresAt !== null && session.metric === 'seconds' && session.state === 'ACTIVE')
      this.ctx.scheduler.set(session.id, session.expiresAt);
  }

  async create(g: ValidGrant, keys: string[], now: number): Promise<{ session: Session; toppedUp: boolean }> {
    if (g.user !== null) {
      for (const other of devicesToEnd(this.ctx.reg.liveOfUser(g.user), this.ctx.maxDevicesPerUser()))
        this.ctx.endNow(other.id, 'device-limit', now);
    }
    const session = newSession(
      g,
      this.ctx.reg.freshId(newSessionId),
      now,
      g.plan === null ? null : this.ctx.planRates(g.plan),
    );
    this.ctx.reg.install(session);
    for (const k of keys) this.ctx.reg.refs.set(k, now);
    const write = this.ctx.store.append([{ t: 'open', session: { ...copySession(session), state: 'ACTIVE' }, keys }]);
    // After the write is handed to the store, so that its kernel change runs while the write is on its way to flash.
    this.ctx.selling(viewSession(session, now));
    try {
      await write;
    } catch (err) {
      for (const k of keys) this.ctx.reg.refs.delete(k);
      const current = this.ctx.reg.sessions.get(session.id);
      if (current?.state === 'PENDING') this.ctx.reg.remove(current);
      this.ctx.unsold(viewSession(session, this.ctx.clock.now()));
      throw toSluiceError(err, 'ERR_JOURNAL_WRITE');
    }
    // Sold once on flash, whatever happens to the session next (the journal's book adds it as it applies the record).
    for (const p of session.payments) this.ctx.reg.sales.add(p);
    const current = this.ctx.reg.sessions.get(session.id) ?? session;
    // Ended while its purchase was being written (an admin terminate, a device limit): it stays ended, no `started`.
    if (current.state !== 'PENDING') return { session: viewSession(current, this.ctx.clock.now()), toppedUp: false };
    const active = toActive(current);
    this.ctx.reg.replace(active);
    if (active.expiresAt !== null) this.ctx.scheduler.set(active.id, active.expiresAt);
    const view = viewSession(active, this.ctx.clock.now());
    this.ctx.started(view);
    return { session: view, toppedUp: false };
  }
}
