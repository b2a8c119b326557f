// tier: fast
// listener/bind-again.ts: a door whose bind was refused is tried again on its own, after FIRST_MS, then twice as
// long each time up to MAX_MS; one try armed at a time; bound or stopped, nothing more is tried and the next refusal
// starts at FIRST_MS again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BindAgain, FIRST_MS, MAX_MS } from '../../src/listener/bind-again.ts';
import { FakeTime } from '../helpers/fake-time.ts';

test('tries after a refusal, waiting twice as long each time up to the cap', async () => {
  const time = new FakeTime();
  const tries: number[] = [];
  const start = time.now();
  const again = new BindAgain(() => {
    tries.push(time.now() - start);
    again.failed();
  }, time);
  assert.is(again.failed(), FIRST_MS);
  assert.ok(again.pending);
  await time.advance(FIRST_MS - 1);
  assert.equal(tries, [], 'not before its wait');
  await time.advance(1);
  assert.equal(tries, [FIRST_MS]);
  await time.advance(20 * MAX_MS);
  const gaps = tries.map((t, i) => t - (tries[i - 1] ?? 0));
  assert.is(gaps[1], 2 * FIRST_MS);
  assert.is(gaps[2], 4 * FIRST_MS);
  assert.is(Math.max(...gaps), MAX_MS, 'never longer than the cap');
  assert.is(gaps.at(-1), MAX_MS);
  assert.is(time.pending(), 1, 'one try armed at a time');
});

test('bound or stopped: nothing more is tried, and the next refusal starts over', async () => {
  const time = new FakeTime();
  let tries = 0;
  const again = new BindAgain(() => void tries++, time);
  again.failed();
  again.failed();
  assert.is(time.pending(), 1, 'a second refusal replaces the armed try');
  again.done();
  assert.not.ok(again.pending);
  await time.advance(10 * MAX_MS);
  assert.is(tries, 0);
  assert.is(again.failed(), FIRST_MS, 'starts over at the first wait');
  await time.advance(FIRST_MS);
  assert.is(tries, 1);
});

test.run();
