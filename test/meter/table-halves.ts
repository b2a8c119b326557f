// The committed half of every slot of a counter table (meter/table.ts), as raw numbers: what committedMarks and the
// main thread's apply read. Tests compare it before and after a worker's pass.
import {
  F_C_DOWN,
  F_C_UP,
  FLOAT_STRIDE,
  HEADER_INTS,
  I_C_FLAGS,
  I_C_TICK,
  I_C_TOKEN,
  INT_STRIDE,
  TableView,
  type CounterTable,
} from '../../src/meter/table.ts';

/** One entry per slot (the first `slots`, or all): [cTick, cFlags, cToken, cDown, cUp]. */
export function committedHalves(table: CounterTable, slots?: number): number[][] {
  const view = new TableView(table);
  const out: number[][] = [];
  for (let slot = 0; slot < (slots ?? view.slotCount); slot++) {
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    const ints = view.ints;
    out.push([
      ints[ib + I_C_TICK]!,
      ints[ib + I_C_FLAGS]!,
      ints[ib + I_C_TOKEN]!,
      view.floats[fb + F_C_DOWN]!,
      view.floats[fb + F_C_UP]!,
    ]);
  }
  return out;
}

/**
 * True only if the first `halves.length` slots of `table` hold `halves` (committedHalves' entries), read in place: a
 * quick look before committedHalves and assert.equal, which have the last word (and the diff) otherwise.
 */
export function sameHalves(table: CounterTable, halves: readonly number[][]): boolean {
  const view = new TableView(table);
  const ints = view.ints;
  const floats = view.floats;
  if (halves.length > view.slotCount) return false;
  for (let slot = 0; slot < halves.length; slot++) {
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    const h = halves[slot]!;
    if (
      ints[ib + I_C_TICK] !== h[0] ||
      ints[ib + I_C_FLAGS] !== h[1] ||
      ints[ib + I_C_TOKEN] !== h[2] ||
      !Object.is(floats[fb + F_C_DOWN], h[3]) ||
      !Object.is(floats[fb + F_C_UP], h[4])
    )
      return false;
  }
  return true;
}
