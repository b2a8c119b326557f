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
