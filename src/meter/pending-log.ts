/**
 * The pending halves an accounting pass overwrote (meter/epochs.ts), so that an abandoned pass can be put back
 * exactly: a scan that stopped part-way (the JSON.parse fallback then re-runs the tick), or a reply that failed after
 * its first clients were scanned as they arrived (the tick is then skipped, as if it had never been read). Without it,
 * the abandoned pass's readings would stay as an uncommitted tick's, and replace the reading of one that really was
 * (epochs.ts `stale`). One entry per client a pass touched; each slot is touched once per pass.
 */
import {
  FLOAT_STRIDE,
  F_P_BILLED_DOWN,
  F_P_BILLED_UP,
  F_P_DOWN,
  F_P_UP,
  HEADER_INTS,
  INT_STRIDE,
  I_P_FLAGS,
  I_P_TICK,
  I_P_TOKEN,
} from './table.ts';

export class PendingLog {
  // Small until a pass needs more (a thread that never accounts keeps ~2 KiB).
  private slots = new Int32Array(64);
  private ints = new Int32Array(64 * 3);
  private floats = new Float64Array(64 * 4);
  private count = 0;

  clear(): void {
    this.count = 0;
  }

  /** Keeps `slot`'s pending half as it is now, before the pass writes it. */
  record(slot: number, ints: Int32Array<ArrayBufferLike>, floats: Float64Array<ArrayBufferLike>): void {
    const k = this.count;
    if (k === this.slots.length) this.grow();
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    this.slots[k] = slot;
    this.ints[k * 3] = ints[ib + I_P_TOKEN]!;
    this.ints[k * 3 + 1] = ints[ib + I_P_FLAGS]!;
    this.ints[k * 3 + 2] = ints[ib + I_P_TICK]!;
    this.floats[k * 4] = floats[fb + F_P_DOWN]!;
    this.floats[k * 4 + 1] = floats[fb + F_P_UP]!;
    this.floats[k * 4 + 2] = floats[fb + F_P_BILLED_DOWN]!;
    this.floats[k * 4 + 3] = floats[fb + F_P_BILLED_UP]!;
    this.count = k + 1;
  }

  /** Puts every recorded pending half back into `ints`/`floats`, for the slots below `slotLimit`. */
  restore(ints: Int32Array<ArrayBufferLike>, floats: Float64Array<ArrayBufferLike>, slotLimit: number): void {
    for (let k = 0; k < this.count; k++) {
      const slot = this.slots[k]!;
      if (slot >= slotLimit) continue;
      const ib = HEADER_INTS + slot * INT_STRIDE;
      const fb = slot * FLOAT_STRIDE;
      ints[ib + I_P_TOKEN] = this.ints[k * 3]!;
      ints[ib + I_P_FLAGS] = this.ints[k * 3 + 1]!;
      ints[ib + I_P_TICK] = this.ints[k * 3 + 2]!;
      floats[fb + F_P_DOWN] = this.floats[k * 4]!;
      floats[fb + F_P_UP] = this.floats[k * 4 + 1]!;
      floats[fb + F_P_BILLED_DOWN] = this.floats[k * 4 + 2]!;
      floats[fb + F_P_BILLED_UP] = this.floats[k * 4 + 3]!;
    }
  }

  private grow(): void {
    const slots = new Int32Array(this.slots.length * 2);
    slots.set(this.slots);
    this.slots = slots;
    const ints = new Int32Array(this.ints.length * 2);
    ints.set(this.ints);
    this.ints = ints;
    const floats = new Float64Array(this.floats.length * 2);
    floats.set(this.floats);
    this.floats = floats;
  }
}
