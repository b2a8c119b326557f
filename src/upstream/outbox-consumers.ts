/**
 * The outbox's consumers (outbox.ts): each one's bit in a record's `acked`, how many records it has not acknowledged,
 * and the floor its cursor file holds (written only when the floor moved past what is on file: a cursor write is a
 * flash write). What the records are and where they lie is the outbox's; this decides what each consumer still owes.
 */
import { SluiceError } from '../errors.ts';
import type { RecordIndex } from './outbox-index.ts';
import { writeCursor } from './outbox-marks.ts';
import type { Entry } from './outbox-segments.ts';
import type { OutboxConsumerStats } from './outbox-types.ts';

export interface Consumer {
  name: string;
  bit: number;
  pending: number;
  persistedFloor: number;
}

export class OutboxConsumers {
  private readonly byName: Map<string, Consumer>;
  /** Every consumer's bit: a record acknowledged by all is finished. */
  readonly allMask: number;
  /** An acknowledgement of a record on file moved a floor since the cursors were written. */
  dirty = false;

  constructor(names: readonly string[]) {
    this.byName = new Map(names.map((name, bit) => [name, { name, bit: 1 << bit, pending: 0, persistedFloor: 0 }]));
    this.allMask = (1 << names.length) - 1;
  }

  each(): IterableIterator<Consumer> {
    return this.byName.values();
  }

  of(name: string): Consumer {
    const c = this.byName.get(name);
    if (!c) throw new SluiceError('ERR_OUTBOX_OPTIONS', `unknown outbox consumer ${JSON.stringify(name)}`);
    return c;
  }

  /** Records found at open: the floors on file, and each record a consumer has not acknowledged counted. */
  recovered(floors: ReadonlyMap<string, number>, entries: readonly Entry[]): void {
    for (const c of this.byName.values()) c.persistedFloor = floors.get(c.name)!;
    for (const e of entries) for (const c of this.byName.values()) if ((e.acked & c.bit) === 0) c.pending++;
  }

  /** `n` new records, pending for everyone. */
  added(n: number): void {
    for (const c of this.byName.values()) c.pending += n;
  }

  /** A record given up (dropped): no longer pending for those who had not acknowledged it. */
  dropped(e: Entry): void {
    for (const c of this.byName.values()) if ((e.acked & c.bit) === 0) c.pending--;
  }

  /**
   * `consumer` acknowledges `e`; false when it had already (or `e` is finished). `onFile`: a RAM record's
   * acknowledgement moves no cursor (it is gone after a crash whatever a cursor says).
   */
  ack(consumer: string, e: Entry | undefined, onFile: boolean): boolean {
    const c = this.of(consumer);
    if (!e || e.finished || (e.acked & c.bit) !== 0) return false;
    e.acked |= c.bit;
    c.pending--;
    if (onFile) this.dirty = true;
    return true;
  }

  stats(index: RecordIndex, nextSeq: number): Record<string, OutboxConsumerStats> {
    const out: Record<string, OutboxConsumerStats> = {};
    for (const c of this.byName.values()) out[c.name] = { pending: c.pending, floor: index.floor(c.bit, nextSeq) };
    return out;
  }

  /** Writes each cursor whose floor moved (`written` told after each). */
  async write(dir: string, index: RecordIndex, nextSeq: number, written: () => void): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    for (const c of this.byName.values()) {
      const floor = index.floor(c.bit, nextSeq);
      if (floor === c.persistedFloor) continue;
      await writeCursor(dir, c.name, floor);
      c.persistedFloor = floor;
      written();
    }
  }
}
