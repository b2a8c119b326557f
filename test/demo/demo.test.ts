/** `sluice demo` from the bundle, headless (stdout is a pipe): it runs, sells, meters, cuts, and exits 0. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BUNDLE, ensureBuilt } from '../daemon/harness.ts';

test('the demo runs headless for a few seconds and exits 0 with a summary', () => {
  ensureBuilt();
  const run = spawnSync(process.execPath, [BUNDLE, 'demo', '--clients', '40', '--seconds', '8'], { encoding: 'utf8', timeout: 60_000 });
  const out = `${run.stdout}\n${run.stderr}`;
  assert.is(run.status, 0, out);
  assert.match(out, /daemon up: 40 clients/);
  assert.match(out, /sluice demo summary/);
  const purchases = Number(/purchases (\d+), top-ups/.exec(out)?.[1]);
  assert.ok(purchases > 0, `made purchases (${purchases})\n${out}`);
  assert.match(out, /\+ 02:00:00:00:[0-9a-f]{2}:5a bought/, 'sessions started and were reported over ubus events');
  assert.match(out, /purchase refused for 02:de:ad:be:ef:00: ERR_AMOUNT_TOO_SMALL/, 'a bad purchase gets its error code');
  assert.match(out, /admin terminate/);
  // A cut session's overshoot is what passed its gate (the portal's counters at the deauth), next to what was billed.
  assert.match(out, /data sessions cut at their allotment: (0; none this run|\d+; passed beyond the allotment p50 -?[\d.]+(KiB|MiB) .*billed beyond it p50)/);
  assert.not.match(out, /uncaught|unhandled/i);
});

test('the bundle runs on its own, as installed on a router: three files, no node_modules, no package.json', () => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-router-'));
  try {
    for (const file of ['sluice.mjs', 'usage-worker.mjs', 'worker.js']) copyFileSync(join(dirname(BUNDLE), file), join(dir, file));
    const run = spawnSync(process.execPath, [join(dir, 'sluice.mjs'), 'demo', '--clients', '10', '--seconds', '4'], {
      encoding: 'utf8', timeout: 60_000, cwd: dir,
    });
    assert.is(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /sluice demo summary/);
    assert.ok(!/Cannot find (module|package)/.test(run.stderr), run.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the demo rejects bad arguments with a usage line', () => {
  ensureBuilt();
  const run = spawnSync(process.execPath, [BUNDLE, 'demo', '--clients', '-3'], { encoding: 'utf8', timeout: 20_000 });
  assert.is(run.status, 2);
  assert.match(run.stderr, /usage: sluice demo/);
});

test.run();
