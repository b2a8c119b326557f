// tier: fast
/**
 * A restart's reads of the session journal's files (the directory, the lock, the snapshot, every journal, the seals,
 * the journal's length) and its changes (the journal opened for appending, the directory fsynced, the seal written;
 * after damage, the copies kept and the compaction) are synchronous (sessions/journal-start.ts and journal.ts say why):
 * they take no request of the thread pool, each of which is a hop there and back for every open, stat, read, write,
 * fsync and close. Counted here by async_hooks: a count, not a time.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../src/sessions/journal.ts';
import { makeSession, openRecord } from './store-suite.ts';
import { tempDirs } from '../helpers/temp.ts';
import { poolRequests } from '../helpers/pool-requests.ts';

const tempDir = tempDirs('sluice-journal-load-', test.after);

test('a restart reads and opens its files without the thread pool, and compacts damage without it', async () => {
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
  // Reading the files through the pool made it 21, opening the journal and writing the seal through it 11.
  assert.is(requests, 0, 'requests of the thread pool during the load');

  // A flipped bit in the journal: the start keeps a copy, reads past the damaged record and compacts it away.
  const path = join(dir, 'sessions.0.journal');
  const bytes = readFileSync(path);
  bytes[bytes.length - 20]! ^= 1;
  writeFileSync(path, bytes);
  const damaged = new JournalStore({ dir });
  let warnings: string[] = [];
  const compacting = await poolRequests(async () => {
    warnings = (await damaged.load()).warnings.map((w) => w.code);
  });
  const gen = damaged.stats().gen;
  await damaged.close();
  assert.ok(warnings.includes('ERR_JOURNAL_CORRUPT'), `the damage is reported: ${warnings.join(' ')}`);
  assert.is(gen, 1, 'compacted into generation 1');
  // A compaction through the pool made ~30.
  assert.is(compacting, 0, 'requests of the thread pool during a load that compacts');
});

test.run();
