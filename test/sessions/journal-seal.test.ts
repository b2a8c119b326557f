// tier: fast
/**
 * The journal's seal (sessions/journal-seal.ts), past what the shared damage suite does to the journal file alone: the
 * snapshot and its journal put back from before a compaction (each whole, reading as a good pair), and a whole
 * state_dir put back from an older copy, which only the seal's copy kept outside state_dir (in RAM on a router) sees.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { isSluiceError } from '../../src/errors.ts';
import { makeSession, openRecord } from './store-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-journal-seal-', test.after);
const session = () => makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });

async function refusal(dir: string, sealCopy?: string): Promise<string> {
  const store = new JournalStore({ dir, ...(sealCopy && { sealCopy }) });
  let held: number;
  try {
    held = (await store.load()).sessions.size;
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_STATE_LOST'), String(err));
    assert.is(err.details?.['damaged'], true);
    return err.message;
  }
  await store.close();
  return `opened (${held} sessions)`;
}

test('the snapshot and its journal put back from before the last compaction refuse to start', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir });
  await store.load();
  await store.append([openRecord(session())]);
  await store.compact(Date.now());
  await store.append([openRecord(session())]);
  const snapshot = readFileSync(join(dir, 'sessions.snapshot'));
  const journal = readFileSync(join(dir, 'sessions.1.journal'));
  await store.append([openRecord(session())]);
  await store.compact(Date.now());
  await store.close();
  rmSync(join(dir, 'sessions.2.journal'));
  writeFileSync(join(dir, 'sessions.snapshot'), snapshot);
  writeFileSync(join(dir, 'sessions.1.journal'), journal);
  const why = await refusal(dir);
  assert.match(why, /journal generation 1, while their seal says generation 2/, why);
});

test('a whole state_dir put back older: seen by the seal kept outside it, not by the one beside', async () => {
  const dir = tempDir();
  const ram = join(tempDir(), 'journal.seal');
  const store = new JournalStore({ dir, sealCopy: ram });
  await store.load();
  await store.append([openRecord(session())]);
  const backup = tempDir();
  await store.close();
  cpSync(dir, backup, { recursive: true });
  const again = new JournalStore({ dir, sealCopy: ram });
  await again.load();
  await again.append([openRecord(session())]);
  await again.close();
  rmSync(dir, { recursive: true });
  cpSync(backup, dir, { recursive: true });
  assert.match(await refusal(dir, ram), /seal says/, 'the copy outside state_dir sees it');
  assert.match(await refusal(dir), /^opened/, 'the seal beside came back with the directory: not seen');
});

test.run();
