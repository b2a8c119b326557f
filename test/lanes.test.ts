// tier: fast
// test/run.mjs's pool (test/helpers/lanes.mjs; docs/testing.md "The edit loop"): its files run a fixed number at a
// time, and more beside them only while the machine has a core idle and only the files the runner allows (the fast
// tier's threads); each file runs once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { idleCores, runLanes } from './helpers/lanes.mjs';
import { until } from './helpers/until.ts';

const stat = (user: number, idle: number, iowait: number, steal: number): string =>
  `cpu  ${user} 0 0 ${idle} ${iowait} 0 0 ${steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n`;

test('idle cores between two /proc/stat readings: idle and iowait of the ticks that passed, not stolen time', () => {
  assert.is(idleCores(stat(100, 100, 0, 0), stat(150, 150, 0, 0), 2), 1);
  assert.is(idleCores(stat(100, 100, 0, 0), stat(200, 150, 50, 0), 2), 1, 'iowait is idle');
  assert.is(idleCores(stat(100, 100, 0, 0), stat(150, 100, 0, 50), 2), 0, 'stolen is not');
  assert.is(idleCores(stat(100, 100, 0, 0), stat(100, 100, 0, 0), 2), null, 'no tick passed');
});

/** Items 0..n-1; each run waits until `release(i)` holds; records how many ran at once. */
function rig(n: number, release: (i: number, started: number[]) => boolean) {
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const run = async (i: number): Promise<void> => {
    started.push(i);
    most = Math.max(most, ++running);
    await until(() => release(i, started), 10_000, `item ${i} released (started: ${started.join(',')})`, 2);
    running--;
  };
  return { items: Array.from({ length: n }, (_, i) => i), run, started, most: () => most };
}

test('while a core idles, the files allowed beside the lanes start, up to the most at once', async () => {
  // The first three end only once they run at once: with one lane, only the files beside it get there.
  const r = rig(5, (_, started) => started.length >= 3);
  const beside = await runLanes(r.items, {
    lanes: 1,
    most: 3,
    run: r.run,
    beside: () => true,
    idle: () => 2,
    sampleMs: 1,
  });
  assert.equal(r.started, [0, 1, 2, 3, 4], 'each once, in order');
  assert.ok(r.most() >= 3 && r.most() <= 3, `at most 3 at once: ${r.most()}`);
  assert.ok(beside >= 2, `${beside} beside the lane`);
});

test('no core idle, or a file not allowed beside: no more than the lanes at once', async () => {
  for (const [idle, beside] of [
    [0.5, true],
    [null, true],
    [2, false],
  ] as const) {
    let samples = 0;
    const since: number[] = [];
    // Each item runs until the pool has read the machine's idle time 3 times since it started (it stops reading once
    // the last item started).
    const r = rig(6, (i, started) => samples >= since[i]! + 3 || started.length === 6);
    const n = await runLanes(r.items, {
      lanes: 2,
      most: 4,
      run: async (i) => {
        since[i] = samples;
        await r.run(i);
      },
      beside: () => beside,
      idle: () => {
        samples++;
        return idle;
      },
      sampleMs: 1,
    });
    assert.equal(r.started, [0, 1, 2, 3, 4, 5], `each once, in order (idle ${idle}, beside ${beside})`);
    assert.is(r.most(), 2, `idle ${idle}, beside ${beside}`);
    assert.is(n, 0);
  }
});

test('a file that waits takes no lane: it starts beside them at once, the lanes run the others', async () => {
  // Items 0-2 wait (the gatekeeper's retry timers): each ends only once the last other item (9) started, which would
  // never happen if they held the two lanes. No core is ever idle: only their waiting puts them beside.
  const waits = (i: number): boolean => i < 3;
  const r = rig(10, (i, started) => !waits(i) || started.includes(9));
  const beside = await runLanes(r.items, { lanes: 2, most: 4, run: r.run, beside: () => true, waits, idle: () => 0 });
  assert.equal(r.started.slice(0, 4), [3, 4, 0, 1], 'the lanes take the first others, two waiting ones start beside');
  assert.equal(
    [...r.started].sort((a, b) => a - b),
    r.items,
    'each once',
  );
  assert.equal(
    r.started.filter((i) => !waits(i)),
    [3, 4, 5, 6, 7, 8, 9],
    'the others in order',
  );
  assert.equal(r.started.filter(waits), [0, 1, 2], 'the waiting ones in order');
  assert.ok(r.most() <= 4, `at most 4 at once: ${r.most()}`);
  assert.is(beside, 2, 'two waiting ones beside the lanes (most - lanes); the third in a lane, once the others ran');
});

test('once only waiting files are left, the lanes take them too', async () => {
  const r = rig(4, () => true);
  const beside = await runLanes(r.items, { lanes: 2, most: 3, run: r.run, beside: () => true, waits: () => true });
  assert.equal([...r.started].sort(), [0, 1, 2, 3]);
  assert.ok(beside >= 1 && beside <= 2, `${beside} beside`);
  assert.ok(r.most() <= 3, `at most 3 at once: ${r.most()}`);
});

test('an empty list resolves at once; a failing run rejects the pool', async () => {
  assert.is(await runLanes([], { lanes: 2, run: async () => {} }), 0);
  let failed: unknown = null;
  await runLanes([1, 2], {
    lanes: 1,
    run: async (i) => {
      if (i === 2) throw new Error('boom');
    },
  }).catch((err) => (failed = err));
  assert.instance(failed, Error);
});

test.run();
