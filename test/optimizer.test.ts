// tier: fast
// The daemon holds V8's compilers off while idle (src/optimizer.ts): a hot function is neither optimized nor
// baseline-compiled, and a regexp not compiled to machine code, while held, and all are once released, on this node
// (child processes with V8's --trace-* flags, which print each tier-up).
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

/** What V8 traces for `hot` and two regexps in a child run held, then released (`--trace-*` print each tier-up). */
function traceOfTiers(): string[] {
  const script = `
    import { holdOptimizer, releaseOptimizer } from ${JSON.stringify(MODULE)};
    holdOptimizer();
    console.log('-- held');
    function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
    let sum = 0;
    for (let i = 0; i < 3000; i++) sum += hot(1000);
    for (let i = 0; i < 200; i++) if (/^held(a+)$/.test('heldaa' + 'a'.repeat(i % 3))) sum++;
    console.log('-- released');
    releaseOptimizer();
    for (let i = 0; i < 3000; i++) sum += hot(1000);
    for (let i = 0; i < 200; i++) if (/^after(b+)$/.test('afterbb' + 'b'.repeat(i % 3))) sum++;
    console.log(sum > 0 ? 'done' : '');
  `;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--trace-baseline-batch-compilation',
      '--trace-regexp-tier-up',
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8' },
  );
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split('\n');
}

test('held: no baseline code and regexps interpreted; released: both again', () => {
  const lines = traceOfTiers();
  const from = lines.indexOf('-- held');
  const at = lines.indexOf('-- released');
  assert.ok(from >= 0 && at > from, lines.join('\n'));
  const before = lines.slice(from, at);
  const after = lines.slice(at);
  assert.not.ok(
    before.some((l) => /Enqueued SFI hot\b/.test(l) || /native code size/.test(l)),
    'nothing baseline-compiled or compiled to native regexp code while held',
  );
  assert.ok(
    before.some((l) => /JSRegExp object .* bytecode size/.test(l)),
    'the held regexp ran on the interpreter',
  );
  assert.ok(
    after.some((l) => /Enqueued SFI hot\b/.test(l)),
    'hot is baseline-compiled once released',
  );
  assert.ok(
    after.some((l) => /native code size/.test(l)),
    'a regexp run after the release gets native code',
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
