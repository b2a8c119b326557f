// tier: fast
/**
 * The journal's seal is rewritten in place (sessions/journal-seal.ts): one data block a write at the block device
 * rather than a new inode, a rename and a directory fsync each time; a missing seal, or one of another length (an
 * older one), is replaced atomically, and every seal reads back as the mark last set.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalSealWriter, readJournalSeals, SEAL_BYTES } from '../../src/sessions/journal-seal.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-journal-seal-place-', test.after);

test('a seal is written once atomically, then overwritten in place, each write reading back', async () => {
  const dir = tempDir();
  const path = join(dir, 'sessions.seal');
  const writer = new JournalSealWriter([path]);
  writer.set({ gen: 0, bytes: 120 });
  await writer.settled();
  const ino = statSync(path).ino;
  assert.is(statSync(path).size, SEAL_BYTES);
  for (let bytes = 200; bytes < 2000; bytes += 300) {
    writer.set({ gen: 3, bytes });
    await writer.settled();
    assert.is(statSync(path).ino, ino, 'the same file, rewritten in place (was: a new one renamed over it)');
    assert.equal((await readJournalSeals([path])).mark, { gen: 3, bytes });
  }
  writer.set({ gen: 2 ** 52, bytes: Number.MAX_SAFE_INTEGER });
  await writer.settled();
  assert.equal((await readJournalSeals([path])).mark, { gen: 2 ** 52, bytes: Number.MAX_SAFE_INTEGER });
  assert.is(statSync(path).size, SEAL_BYTES, 'the largest mark fits');
});

test('a seal of another length (written by an older sluice) is replaced whole', async () => {
  const dir = tempDir();
  const path = join(dir, 'sessions.seal');
  writeFileSync(path, `${JSON.stringify({ gen: 7, bytes: 123456789 })}\n`);
  const writer = new JournalSealWriter([path]);
  writer.set({ gen: 7, bytes: 5 });
  await writer.settled();
  assert.is(statSync(path).size, SEAL_BYTES);
  assert.equal(JSON.parse(readFileSync(path, 'utf8')), { gen: 7, bytes: 5 }, 'no tail of the older, longer seal');
});

test.run();
