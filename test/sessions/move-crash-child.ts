/**
 * Child process for the kill-mid-move tests: opens a journal, sells a data session to MAC A, bills some bytes, then
 * moves it to MAC B and SIGKILLs itself at the point named in argv[3] — a real kill, no cleanup, no close:
 *   before-write  the move record never reached the store
 *   after-write   the move is on flash, and nothing (no gate) has heard of it yet
 */
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { LoadResult, SessionStore, StoreRecord } from '../../src/sessions/store.ts';

const [dir, point] = process.argv.slice(2) as [string, 'before-write' | 'after-write'];
const journal = new JournalStore({ dir });
const store: SessionStore = {
  load: (): Promise<LoadResult> => journal.load(),
  append: (records: readonly StoreRecord[]): Promise<void> => {
    if (point === 'before-write' && records.some((r) => r.t === 'move')) process.kill(process.pid, 'SIGKILL');
    return journal.append(records);
  },
  compact: (now) => journal.compact(now),
  close: () => journal.close(),
};
const manager = await SessionManager.open({ store });
const { session } = await manager.activate({
  mac: '02:00:00:00:00:0a',
  metric: 'bytes',
  allotment: 10_000n,
  payment: { method: 'test', reference: 'r1', amount: 5n, asset: 'USDC', at: Date.now() },
});
manager.applyUsage([session.id], [1234], 1);
await manager.checkpoint();
manager.on('moved', () => process.kill(process.pid, 'SIGKILL'));
process.stdout.write(`${session.id}\n`);
await manager.move(session.id, '02:00:00:00:00:0b');
process.stdout.write('not killed\n');
