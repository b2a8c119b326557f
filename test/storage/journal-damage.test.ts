// tier: fast
/**
 * The session journal (sessions/journal.ts: `sessions.<gen>.journal` after its snapshot) against the shared damage
 * suite, under the `sessions-journal` verdict: a cut below what was acknowledged, an emptied, deleted or older journal
 * and a directory in its place refuse to start (ERR_STATE_LOST, its seal telling a cut or an older copy from a crash's
 * torn record); a flipped bit is read past (the damaged record reported, the rest read).
 */
import { sessionsDamageSuite } from './sessions-damage.ts';

sessionsDamageSuite('session journal (paid sessions)', 'sessions.0.journal', { compact: false });
