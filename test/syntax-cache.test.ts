// tier: fast
// The architecture tests' cache of syntax facts (test/helpers/syntax-cache.ts): a source's facts are read once and
// kept by its hash, a changed source is read anew, and a miss while another thread holds the parser's turn waits for
// what that thread writes instead of parsing the same files again; a turn whose holder is gone is taken.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { syntaxCache } from './helpers/syntax-cache.ts';
import { tempDirs } from './helpers/temp.ts';

const tempDir = tempDirs('sluice-syntax-cache-', test.after);
/** The reader whose text is part of the key: this file. */
const READER = import.meta.url;

function counted(facts: unknown): { read: () => unknown; calls: () => number } {
  let calls = 0;
  return {
    read: () => {
      calls++;
      return facts;
    },
    calls: () => calls,
  };
}

test('a source is read once, kept across runs by its hash; a changed source is read anew', () => {
  const dir = tempDir();
  const first = syntaxCache(dir);
  const a = counted({ n: 1 });
  assert.equal(first.cachedFacts('k', READER, 'const a = 1;', a.read), { n: 1 });
  assert.equal(first.cachedFacts('k', READER, 'const a = 1;', a.read), { n: 1 });
  assert.is(a.calls(), 1);
  first.flush();
  assert.not.ok(existsSync(join(dir, 'parsing.lock')), 'the turn is given back');

  const next = syntaxCache(dir);
  const again = counted({ n: 2 });
  assert.equal(next.cachedFacts('k', READER, 'const a = 1;', again.read), { n: 1 }, 'kept by the first run');
  assert.is(again.calls(), 0);
  assert.equal(next.cachedFacts('k', READER, 'const a = 2;', again.read), { n: 2 }, 'an edited source');
  assert.is(again.calls(), 1);
  assert.equal(next.cachedFacts('other', READER, 'const a = 1;', again.read), { n: 2 }, 'another kind of fact');
  assert.is(again.calls(), 2);
});

test("a miss waits for the turn's holder and reads back what it wrote instead of parsing", async () => {
  const dir = tempDir();
  const writer = syntaxCache(dir);
  writer.cachedFacts('k', READER, 'const b = 1;', () => ({ parsed: 'by the holder' }));
  writer.flush();
  // The holder (this process, alive) has the turn and has not written yet; another thread writes and gives it back.
  const lock = join(dir, 'parsing.lock');
  writeFileSync(lock, `${process.pid}\n`);
  renameSync(join(dir, 'k.json'), join(dir, 'k.json.later'));
  const holder = new Worker(
    `const { renameSync, rmSync } = require('node:fs');
     const { dir } = require('node:worker_threads').workerData;
     setTimeout(() => { renameSync(dir + '/k.json.later', dir + '/k.json'); rmSync(dir + '/parsing.lock'); }, 300);`,
    { eval: true, workerData: { dir } },
  );
  await new Promise((resolve) => holder.once('online', resolve));
  const waiter = counted({ parsed: 'by the waiter' });
  assert.equal(syntaxCache(dir).cachedFacts('k', READER, 'const b = 1;', waiter.read), { parsed: 'by the holder' });
  assert.is(waiter.calls(), 0);
  await new Promise((resolve) => holder.once('exit', resolve));
});

test('a turn whose holder is gone is taken, and given back at the flush', () => {
  const dir = tempDir();
  const lock = join(dir, 'parsing.lock');
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  writeFileSync(lock, `${gone}\n`);
  const cache = syntaxCache(dir);
  const read = counted({ n: 3 });
  assert.equal(cache.cachedFacts('k', READER, 'const c = 1;', read.read), { n: 3 });
  assert.is(read.calls(), 1);
  assert.is(readFileSync(lock, 'utf8'), `${process.pid}\n`, 'the turn is this thread’s now');
  cache.flush();
  assert.not.ok(existsSync(lock));
});

test("a flush keeps what another thread wrote (the other test's own sources); an entry long unasked is dropped", () => {
  const dir = tempDir();
  // The two architecture tests: each reads a source of its own (the turn taken and given back at its flush).
  const one = syntaxCache(dir);
  one.cachedFacts('k', READER, 'const one = 1;', () => ({ n: 'one' }));
  one.flush();
  const two = syntaxCache(dir);
  two.cachedFacts('k', READER, 'const two = 2;', () => ({ n: 'two' }));
  two.flush();
  const next = syntaxCache(dir);
  const read = counted({ n: 'again' });
  assert.equal(next.cachedFacts('k', READER, 'const one = 1;', read.read), { n: 'one' }, 'the first flush kept');
  assert.equal(next.cachedFacts('k', READER, 'const two = 2;', read.read), { n: 'two' });
  assert.is(read.calls(), 0);

  // An entry last asked for eight days ago (a source as it was before an edit) goes at the next write.
  const file = join(dir, 'k.json');
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, { t: number }> };
  const [oldKey] = Object.keys(stored.entries);
  stored.entries[oldKey!]!.t = Date.now() - 8 * 24 * 60 * 60 * 1000;
  writeFileSync(file, JSON.stringify(stored));
  const writer = syntaxCache(dir);
  writer.cachedFacts('k', READER, 'const three = 3;', () => ({ n: 'three' }));
  writer.flush();
  const kept = Object.keys((JSON.parse(readFileSync(file, 'utf8')) as typeof stored).entries);
  assert.is(kept.length, 2, 'the old entry dropped, the recent and the new kept');
  assert.not.ok(kept.includes(oldKey!));
});

test.run();
