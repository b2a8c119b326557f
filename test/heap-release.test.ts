// tier: fast
// The daemon lets go of the heap V8 grew into once it is idle again (src/heap-release.ts): a full collection, made
// without `--expose-gc` and without giving sluice's own context a `gc`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { releaseHeap } from '../src/heap-release.ts';

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

test.run();
