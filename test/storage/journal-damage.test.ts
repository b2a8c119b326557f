// tier: fast
/**
 * The session journal (sessions/journal.ts: `sessions.<gen>.journal` after its snapshot) against the shared damage
 * suite, under the `sessions-journal` verdict: a cut below what was acknowledged, an emptied, deleted or older journal
 * and a directory in its place refuse to start (ERR_STATE_LOST, its seal telling a cut or an older copy from a crash's
 * torn record); a flipped bit is read past (the damaged record reported, the rest read).
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from '../sessions/store-suite.ts';
import { durableFileSuite } from './durable-file-suite.ts';

durableFileSuite<{ store: JournalStore; ids: string[] }>('session journal (paid sessions)', {
  kind: 'sessions-journal',
  file: 'sessions.0.journal',
  code: 'ERR_STATE_LOST',
  open: async (dir) => {
    const store = new JournalStore({ dir });
    const loaded = await store.load();
    return { store, ids: [...loaded.sessions.keys()] };
  },
  put: async (o) => {
    const s = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
    await o.store.append([openRecord(s)]);
    o.ids.push(s.id);
  },
  holds: (o) => [...o.ids].sort(),
  close: (o) => o.store.close(),
  stride: 7,
});
