/**
 * Adds the meter's counter marks to the records on their way to the journal, so the usage a record holds and the
 * portal reading it includes are written in one record (see sessions' MeterMark):
 * - a usage checkpoint gets each session's last committed reading, taken when the record is written: a mark can only
 *   be ahead of the recorded usage (those bytes would be forgiven after a crash), never behind it (which would bill
 *   them twice), because the meter commits a reading before it applies its delta;
 * - a purchase (`open`) gets the reading its session starts from (Meter.openingMark: zero for the gate its auth is
 *   about to open), durable with the purchase, before the gate opens: a crash at any moment after, even before the
 *   first checkpoint, restarts billing from it, and the bytes the portal counted since the auth are billed, not
 *   forgiven (without the mark, a kill -9 in a session's first second billed 0.5 of 1.5 MiB used).
 */
import type { MeterMark as CounterMark } from './model.ts';
import type { LoadResult, SessionStore, StoreRecord } from './store.ts';

/** Marks by MAC (the meter's committed readings) and the MAC of a session id. */
export interface MarkSource {
  marks(): Map<string, CounterMark>;
  macOf(id: string): string | undefined;
  /** The reading a session opened now for this MAC starts from; absent: purchases go unmarked. */
  openingMark?(mac: string): CounterMark;
}

export class MarkingStore implements SessionStore {
  /** Unset until the meter is built (it is built after the sessions this store serves): checkpoints go unmarked. */
  private source: MarkSource | undefined;

  constructor(private readonly inner: SessionStore) {}

  /** The meter, once built, marks every usage checkpoint and purchase from then on. */
  markWith(source: MarkSource): void {
    this.source = source;
  }

  load(): Promise<LoadResult> {
    return this.inner.load();
  }

  append(records: readonly StoreRecord[]): Promise<void> {
    const source = this.source;
    if (!source || !records.some((r) => r.t === 'usage' || r.t === 'open')) return this.inner.append(records);
    let marks: Map<string, CounterMark> | undefined;
    return this.inner.append(
      records.map((record) => {
        if (record.t === 'open') {
          const mark = source.openingMark?.(record.session.mac);
          return mark && !record.session.meterMark
            ? { ...record, session: { ...record.session, meterMark: { ...mark } } }
            : record;
        }
        if (record.t !== 'usage') return record;
        marks ??= source.marks();
        const committed = marks;
        return {
          ...record,
          entries: record.entries.map(([id, used, bytes]) => {
            const mac = source.macOf(id);
            const mark = mac === undefined ? undefined : committed.get(mac);
            return mark ? [id, used, bytes, { ...mark }] : [id, used, bytes];
          }),
        };
      }),
    );
  }

  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
