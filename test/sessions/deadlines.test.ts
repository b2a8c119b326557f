// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeadlineScheduler } from '../../src/sessions/deadlines.ts';
import { FakeTime } from './fake-time.ts';

function make(maxSleepMs = 30_000) {
  const time = new FakeTime(0);
  const fired: Array<[string, number]> = [];
  const scheduler = new DeadlineScheduler({
    clock: time,
    timers: time,
    maxSleepMs,
    onDue: (ids, now) => ids.forEach((id) => fired.push([id, now])),
  });
  return { time, fired, scheduler };
}

test('fires every deadline in order at its time, with one timer armed, through moves and deletions', async () => {
  const { time, fired, scheduler } = make(3_600_000);
  const expected = new Map<string, number>();
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 500; i++) {
    const at = 1000 + Math.floor(rand() * 100_000);
    scheduler.set(`s${i}`, at);
    expected.set(`s${i}`, at);
    assert.ok(time.pending() <= 1);
  }
  for (let i = 0; i < 500; i += 5) {
    const at = 1000 + Math.floor(rand() * 200_000);
    scheduler.set(`s${i}`, at);
    expected.set(`s${i}`, at);
  }
  for (let i = 1; i < 500; i += 7) {
    scheduler.delete(`s${i}`);
    expected.delete(`s${i}`);
  }
  assert.is(time.pending(), 1);
  await time.advance(250_000);
  assert.is(fired.length, expected.size, 'each live deadline fired once, stale entries never');
  for (const [id, now] of fired) assert.is(now, expected.get(id), `${id} fired at its deadline`);
  for (let i = 1; i < fired.length; i++) assert.ok(fired[i]![1] >= fired[i - 1]![1]);
  assert.is(time.pending(), 0);
  assert.is(scheduler.size, 0);
});

test('the timer never sleeps past maxSleepMs, so a wall clock stepped forward is noticed', async () => {
  const { time, fired, scheduler } = make(10_000);
  scheduler.set('a', 1_000_000);
  time.jumpWall(2_000_000);
  await time.advance(10_000);
  assert.equal(
    fired.map(([id]) => id),
    ['a'],
  );
});

test('stop disarms the timer and nothing fires afterwards', async () => {
  const { time, fired, scheduler } = make();
  scheduler.set('a', 5000);
  scheduler.stop();
  assert.is(time.pending(), 0);
  scheduler.set('b', 6000);
  await time.advance(10_000);
  assert.equal(fired, []);
});

test.run();
