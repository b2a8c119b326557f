/**
 * The meter's usage billing, the session manager's part: per tick, metered bytes go to ACTIVE sessions by id, a data
 * session at its allotment ends, and the usage changed is marked for the next checkpoint. The hot path of the main
 * thread (docs/performance.md): numbers in arrays in, numbers updated in place, nothing allocated per client.
 */
import type { CheckpointSchedule } from './checkpoints.ts';
import { addCounter, isLive, remainingNumber } from './model.ts';
import type { EndCause, Session } from './model.ts';
import type { Registry } from './registry.ts';

export interface UsageBillingContext {
  reg: Registry;
  checkpoints: CheckpointSchedule;
  /** The manager's synchronous end (its `ended` event, its end record queued); null if the session was not live. */
  endNow(id: string, cause: EndCause, now: number): Session | null;
}

export class UsageBilling {
  /** Negative, fractional or non-numeric deltas dropped (stats' `rejectedDeltas`). */
  rejectedDeltas = 0;
  /**
   * Data sessions billed at least once by this process: their first usage was checkpointed soon (see checkpoints.ts).
   */
  private readonly billedOnce = new Set<string>();
  /**
   * billedOnce by the session's slot (the id billed there; Registry slots are a live session's for its life): the
   * meter's batches give the slot, and a Set lookup per entry was a tenth of a 10k tick's billing.
   */
  private readonly billedBySlot: Array<string | undefined> = [];

  constructor(private readonly ctx: UsageBillingContext) {}

  /**
   * Adds metered bytes (from the meter, per tick) to ACTIVE sessions, by session id: entry i is `ids[i]`, `bytes[i]`
   * for i < count, numbers in arrays so a tick allocates no object per client. Memory only: the store sees usage at the
   * next checkpoint. Data sessions at or past their allotment end with `data-limit` and are returned. Negative,
   * fractional or non-numeric deltas are dropped (usage never goes down) and counted in stats. A session that is no
   * longer ACTIVE (ended, or replaced by a new purchase since the meter looked it up) gets nothing: bytes measured
   * before a purchase are never billed to it. Nothing is applied outside the manager's open phase (`open` false).
   * `remainingBytesOut[i]`, if given, receives what a data session may still use after the entry (0 once ended or
   * unknown), Infinity for a time session. `slots[i]`, if given, is the entry's session slot as the meter last saw it
   * (Registry.slotOf, or -1): the session is read from there when it still holds that id, else looked up by id.
   */
  apply(
    ids: readonly string[],
    bytes: ArrayLike<number>,
    count: number,
    remainingBytesOut: Float64Array | undefined,
    now: number,
    open: boolean,
    slots?: ArrayLike<number>,
  ): Session[] {
    const ended: Session[] = [];
    const reg = this.ctx.reg;
    for (let i = 0; i < count; i++) {
      const id = ids[i]!;
      // The slot's session when it still holds the id, else by id, with no slot.
      let slot = slots === undefined ? -1 : slots[i]!;
      let session = reg.heldAt(slot, id);
      if (session === undefined) {
        session = reg.sessions.get(id);
        slot = -1;
      }
      const e = open ? this.bill(session, bytes[i]!, now, slot) : null;
      if (e) {
        ended.push(e);
        session = this.ctx.reg.sessions.get(id);
      }
      if (remainingBytesOut !== undefined) {
        remainingBytesOut[i] =
          session === undefined || !isLive(session)
            ? 0
            : session.metric === 'seconds'
              ? Infinity
              : remainingNumber(session, now);
      }
    }
    return ended;
  }

  /** Whether this process billed the session before; `slot` its registry slot, or -1. */
  private wasBilled(id: string, slot: number): boolean {
    if (slot >= 0 && this.billedBySlot[slot] === id) return true;
    if (!this.billedOnce.has(id)) return false;
    if (slot >= 0) this.billedBySlot[slot] = id;
    return true;
  }

  /**
   * The session ended: a later session is a new one, whose first usage is checkpointed soon again. billedBySlot may
   * still name it: ids are never reused, and an ended session is not billed.
   */
  forget(id: string): void {
    this.billedOnce.delete(id);
  }

  /**
   * The billing rule of apply for one delta: a bad delta is counted and dropped, bytes go to
   * ACTIVE sessions only, a data session at or past its allotment ends with `data-limit` (its view is returned).
   */
  private bill(session: Session | undefined, bytes: number, now: number, slot: number): Session | null {
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
      this.rejectedDeltas++;
      return null;
    }
    if (bytes === 0 || session === undefined || session.state !== 'ACTIVE') return null;
    // Numbers updated in place: nothing allocated per client per tick (a bigint here was three allocations).
    session.bytes = addCounter(session.bytes, bytes);
    const first = session.metric === 'bytes' && !this.wasBilled(session.id, slot);
    if (first) {
      this.billedOnce.add(session.id);
      if (slot >= 0) this.billedBySlot[slot] = session.id;
    }
    this.ctx.checkpoints.markAt(session.id, slot, first);
    if (session.metric !== 'bytes') return null;
    session.used = addCounter(session.used, bytes);
    // A number/bigint comparison: exact, and unlike Number(allotment) it allocates nothing.
    return session.used >= session.allotment ? this.ctx.endNow(session.id, 'data-limit', now) : null;
  }
}
