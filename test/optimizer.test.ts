// tier: fast
// The daemon holds V8's compilers off while idle (src/optimizer.ts): a hot function is neither optimized nor
// baseline-compiled while held, and is both once released, on this node (child processes with V8's --trace-* flags,
// which print each tier-up).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bundledModuleUrl } from './helpers/bundled-module.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { holdOptimizer, onOptimizerRelease, optimizerHeld, releaseOptimizer } from '../src/optimizer.ts';

/** src/optimizer.ts, bundled for the children (no TypeScript loader in them: tsx's start was ~1 s of CPU in each). */
const MODULE = bundledModuleUrl(fileURLToPath(new URL('../src/optimizer.ts', import.meta.url)));

/**
 * How often a child calls `hot` while held: more than V8 needs to tier it up at this node's default budgets (the
 * children get none of the hosts' flags; unheld, both compilers take it within ~100 calls), so a hold that let a
 * compiler through would show. Held, each call runs in the interpreter: 3,000 before and 3,000 after were ~0.17 s of a
 * child's CPU. Released, it runs longer, so that the concurrent compile of a busy machine completes before it exits.
 */
const HELD_CALLS = 300;
const RELEASED_CALLS = 3000;

/**
 * What V8 traces (`--trace-opt`, `--trace-baseline-batch-compilation`) in a child that runs `hot` hot, held and then
 * released when `release`. The released child is run once for both tests below.
 */
function trace(release: boolean): string[] {
  const script = `
    import { holdOptimizer, releaseOptimizer } from ${JSON.stringify(MODULE)};
    holdOptimizer();
    console.log('-- held');
    function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
    let sum = 0;
    for (let i = 0; i < ${HELD_CALLS}; i++) sum += hot(1000);
    console.log('-- released');
    if (${release}) releaseOptimizer();
    for (let i = 0; i < ${release ? RELEASED_CALLS : HELD_CALLS}; i++) sum += hot(1000);
    console.log(sum > 0 ? 'done' : '');
  `;
  const r = spawnSync(
    process.execPath,
    ['--trace-opt', '--trace-baseline-batch-compilation', '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('\n');
}

let releasedTrace: string[] | undefined;
const released = (): string[] => (releasedTrace ??= trace(true));

/** --trace-opt's lines about `hot`, and the release's. */
const optimizing = (lines: string[]): string[] =>
  lines.filter((l) => /<JSFunction hot\b/.test(l) || l === '-- released');

test('held: a hot function is not optimized; released: it is', () => {
  const held = optimizing(trace(false));
  assert.equal(held, ['-- released'], 'never optimized while held');
  const lines = optimizing(released());
  assert.is(lines[0], '-- released', 'nothing before the release');
  assert.ok(
    lines.some((l) => /completed (optimizing|compiling)/.test(l)),
    lines.join('\n'),
  );
});

test('held: no baseline (Sparkplug) code for a hot function; released: it gets some', () => {
  const lines = released();
  const from = lines.indexOf('-- held');
  const at = lines.indexOf('-- released');
  assert.ok(from >= 0 && at > from, lines.join('\n'));
  assert.not.ok(
    lines.slice(from, at).some((l) => /Enqueued SFI hot\b/.test(l)),
    'nothing baseline-compiled while held',
  );
  assert.ok(
    lines.slice(at).some((l) => /Enqueued SFI hot\b/.test(l)),
    'hot is baseline-compiled once released',
  );
});

test('release is a no-op unless held, and holds only once', () => {
  assert.is(optimizerHeld(), false);
  releaseOptimizer();
  assert.is(optimizerHeld(), false);
  holdOptimizer();
  assert.is(optimizerHeld(), true);
  releaseOptimizer();
  assert.is(optimizerHeld(), false);
});

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('work waiting for the release runs once, on a turn after it; none waits when nothing is held', async () => {
  const ran: string[] = [];
  onOptimizerRelease(() => ran.push('never held'));
  holdOptimizer();
  onOptimizerRelease(() => ran.push('warm'));
  await nextTurn();
  assert.equal(ran, [], 'nothing runs while held');
  releaseOptimizer();
  assert.equal(ran, [], 'not inside the work that let them go');
  await nextTurn();
  assert.equal(ran, ['warm']);
  holdOptimizer();
  releaseOptimizer();
  await nextTurn();
  assert.equal(ran, ['warm'], 'once');
});

test.run();
