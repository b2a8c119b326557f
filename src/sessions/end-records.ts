/**
 * When a session's end is on flash. The session manager emits `ended` as the session ends (the gate must close at
 * once) and writes the end record in the background, so a listener that acts on `ended` alone can act for an end a
 * crash then loses: the session comes back ACTIVE after the restart. What must follow only a durable end (closing an
 * escrow session on chain) waits for this instead: the store's append of the end record resolved, which by the
 * SessionStore contract means durable (for the journal: fsynced). An end the store refused and the manager wrote on
 * a retry is told when that retry succeeds.
 */
import type { Session } from './model.ts';
import type { SessionEventsView } from './ports.ts';
import type { LoadResult, SessionStore, StoreRecord } from './store.ts';

export type EndsWrittenListener = (sessionIds: readonly string[]) => void;

export class EndRecordsTap implements SessionStore {
  private readonly listeners = new Set<EndsWrittenListener>();

  constructor(private readonly inner: SessionStore) {}

  /** Told the ids of the sessions whose end records are now durable; returns the unsubscribe. */
  onEndsWritten(listener: EndsWrittenListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  load(): Promise<LoadResult> {
    return this.inner.load();
  }

  async append(records: readonly StoreRecord[]): Promise<void> {
    await this.inner.append(records);
    const ended = records.flatMap((r) => (r.t === 'end' ? [r.id] : []));
    if (ended.length === 0) return;
    for (const listener of this.listeners) {
      // A listener's failure is its own: the append succeeded and its caller must hear so.
      try {
        listener(ended);
      } catch {
        /* reported by the listener */
      }
    }
  }

  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * What a method does once a session's end is on flash, written once for every method that settles or closes after
 * the end (batch-settlement's charge, upto's settle, escrow's close). `pick` reads at the `ended` event what the
 * method needs of the session (its references, what it used, when it ended: the session as it ended), undefined for a
 * session the method did not pay for; `act` gets that once the session's end record is durable, once.
 */
export function afterEndOnFlash<T>(
  sessions: SessionEventsView,
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>,
  pick: (session: Session) => T | undefined,
  act: (end: T) => void,
): void {
  const unwritten = new Map<string, T>();
  sessions.on('ended', (s) => {
    const end = pick(s);
    if (end !== undefined) unwritten.set(s.id, end);
  });
  endsWritten.onEndsWritten((ids) => {
    for (const id of ids) {
      const end = unwritten.get(id);
      if (end === undefined) continue;
      unwritten.delete(id);
      act(end);
    }
  });
}
