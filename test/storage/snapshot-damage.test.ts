// tier: fast
/**
 * The sessions snapshot (sessions/journal.ts: `sessions.snapshot`, every session the journal held at its last
 * compaction) against the shared damage suite, under the `sessions-journal` verdict, as the journal runs it
 * (journal-damage.test.ts): each change here is a purchase and a compaction, so the sessions live in the snapshot and
 * its journal holds only a header.
 */
import { sessionsDamageSuite } from './sessions-damage.ts';

sessionsDamageSuite('sessions snapshot (paid sessions, compacted)', 'sessions.snapshot', { compact: true });
