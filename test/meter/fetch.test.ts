// The meter's own ndsctl spawn (inside the usage worker) must leave nothing behind when it gives up on ndsctl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchSnapshot } from '../../src/meter/fetch.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-fetch-'));

/** Processes whose command line carries `marker` (a sleep the hung wrapper started). */
function survivors(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch { return []; } // pgrep exits 1 when nothing matches
}

test('a hung ndsctl wrapper leaks no process per tick: the timeout kills the whole process group', async () => {
  const marker = String(4000 + Math.floor(Math.random() * 5000)) + '.5';
  const script = join(dir, 'hung-ndsctl');
  // Like `ip netns exec … ndsctl` or an sh wrapper: the child that hangs is not the one the meter spawned.
  writeFileSync(script, `#!/bin/sh\nsleep ${marker} &\nwait\n`);
  chmodSync(script, 0o755);
  for (let tick = 0; tick < 3; tick++) {
    const r = await fetchSnapshot({ kind: 'command', argv: [script] }, { timeoutMs: 200 });
    assert.is(r.ok, false);
    if (!r.ok) assert.is(r.problem, 'timeout');
  }
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(survivors(`sleep ${marker}`), []);
});

test('an ndsctl that prints past the size bound is cut off and its process group killed', async () => {
  const marker = String(4000 + Math.floor(Math.random() * 5000)) + '.25';
  const script = join(dir, 'flood-ndsctl');
  writeFileSync(script, `#!/bin/sh\nsleep ${marker} &\nyes '{"clients":{}}'\n`);
  chmodSync(script, 0o755);
  const r = await fetchSnapshot({ kind: 'command', argv: [script] }, { timeoutMs: 5000, maxBytes: 64 * 1024 });
  assert.is(r.ok, false);
  if (!r.ok) assert.match(r.message, /output over 65536 bytes/);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(survivors(`sleep ${marker}`), []);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
