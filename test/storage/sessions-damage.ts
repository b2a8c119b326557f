/**
 * The session journal's files against the shared damage suite, under the `sessions-journal` verdict: each change is a
 * purchase, and with `compact` also a compaction, so the sessions live in the snapshot and the journal holds only
 * its header.
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from '../sessions/store-suite.ts';
import { durableFileSuite } from './durable-file-suite.ts';

export function sessionsDamageSuite(name: string, file: string, o: { compact: boolean }): void {
  durableFileSuite<{ store: JournalStore; ids: string[] }>(name, {
    kind: 'sessions-journal',
    file,
    code: 'ERR_STATE_LOST',
    open: async (dir) => {
      const store = new JournalStore({ dir });
      const loaded = await store.load();
      return { store, ids: [...loaded.sessions.keys()] };
    },
    put: async (s) => {
      const session = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
      await s.store.append([openRecord(session)]);
      // Held once appended (a compaction that fails after it takes nothing away).
      s.ids.push(session.id);
      if (o.compact) await s.store.compact(1_000_000_000);
    },
    holds: (s) => [...s.ids].sort(),
    close: (s) => s.store.close(),
    stride: 7,
  });
}
