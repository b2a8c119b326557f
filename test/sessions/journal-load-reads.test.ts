// tier: fast
/**
 * A restart's reads of the session journal's files (the directory, the lock, the snapshot, every journal, the seals,
 * the journal's length) are synchronous (sessions/journal-start.ts says why): they take no request of the thread pool,
 * each of which is a hop there and back for every open, stat, read and close. What the load still asks of the pool is
 * its writes (the journal opened for appending, the directory fsynced), counted here by async_hooks: a count, not a
 * time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from './store-suite.ts';
import { tempDirs } from '../helpers/temp.ts';
import { poolRequests } from '../helpers/pool-requests.ts';

const tempDir = tempDirs('sluice-journal-load-', test.after);

test('a restart reads the snapshot, the journal, the seals and the lock without the thread pool', async () => {
  const dir = tempDir();
  const first = new JournalStore({ dir });
  await first.load();
  for (let i = 0; i < 3; i++) {
    const session = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
    await first.append([openRecord(session)]);
  }
  await first.close();

  const again = new JournalStore({ dir });
  let held = 0;
  const requests = await poolRequests(async () => {
    held = (await again.load()).sessions.size;
  });
  await again.close();
  assert.is(held, 3, 'the restart holds the three sessions');
  // The journal opened for appending (an open, a stat) and the directory fsynced (an open, an fsync, a close): 5.
  // Reading the files through the pool made it 21, and making sure of the directory through it 7.
  assert.ok(requests <= 5, `${requests} requests of the thread pool during the load, 5 expected at most`);
});

test.run();
