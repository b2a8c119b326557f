/**
 * The gate facts a tick reports (it never opens or closes a gate itself): paying clients the portal dropped (absent:
 * gone; back unauthenticated: reopen) and clients with an open gate and no ACTIVE session (openUnpaid, for the
 * gatekeeper's enforce).
 */
import { STATE_CODES } from '../portal/index.ts';
import type { Clock } from '../time.ts';
import type { GatePort, SessionsPort } from './ports.ts';
import type { SlotSessions } from './slot-sessions.ts';
import { FLAG_PRESENT, type TableView } from './table.ts';
import { SLICE, TurnBudget } from './timing.ts';

export interface GateCheckOptions {
  /** A paying client seen unauthenticated is reported for re-opening at most this often (ms). */
  reopenBackoffMs: number;
  /** Sessions younger than this are not judged gone/closed (ms). */
  graceMs: number;
  /**
   * The gate's facts (MeterOptions.gate): the live sessions whose gate it keeps closed are reported with the open
   * unpaid; they come as its `held` events, kept here, not asked for during a tick.
   */
  gate?: GatePort | undefined;
}

export class GateChecks {
  /** Absent paying clients: since when (clock ms), in the current absence. */
  private readonly goneAt = new Map<string, number>();
  /**
   * 1 at a slot whose session's MAC is in goneAt (as of index generation marksOf): a present slot deletes only then.
   */
  private goneMarks = new Uint8Array(0);
  /**
   * When each slot's paying client was last reported back unauthenticated (clock ms; -Infinity: not since its gate
   * was last seen open). By slot, as a table's slots are its MACs' for its life: a Map by MAC cost a lookup per paying
   * client a tick (0.2–0.3 ms of a 10k tick's main thread while any gate was being reopened, docs/performance.md).
   */
  private reopenedAt = new Float64Array(0);
  private marksOf = -1;
  /** How many slots goneMarks covers. */
  private markedSlots = 0;
  /** The index generation at the last goneAt clean-up that found the sessions unchanged. */
  private cleanedAt = -1;
  /** MACs whose gate the gate keeps closed (its `held` events). */
  private readonly held = new Set<string>();
  /** Stops following the gate's `held` events. */
  readonly unfollow: () => void;

  constructor(
    private readonly sessions: SessionsPort,
    private readonly clock: Clock,
    private readonly options: GateCheckOptions,
  ) {
    this.unfollow =
      options.gate?.on('held', (mac, held) => {
        if (held) this.held.add(mac.toLowerCase());
        else this.held.delete(mac.toLowerCase());
      }) ?? (() => undefined);
  }

  /** When a paying client was first seen absent from the portal in the current absence, if it is absent. */
  goneSince(mac: string): number | undefined {
    return this.goneAt.get(mac);
  }

  /**
   * Paying clients (data and time) whose gate the portal dropped: absent (gone) or back unauthenticated (reopen).
   * Walks the slot → session index (slot-sessions.ts), not every session with a Map lookup each: an array read per
   * slot, and the goneAt bookkeeping only for slots whose presence changed.
   */
  async paying(
    view: TableView,
    macToSlot: ReadonlyMap<string, number>,
    slotMacs: readonly string[],
    index: SlotSessions,
    tick: number,
    dispatchAt: number,
  ): Promise<{ reopen: string[]; gone: string[] }> {
    const reopen: string[] = [];
    const gone: string[] = [];
    const now = this.clock.now();
    const newest = dispatchAt - this.options.graceMs;
    const turn = new TurnBudget();
    // Billing may have ended sessions since the tick indexed them (data-limit): then index them again.
    await index.refresh(macToSlot, slotMacs, view.slotCount);
    if (this.marksOf !== index.generation) this.markSlots(index, 0);
    else if (this.markedSlots < index.slots) this.markSlots(index, this.markedSlots);
    const marks = this.goneMarks;
    const reopenedAt = this.reopenedAt;
    const count = index.slots;
    for (let slot = 0; slot < count; slot++) {
      if ((slot & (SLICE - 1)) === SLICE - 1) await turn.pause();
      const session = index.at(slot);
      if (session === undefined || session.startedAt > newest) continue;
      const mac = session.mac;
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) {
        if (marks[slot] === 0) {
          if (!this.goneAt.has(mac)) this.goneAt.set(mac, now);
          marks[slot] = 1;
        }
        gone.push(mac);
        continue;
      }
      if (marks[slot] !== 0) {
        this.goneAt.delete(mac);
        marks[slot] = 0;
      }
      if (flags >> 1 === STATE_CODES.Preauthenticated) {
        if (now - reopenedAt[slot]! >= this.options.reopenBackoffMs) {
          reopenedAt[slot] = now;
          reopen.push(mac);
        }
      } else reopenedAt[slot] = -Infinity;
    }
    // Sessions whose MAC the portal has never listed: absent.
    for (const session of index.withoutSlot()) {
      if (session.startedAt > newest) continue;
      if (!this.goneAt.has(session.mac)) this.goneAt.set(session.mac, now);
      gone.push(session.mac);
    }
    const changed = !index.fresh();
    if (changed || this.cleanedAt !== index.generation) {
      // A session ended during one of the walk's turns is not reported.
      if (changed) {
        const live = (mac: string): boolean => this.sessions.active(mac) !== undefined;
        filterInPlace(gone, live);
        filterInPlace(reopen, live);
      }
      // Forget clients that stopped paying (goneAt holds all absent paying clients; reopenedAt's slots without a
      // session are cleared as the marks are made again). Only when sessions changed: otherwise every entry was
      // checked at the last cleanup.
      let n = 0;
      for (const mac of this.goneAt.keys()) {
        if (++n % SLICE === 0) await turn.pause();
        if (this.sessions.active(mac) === undefined) this.goneAt.delete(mac);
      }
      // Entries deleted here may still be marked (a session the index still held): mark again at the next walk.
      if (changed) this.marksOf = -1;
      this.cleanedAt = changed ? -1 : index.generation;
    }
    return { reopen, gone };
  }

  /**
   * goneMarks[slot] = 1 where the slot's session is in goneAt, from slot `from` on: every slot after an index rebuild
   * (one lookup per session), only the new ones when the index was extended. A slot without a session forgets when
   * its client was last reported for re-opening (a client that stopped paying; a new purchase starts afresh).
   */
  private markSlots(index: SlotSessions, from: number): void {
    let marks = this.goneMarks;
    if (marks.length < index.slots) {
      const grown = new Uint8Array(Math.max(index.slots, 2 * marks.length));
      grown.set(marks.subarray(0, from));
      marks = grown;
      const reopened = new Float64Array(grown.length).fill(-Infinity);
      reopened.set(this.reopenedAt);
      this.reopenedAt = reopened;
    }
    marks.fill(0, from);
    const reopenedAt = this.reopenedAt;
    for (let slot = from; slot < index.slots; slot++) {
      const session = index.at(slot);
      if (session === undefined) reopenedAt[slot] = -Infinity;
      else if (this.goneAt.size > 0 && this.goneAt.has(session.mac)) marks[slot] = 1;
    }
    this.goneMarks = marks;
    this.marksOf = index.generation;
    this.markedSlots = index.slots;
  }

  /** Clients present with an open gate (not Trusted: the portal admin's own list) and no ACTIVE session. */
  async openUnpaid(view: TableView, slotMacs: readonly string[], index: SlotSessions, tick: number): Promise<string[]> {
    const out: string[] = [];
    const count = view.slotCount;
    const held = this.held;
    const turn = new TurnBudget();
    let fresh = index.fresh();
    for (let slot = 0; slot < count; slot++) {
      if ((slot & (SLICE - 1)) === SLICE - 1) {
        await turn.pause();
        fresh = index.fresh();
      }
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) continue;
      const state = flags >> 1;
      if (state !== STATE_CODES.Authenticated && state !== STATE_CODES.AuthBlocked) continue;
      const paying =
        fresh && slot < index.slots
          ? index.at(slot) !== undefined
          : this.sessions.active(slotMacs[slot]!) !== undefined;
      if (!paying || (held.size > 0 && held.has(slotMacs[slot]!))) out.push(slotMacs[slot]!);
    }
    return out;
  }
}

/** Keeps the entries `keep` accepts, in order. */
function filterInPlace<T>(xs: T[], keep: (x: T) => boolean): void {
  let j = 0;
  for (const x of xs) if (keep(x)) xs[j++] = x;
  xs.length = j;
}
