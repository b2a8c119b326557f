// tier: fast
// test/helpers/net.ts freePort: a port a test file picked is held for that file machine-wide (a file per port under
// HELD_DIR with its picker's pid), so another file's pick never lands on it while its daemon is down between a kill
// and a restart; a holder that is gone leaves a stale file, taken over.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HELD_DIR, freePort, holdPort } from './helpers/net.ts';

/** A port far from freePort's range (20000–32767), so the test's own files meet no real pick. */
const base = 40_000 + (process.pid % 10_000);

test('a picked port is held under its picker pid, and never picked twice', async () => {
  const picks = new Set<number>();
  for (let i = 0; i < 20; i++) picks.add(await freePort());
  assert.is(picks.size, 20);
  for (const port of picks) assert.is(readFileSync(join(HELD_DIR, String(port)), 'utf8'), String(process.pid));
});

test("a port a live process holds is not taken; a gone holder's is", async () => {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    writeFileSync(join(HELD_DIR, String(base)), String(sleeper.pid));
    assert.is(holdPort(base), false, 'held by a live process');
    assert.is(readFileSync(join(HELD_DIR, String(base)), 'utf8'), String(sleeper.pid));
  } finally {
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r));
  }
  assert.is(holdPort(base), true, 'its holder is gone: taken over');
  assert.is(readFileSync(join(HELD_DIR, String(base)), 'utf8'), String(process.pid));
  // A file that is not a pid (a half-written one, or anything else) holds nothing.
  writeFileSync(join(HELD_DIR, String(base + 1)), 'not a pid');
  assert.is(holdPort(base + 1), true);
  for (const p of [base, base + 1]) rmSync(join(HELD_DIR, String(p)), { force: true });
});

test.run();
