/**
 * The manager's read paths over its sessions, pure: the list filter, a session's report figures (as bigints, or as
 * numbers written in place for the per-tick report), and the live counts of its stats. Callers get copies or
 * numbers, never the manager's own objects.
 */
import { MAX_COUNTER, remaining, remainingNumber, usedAt, viewSession } from './model.ts';
import type { Session } from './model.ts';
import type { SessionFigures, SessionFilter, SessionNumbers } from './manager-types.ts';

/** The views of the sessions `filter` matches (`mac` already normalized), oldest first. */
export function listViews(
  sessions: Iterable<Session>,
  filter: SessionFilter,
  mac: string | undefined,
  now: number,
): Session[] {
  const out: Session[] = [];
  for (const s of sessions) {
    if (filter.state !== undefined && s.state !== filter.state) continue;
    if (filter.user !== undefined && s.user !== filter.user) continue;
    if (mac !== undefined && s.mac !== mac) continue;
    out.push(viewSession(s, now));
  }
  return out.sort((a, b) => a.createdAt - b.createdAt);
}

export function figuresOf(s: Session, now: number): SessionFigures {
  return {
    user: s.user,
    metric: s.metric,
    allotment: s.allotment,
    used: BigInt(usedAt(s, now)),
    remaining: remaining(s, now),
    bytes: BigInt(s.bytes),
    state: s.state,
  };
}

/** Live sessions by state and metric, for stats(). */
export function liveCounts(live: Iterable<Session>): { pending: number; activeTime: number; activeData: number } {
  let pending = 0,
    activeTime = 0,
    activeData = 0;
  for (const s of live) {
    if (s.state === 'PENDING') pending++;
    else if (s.metric === 'seconds') activeTime++;
    else activeData++;
  }
  return { pending, activeTime, activeData };
}

/** figuresOf as numbers, written in place: no object and no bigint arithmetic per row of the per-tick report. */
export class FiguresWriter {
  /**
   * Number(allotment), per slot, with the bigint it came from: an allotment changes rarely, and the conversion (a
   * builtin call that reads the bigint object) was ~17 ns a row of the 10k-session report. A value memo: right
   * whichever session the slot holds.
   */
  private readonly allotmentFrom: Array<bigint | undefined> = [];
  private readonly allotmentNumber: number[] = [];

  /** `slot` is the session's registry slot, or -1 (no memo). */
  write(s: Session, now: number, out: SessionNumbers, slot: number): void {
    out.user = s.user;
    out.state = s.state;
    out.bytes = s.bytes;
    // An allotment past 2^53 (MAX_ALLOTMENT_BYTES is 2^80) is reported as MAX_COUNTER: reports carry exact integers
    // only.
    let allotment: number;
    if (slot >= 0 && this.allotmentFrom[slot] === s.allotment) {
      allotment = this.allotmentNumber[slot]!;
    } else {
      allotment = Number(s.allotment);
      if (slot >= 0) {
        this.allotmentFrom[slot] = s.allotment;
        this.allotmentNumber[slot] = allotment;
      }
    }
    out.allotment = allotment > MAX_COUNTER ? MAX_COUNTER : allotment;
    if (s.metric === 'bytes') {
      out.used = s.used;
      // remainingNumber() with the allotment already converted (no number/bigint comparison).
      out.remaining =
        s.state === 'EXPIRED' || s.state === 'TERMINATED' || s.used >= allotment
          ? 0
          : allotment > MAX_COUNTER
            ? MAX_COUNTER
            : allotment - s.used;
    } else {
      out.used = usedAt(s, now);
      out.remaining = remainingNumber(s, now);
    }
  }
}
