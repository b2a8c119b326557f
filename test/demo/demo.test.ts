/** `sluice demo` from the bundle, headless (stdout is a pipe): it runs, sells, meters, cuts, and exits 0. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
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
  assert.not.match(out, /uncaught|unhandled/i);
});

test('the demo rejects bad arguments with a usage line', () => {
  ensureBuilt();
  const run = spawnSync(process.execPath, [BUNDLE, 'demo', '--clients', '-3'], { encoding: 'utf8', timeout: 20_000 });
  assert.is(run.status, 2);
  assert.match(run.stderr, /usage: sluice demo/);
});

test.run();
