// tier: fast
/**
 * The sessions snapshot (sessions/journal.ts: `sessions.snapshot`, every session the journal held at its last
 * compaction) against the shared damage suite, under the `sessions-journal` verdict, as the journal runs it
 * (journal-damage.test.ts): each change here is a purchase and a compaction, so the sessions live in the snapshot and
 * its journal holds only a header.
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from '../sessions/store-suite.ts';
import { durableFileSuite } from './durable-file-suite.ts';

durableFileSuite<{ store: JournalStore; ids: string[] }>('sessions snapshot (paid sessions, compacted)', {
  kind: 'sessions-journal',
  file: 'sessions.snapshot',
  code: 'ERR_STATE_LOST',
  open: async (dir) => {
    const store = new JournalStore({ dir });
    const loaded = await store.load();
    return { store, ids: [...loaded.sessions.keys()] };
  },
  put: async (o) => {
    const s = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
    await o.store.append([openRecord(s)]);
    await o.store.compact(1_000_000_000);
    o.ids.push(s.id);
  },
  holds: (o) => [...o.ids].sort(),
  close: (o) => o.store.close(),
  stride: 7,
});
