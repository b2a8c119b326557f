/**
 * Child process for the kill-mid-compaction test: appends records, then compacts and SIGKILLs itself at the step
 * named in argv[3] — a real kill, no cleanup, no close.
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import type { CrashPoint } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from './store-suite.ts';

const [dir, step, count] = process.argv.slice(2) as [string, CrashPoint, string];
const store = new JournalStore({
  dir,
  crashPoint: (at) => {
    if (at === step) process.kill(process.pid, 'SIGKILL');
  },
});
await store.load();
const sessions = Array.from({ length: Number(count) }, () => makeSession());
await Promise.all(sessions.map((s) => store.append([openRecord(s)])));
await store.append([{ t: 'usage', at: 1, entries: sessions.map((s, i) => [s.id, i + 1, i + 1]) }]);
// Tell the parent what is on flash before the compaction starts.
process.stdout.write(JSON.stringify(sessions.map((s) => s.id)) + '\n');
await store.compact(Date.now());
process.stdout.write('compacted\n');
