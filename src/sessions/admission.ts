/**
 * Whether a purchase may go ahead, asked before its payment is collected (prepare) and again when it is granted: a
 * payment or idempotency key already applied (the registry's keys), a purchase in flight with the same keys (the
 * holds, owned here), a top-up's bounds, the session limit counting the slots in-flight purchases reserved. Reads the
 * sessions, never changes one: the SessionManager does that.
 */
import { SluiceError } from '../errors.ts';
import { validateClient } from './grant.ts';
import type { GrantDraft } from './grant.ts';
import { Holds, inProgress } from './holds.ts';
import type { Hold } from './holds.ts';
import { limitReached, paymentKeys } from './model.ts';
import type { LimitCause, PaymentRef, Session } from './model.ts';
import { assertDraftAllotment, assertTopUpFits, draftKeys, replayed } from './purchase.ts';
import type { Registry } from './registry.ts';

/**
 * Why a MAC's live session would not be topped up: a spent ACTIVE one (the deadline timer or the next tick would end
 * it) does not count, a new purchase starts afresh rather than topping up a negative remainder. Null: it would be.
 */
export function spentCause(live: Session | undefined, now: number): LimitCause | null {
  return live?.state === 'ACTIVE' ? limitReached(live, now) : null;
}

export class Admission {
  private readonly holds = new Holds();

  /** `maxSessions`: limits.max_sessions as configured now (0: no limit). */
  constructor(
    private readonly reg: Registry,
    private readonly maxSessions: () => number,
  ) {}

  isApplied(payment: Pick<PaymentRef, 'method' | 'reference'> | null, idempotencyKey?: string): boolean {
    const keys = payment ? paymentKeys(payment, idempotencyKey) : idempotencyKey ? [`idem:${idempotencyKey}`] : [];
    return keys.some((k) => this.reg.refs.has(k));
  }

  holdsReference(payment: Pick<PaymentRef, 'method' | 'reference'>, self?: Hold): boolean {
    const [key] = paymentKeys(payment);
    return this.reg.refs.has(key!) || this.holds.heldByOther(key!, self);
  }

  /** SessionManager.prepare once the manager is open. */
  prepare(draft: GrantDraft, now: () => number): Hold {
    const client = validateClient(draft);
    const keys = draftKeys(draft, client);
    this.assertNotApplied(keys);
    const live = this.reg.liveFor(client.mac);
    const existing = spentCause(live, now()) ? undefined : live;
    if (existing && draft.metric !== undefined)
      assertTopUpFits(existing, draft.metric, draft.allotment ?? 0n, client.mac);
    assertDraftAllotment(draft);
    if (!existing) this.assertSlotFree(client.mac);
    return this.holds.take(client.mac, keys, !existing);
  }

  /**
   * Throws ERR_PAYMENT_REPLAYED for an applied key, ERR_PAYMENT_IN_PROGRESS for one a purchase other than `hold`'s
   * holds.
   */
  assertNotApplied(keys: readonly string[], hold?: Hold): void {
    const applied = keys.find((k) => this.reg.refs.has(k));
    if (applied !== undefined) throw replayed(applied);
    const busy = keys.find((k) => this.holds.heldByOther(k, hold));
    if (busy !== undefined) throw inProgress(busy);
  }

  /** A new session for `mac` fits under max_sessions, counting slots other in-flight purchases have reserved. */
  assertSlotFree(mac: string): void {
    const max = this.maxSessions();
    if (max <= 0) return;
    const taken = this.reg.liveCount() + this.holds.reservedSlots(mac, (m) => this.reg.liveFor(m) !== undefined);
    if (taken >= max) throw new SluiceError('ERR_SESSION_LIMIT', `session limit reached (${max} active sessions)`);
  }
}
