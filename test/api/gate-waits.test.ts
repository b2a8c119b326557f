// tier: fast
// The purchase reply's and the `started` event's wait for the gate (src/api/daemon-backend.ts): the outcome when it
// comes first, the wait's own answer after it, and no timer left behind by an outcome that came first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitForClose, waitForOpen } from '../../src/api/daemon-backend.ts';
import type { Session } from '../../src/sessions/index.ts';

const session = {} as Session;

/** Runs `body` with setTimeout/clearTimeout counted: how many timers it left armed. */
async function armedAfter(body: () => Promise<unknown>): Promise<number> {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const armed = new Set<unknown>();
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const t = realSet(
      (...a: unknown[]) => {
        armed.delete(t);
        fn(...a);
      },
      ms,
      ...args,
    );
    armed.add(t);
    return t;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((t: Parameters<typeof clearTimeout>[0]) => {
    armed.delete(t);
    realClear(t);
  }) as typeof clearTimeout;
  try {
    await body();
  } finally {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  }
  for (const t of armed) realClear(t as Parameters<typeof clearTimeout>[0]);
  return armed.size;
}

test('an opening that answers first: its outcome, and the 3 s wait is not left armed', async () => {
  let outcome: string | undefined;
  const left = await armedAfter(async () => {
    outcome = await waitForOpen({ opened: () => Promise.resolve('opened' as const) }, session, 3000);
  });
  assert.is(outcome, 'opened');
  assert.is(left, 0);
});

test('a close that answers first: its outcome (kept-open reads as closed), no timer left', async () => {
  let outcome: string | undefined;
  const left = await armedAfter(async () => {
    outcome = await waitForClose({ closed: () => Promise.resolve('kept-open' as const) }, 'aa', 3000);
  });
  assert.is(outcome, 'closed');
  assert.is(left, 0);
});

test('an opening slower than the wait: `opening`', async () => {
  const never = new Promise<'opened'>(() => undefined);
  const alive = setInterval(() => undefined, 1000); // the wait's own timer is unref'd
  try {
    assert.is(await waitForOpen({ opened: () => never }, session, 5), 'opening');
  } finally {
    clearInterval(alive);
  }
});

test.run();
