/**
 * What each client's kernel counters counted past the reading its session was last billed through (pure): the bytes a
 * session's bytes left do not show yet. A kernel quota made again from the sessions (its table deleted behind sluice:
 * portal/kernel-quota.ts) takes them off, or it would let them through a second time.
 *
 * The marks are the meter's billed-through readings (TickLoop.billedMarks), each a counter epoch (the kernel's,
 * KernelReading.epoch) and its bytes. A reading of the same epoch counted its bytes past the mark; one of another
 * epoch (its counters made again, or first made, since) is counted whole, as the meter bills a new epoch from 0.
 */
import type { KernelReading } from '../portal/index.ts';
import type { CounterMark } from './table.ts';

export function countedSince(
  marks: ReadonlyMap<string, CounterMark>,
  readings: readonly KernelReading[],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of readings) {
    const mark = marks.get(r.mac);
    const sameEpoch = mark !== undefined && mark.token === r.epoch && r.downBytes >= mark.down && r.upBytes >= mark.up;
    out.set(r.mac, sameEpoch ? r.downBytes - mark.down + (r.upBytes - mark.up) : r.downBytes + r.upBytes);
  }
  return out;
}
