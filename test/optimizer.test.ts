// tier: fast
// The daemon holds V8's optimizing compiler off while idle (src/optimizer.ts): a hot function is not optimized while
// held and is once released, on this node (a child process with --trace-opt, which prints each optimization).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { holdOptimizer, optimizerHeld, releaseOptimizer } from '../src/optimizer.ts';

const MODULE = fileURLToPath(new URL('../src/optimizer.ts', import.meta.url));

/** --trace-opt's lines about `hot` in a child that runs it hot, held and then released when `release`. */
function traceOfHot(release: boolean): string[] {
  const script = `
    import { holdOptimizer, releaseOptimizer } from ${JSON.stringify(MODULE)};
    holdOptimizer();
    function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
    let sum = 0;
    for (let i = 0; i < 3000; i++) sum += hot(1000);
    console.log('-- released');
    if (${release}) releaseOptimizer();
    for (let i = 0; i < 3000; i++) sum += hot(1000);
    console.log(sum > 0 ? 'done' : '');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--trace-opt', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => /<JSFunction hot\b/.test(l) || l === '-- released');
}

test('held: a hot function is not optimized; released: it is', () => {
  const held = traceOfHot(false);
  assert.equal(held, ['-- released'], 'never optimized while held');
  const released = traceOfHot(true);
  assert.is(released[0], '-- released', 'nothing before the release');
  assert.ok(
    released.some((l) => /completed (optimizing|compiling)/.test(l)),
    released.join('\n'),
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

test.run();
