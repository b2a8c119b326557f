/**
 * Child process for the kill-mid-compaction test: appends records, then compacts and SIGKILLs itself at the step
 * named in argv[3] — a real kill, no cleanup, no close. With argv[5] `start`: only starts on the state the parent left
 * (damaged, so the start compacts), and SIGKILLs itself at that step of the start's compaction.
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import type { CrashPoint } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from './store-suite.ts';

const [dir, step, count, when] = process.argv.slice(2) as [string, CrashPoint, string, string | undefined];
const store = new JournalStore({
  dir,
  crashPoint: (at) => {
    if (at === step) process.kill(process.pid, 'SIGKILL');
  },
});
await store.load();
if (when === 'start') {
  process.stdout.write('started\n');
  process.exit(0);
}
const sessions = Array.from({ length: Number(count) }, () => makeSession());
await Promise.all(sessions.map((s) => store.append([openRecord(s)])));
await store.append([{ t: 'usage', at: 1, entries: sessions.map((s, i) => [s.id, i + 1, i + 1]) }]);
// Tell the parent what is on flash before the compaction starts.
process.stdout.write(JSON.stringify(sessions.map((s) => s.id)) + '\n');
await store.compact(Date.now());
process.stdout.write('compacted\n');
