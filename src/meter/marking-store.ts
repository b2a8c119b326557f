/**
 * Adds the meter's counter marks to usage checkpoints on their way to the journal, so the usage a checkpoint records
 * and the portal reading it includes are written in one record (see sessions' MeterMark). Marks are taken when the
 * record is written: a mark can only be ahead of the recorded usage (those bytes would be forgiven after a crash),
 * never behind it (which would bill them twice), because the meter commits a reading before it applies its delta.
 */
import type { CounterMark } from './index.ts';
import type { LoadResult, SessionStore, StoreRecord } from '../sessions/index.ts';

/** Marks by MAC (the meter's committed readings) and the MAC of a session id. */
export interface MarkSource {
  marks(): Map<string, CounterMark>;
  macOf(id: string): string | undefined;
}

export class MarkingStore implements SessionStore {
  /** Unset until the meter is built (it is built after the sessions this store serves): checkpoints go unmarked. */
  private source: MarkSource | undefined;

  constructor(private readonly inner: SessionStore) {}

  /** The meter, once built, marks every usage checkpoint from then on. */
  markWith(source: MarkSource): void {
    this.source = source;
  }

  load(): Promise<LoadResult> {
    return this.inner.load();
  }

  append(records: readonly StoreRecord[]): Promise<void> {
    if (!records.some((r) => r.t === 'usage')) return this.inner.append(records);
    const source = this.source;
    if (!source) return this.inner.append(records);
    const marks = source.marks();
    return this.inner.append(records.map((record) => {
      if (record.t !== 'usage') return record;
      return {
        ...record,
        entries: record.entries.map(([id, used, bytes]) => {
          const mac = source.macOf(id);
          const mark = mac === undefined ? undefined : marks.get(mac);
          return mark ? [id, used, bytes, { ...mark }] : [id, used, bytes];
        }),
      };
    }));
  }

  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
