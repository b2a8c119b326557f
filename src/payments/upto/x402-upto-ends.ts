/**
 * Where `upto` meets the sessions, as batch-settlement's ends do: a session paid by an upto authorization is settled
 * what it used when its end is on flash (EndRecordsTap), not on the `ended` event: a settle for an end a kill -9
 * then lost would leave the session ACTIVE after the restart with its authorization already spent. At start,
 * `reconcile` settles the authorizations whose sessions ended while sluice was down, releases those no session holds
 * (a grant the journal never got: nothing used, nothing settled) and asks again for the amounts on flash without an
 * answer.
 *
 * The one rule for every extension of a session (a top-up by any method, an admin `grant`, ubus `change`, a CoA
 * Session-Timeout, a late gate opening, a restart): a live session may run past an open authorization's deadline
 * minus UPTO_SETTLE_MARGIN_S only with that authorization settled. `settleDue` (every 30 s, and at start) settles it
 * then for its share of the usage so far and the session carries on under what else pays for it (a later
 * authorization, a prepaid top-up, an operator's grant); what its ceiling bought beyond that usage leaves the session,
 * nobody paying for it any more. Enforced by time, not at each door, so no door can miss it.
 */
import { toSluiceError } from '../../errors.ts';
import type { UptoConfig } from '../../config/index.ts';
import type { Log } from '../../log.ts';
import { systemClock, type Clock, type Timers } from '../../time.ts';
import { loadEvm, UptoStore, type UptoRecord } from '../../x402/index.ts';
import {
  isLive,
  type Session,
  type SessionControlPort,
  type SessionEventsView,
  type SessionReadView,
} from '../../sessions/index.ts';
import { afterEndOnFlash, type EndRecordsTap } from '../../sessions/index.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { UPTO_METHOD_NAME, UPTO_SETTLE_RETRY_MS, UptoMethod } from './x402-upto.ts';
import type { EarlySettle } from './settler.ts';

/** What upto needs of the sessions: reading them, hearing their ends, and shrinking one an early settle left unpaid. */
export type UptoSessions = SessionReadView & SessionEventsView & Pick<SessionControlPort, 'setLimits'>;

export interface UptoEndsOptions {
  method: UptoMethod;
  sessions: UptoSessions;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
  clock?: Clock;
  timers?: Timers;
  /** How often open authorizations are looked at for a deadline come (default 30 s; the margin is 600 s). */
  sweepMs?: number;
}

function uptoRefsOf(s: Session): string[] {
  return s.payments.filter((p) => p.method === UPTO_METHOD_NAME).map((p) => p.reference);
}

/**
 * A session's usage split across its upto authorizations in payment order, each taking at most what its ceiling
 * buys (`capacities`, bytes or seconds), the last taking what is left: a top-up's authorization pays for usage past
 * the first one's allotment, never for the same usage twice.
 */
export function allocateUsage(used: bigint, capacities: readonly bigint[]): bigint[] {
  let left = used < 0n ? 0n : used;
  return capacities.map((cap, i) => {
    const share = i === capacities.length - 1 || left < cap ? left : cap;
    left -= share;
    return share;
  });
}

export class UptoEnds {
  private readonly clock: Clock;
  /** The sweep (scheduled-pass.ts): every sweepMs, a failed one again sweepMs later, until the method closes. */
  private readonly sweep: ScheduledPass<void>;

  constructor(private readonly options: UptoEndsOptions) {
    this.clock = options.clock ?? systemClock;
    const sweepMs = options.sweepMs ?? UPTO_SETTLE_RETRY_MS;
    this.sweep = new ScheduledPass({
      run: () => this.settleDueOnce(this.clock.now()),
      next: () => sweepMs,
      retry: { minMs: sweepMs, maxMs: sweepMs },
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
      halted: () => options.method.isClosed,
      failed: (err) =>
        options.log.warn('upto: settling due authorizations failed; tried again', {
          reason: toSluiceError(err).message,
        }),
    });
    afterEndOnFlash(
      options.sessions,
      options.endsWritten,
      (s) => {
        const refs = uptoRefsOf(s);
        return refs.length > 0 ? { refs, used: BigInt(s.used) } : undefined;
      },
      (end) => void this.settleAll(end.refs, end.used),
    );
  }

  private async settleAll(refs: readonly string[], used: bigint): Promise<void> {
    const shares = allocateUsage(
      used,
      refs.map((r) => this.options.method.capacity(r) ?? 0n),
    );
    for (const [i, ref] of refs.entries()) await this.settle(ref, shares[i] ?? 0n);
  }

  private async settle(reference: string, used: bigint, early?: EarlySettle): Promise<void> {
    try {
      await this.options.method.settle(reference, used, early);
    } catch (err) {
      // Nothing on flash changed (the amount is written before /settle): the next start settles it.
      this.options.log.warn('upto settle not written; the next start settles it', {
        reference,
        reason: toSluiceError(err).message,
      });
    }
  }

  /**
   * Settles, for the usage so far, every open authorization of a live session whose deadline minus the settle margin
   * has come (see the rule above). Resolves once those settles have an answer (or are pending on flash); a call while
   * one runs waits for it.
   */
  settleDue(): Promise<void> {
    return this.sweep.run();
  }

  private async settleDueOnce(now: number): Promise<void> {
    const due = new Set(this.options.method.dueReferences(BigInt(Math.floor(now / 1000))));
    if (due.size === 0) return;
    // Only when something is due: the sessions' list is a copy of every session.
    for (const s of this.options.sessions.list({})) {
      if (!isLive(s) || !uptoRefsOf(s).some((r) => due.has(r))) continue;
      for (const reference of uptoRefsOf(s)) {
        if (!due.has(reference)) continue;
        // Read again for each: the one before may have shrunk it, and usage moves on.
        const current = this.options.sessions.get(s.id);
        if (!current || !isLive(current)) break;
        const refs = uptoRefsOf(current);
        const shares = allocateUsage(
          BigInt(current.used),
          refs.map((r) => this.options.method.capacity(r) ?? 0n),
        );
        const share = shares[refs.indexOf(reference)] ?? 0n;
        this.options.log.info(
          "upto: an authorization's deadline comes before its session's end: settled for the usage so far",
          { reference, session: s.id, used: share.toString() },
        );
        await this.settle(reference, share, { allotment: current.allotment, shrink: (by) => this.shrink(s.id, by) });
      }
    }
  }

  /** Takes `by` units from a live session's allotment (a time session's deadline moves with it); none left: nothing. */
  private async shrink(id: string, by: bigint): Promise<void> {
    const s = this.options.sessions.get(id);
    if (!s || !isLive(s)) return;
    const allotment = s.allotment > by ? s.allotment - by : 0n;
    await this.options.sessions.setLimits(id, s.metric === 'seconds' ? { seconds: allotment } : { bytes: allotment });
  }

  /**
   * The sweep as the plugin host drives it: once the start's reconcile has ended (it settled what was due then), the
   * open authorizations looked at every sweepMs; stopped when the plugin closes: the method's exchanges end (a
   * facilitator holding a /settle must not hold the stop; the amount is on flash, asked again at the next start) and
   * the sweep in flight is awaited.
   */
  readonly background: BackgroundPass = {
    afterReconcile: true,
    start: () => this.sweep.start(this.options.sweepMs ?? UPTO_SETTLE_RETRY_MS),
    stop: async () => {
      const stopped = this.sweep.stop();
      this.options.method.close();
      await stopped;
    },
  };

  /**
   * Sessions an early settle was to shrink when sluice stopped: shrunk now if their allotment is still the one the
   * mark was written with (the journal never got the change), else only the mark is dropped.
   */
  private async finishShrinks(): Promise<void> {
    for (const r of this.options.method.unshrunk()) {
      const holder = this.options.sessions.list({}).find((s) => uptoRefsOf(s).includes(r.reference) && isLive(s));
      const from = (r.shrink as NonNullable<UptoRecord['shrink']>).from;
      const pending = holder !== undefined && holder.allotment.toString() === from ? holder : null;
      await this.options.method.shrinkSession(r, pending ? (by) => this.shrink(pending.id, by) : async () => {});
    }
  }

  /**
   * At start, after the sessions' recovery: the shrinks a stop cut short, every open authorization against the
   * journal, the authorizations whose deadline came while sluice was down (settled at once, if they still can be: after
   * the deadline itself nothing can), then the pending settles. The sweep starts once this has ended (background).
   */
  async reconcile(): Promise<void> {
    // First, before any /settle: the start waits for reconcile only RECONCILE_WAIT_MS (payments/reconcile-within.ts),
    // and a top-up sold after that changes the allotment a shrink mark was written with, which would drop the shrink
    // undone.
    await this.finishShrinks();
    const holders = new Map<string, Session>();
    for (const s of this.options.sessions.list({})) for (const ref of uptoRefsOf(s)) holders.set(ref, s);
    const ended = new Set<Session>();
    for (const reference of this.options.method.openReferences()) {
      const s = holders.get(reference);
      if (s && isLive(s)) continue;
      if (s) ended.add(s);
      else await this.options.method.release({ method: UPTO_METHOD_NAME, reference, amount: 0n, asset: '', at: 0 });
    }
    // Each ended session's usage split as at a live end (an authorization settled already takes its share, settles
    // nothing), beside the live sessions' due authorizations: one after the other, five slow /settle answers behind the
    // ended ones (upto.timeout each) would use up a due one's whole margin before its deadline.
    await Promise.all([
      (async () => {
        for (const s of ended) await this.settleAll(uptoRefsOf(s), BigInt(s.used));
      })(),
      this.settleDue(),
    ]);
    await this.options.method.retryPending();
  }
}

/** The parts of `upto` the daemon runs, built from its config section. */
export interface UptoPart {
  method: UptoMethod;
  ends: UptoEnds;
}

export interface OpenUptoOptions {
  config: UptoConfig;
  stateDir: string;
  sessions: UptoSessions;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
  /** Opened at the daemon's start (PluginHost.atStart): its table is read synchronously. */
  atStart?: boolean;
}

/** Opens the upto table (ERR_UPTO_STORE if it cannot be read back) and builds the method and its ends. */
export async function openUpto(o: OpenUptoOptions): Promise<UptoPart> {
  // viem, for the Permit2 digest hashed synchronously (x402/evm-loader.ts): loaded when the method opens.
  await loadEvm();
  const store = await UptoStore.open(o.stateDir, { atStart: o.atStart === true });
  const method = new UptoMethod(o.config, { store, log: o.log, sessions: o.sessions });
  const ends = new UptoEnds({ method, sessions: o.sessions, endsWritten: o.endsWritten, log: o.log });
  return { method, ends };
}
