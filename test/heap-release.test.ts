// tier: fast
// thread: its own (it measures its isolate's old generation, which the modules of the files a thread ran before hold
// part of; test/run.mjs gives it a new thread)
// The daemon lets go of the heap V8 grew into once it is idle again (src/heap-release.ts): a full collection, made
// without `--expose-gc` and without giving sluice's own context a `gc`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getHeapSpaceStatistics } from 'node:v8';
import { releaseHeap } from '../src/heap-release.ts';

/** Resident bytes of V8's old generation (all but the young one). */
function oldSpaceBytes(): number {
  return getHeapSpaceStatistics()
    .filter((s) => !s.space_name.startsWith('new_'))
    .reduce((sum, s) => sum + s.physical_space_size, 0);
}

test('releaseHeap collects what nothing references, and leaves no gc behind', async () => {
  let garbage: object | undefined = { payload: new Array(1000).fill('x') };
  const ref = new WeakRef(garbage);
  garbage = undefined;
  // A WeakRef's target lives until the end of the job that made or read it.
  await new Promise((r) => setImmediate(r));
  assert.ok(releaseHeap(), 'this node hands over its collector');
  assert.is(ref.deref(), undefined, 'collected');
  assert.is(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'no gc in our own context');
});

test('releaseHeap compacts the old generation: pages kept by a few live objects are given back', () => {
  // 200,000 objects promoted to the old generation, then one in 20 kept: every page still holds some.
  let all: object[] | undefined = [];
  for (let i = 0; i < 200_000; i++) all.push({ i, s: `x${i}`, a: [i] });
  releaseHeap();
  releaseHeap();
  const kept: object[] = [];
  for (let i = 0; i < all.length; i += 20) kept.push(all[i]!);
  all = undefined;
  const before = oldSpaceBytes();
  releaseHeap();
  const after = oldSpaceBytes();
  // Without compaction a full collection frees only the pages left empty, and gives back ~10% of it here.
  assert.ok(after < before / 2, `old space ${before} → ${after} bytes`);
  assert.is(kept.length, 10_000);
});

test.run();
