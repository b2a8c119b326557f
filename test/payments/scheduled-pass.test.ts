// tier: fast
/**
 * The one scheduler of the payment methods' background passes (src/payments/scheduled-pass.ts: x402's resolver,
 * escrow's closes, batch-settlement's settler and withdrawal watch, upto's due settles), on fake time: the first pass
 * at start, a pass never overlapping itself, a timer due during a pass running one more after it, stop() ending the
 * pass in flight and arming nothing more, backoff after failures (src/backoff.ts) reset by a success.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ScheduledPass, type ScheduledPassOptions } from '../../src/payments/scheduled-pass.ts';
import { FakeTime } from '../helpers/fake-time.ts';

/** A pass the test finishes by hand: each run waits for release() (or its signal's abort). */
function gatedPass(time: FakeTime, o: Partial<ScheduledPassOptions<number>> = {}) {
  let running = 0;
  let most = 0;
  let runs = 0;
  const waiting: Array<() => void> = [];
  const failures: number[] = [];
  let fail = false;
  const pass = new ScheduledPass<number>({
    async run(signal) {
      runs++;
      running++;
      most = Math.max(most, running);
      try {
        await new Promise<void>((resolve, reject) => {
          waiting.push(resolve);
          signal.addEventListener(
            'abort',
            () => {
              waiting.splice(waiting.indexOf(resolve), 1);
              reject(new Error('aborted'));
            },
            { once: true },
          );
        });
        if (fail) throw new Error('flash full');
        return runs;
      } finally {
        running--;
      }
    },
    retry: { minMs: 1000, maxMs: 4000 },
    failed: (_err, retryInMs) => failures.push(retryInMs),
    clock: time,
    timers: time,
    ...o,
  });
  return {
    pass,
    get runs() {
      return runs;
    },
    get most() {
      return most;
    },
    get running() {
      return running;
    },
    failures,
    failNext(v: boolean) {
      fail = v;
    },
    release: async () => {
      waiting.shift()?.();
      await time.advance(0);
    },
  };
}

/** Runs a pass that fails, and checks it did. */
async function failedPass(g: ReturnType<typeof gatedPass>): Promise<void> {
  const out = g.pass.run().then(
    () => 'passed',
    (err: Error) => err.message,
  );
  await g.release();
  assert.is(await out, 'flash full');
}

test('start arms the first pass due at once; next() asks for the following one', async () => {
  const time = new FakeTime();
  const g = gatedPass(time, { next: () => 5000 });
  g.pass.start();
  assert.is(time.pending(), 1, 'a timer due at once: the caller of start() returns first');
  await time.advance(0);
  assert.is(g.runs, 1, 'the first pass ran');
  g.pass.start();
  assert.is(time.pending(), 0, 'a second start() does nothing');
  await g.release();
  await time.advance(4999);
  assert.is(g.runs, 1);
  await time.advance(1);
  assert.is(g.runs, 2, 'the pass asked for the next in 5 s');
});

test(
  'a pass never overlaps itself: run() joins the pass in ' + 'flight; a timer due meanwhile runs one more after it',
  async () => {
    const time = new FakeTime();
    const g = gatedPass(time);
    const first = g.pass.run();
    const joined = g.pass.run();
    assert.is(g.runs, 1, 'run() during a pass joins it');
    g.pass.soon(10);
    await time.advance(10);
    assert.is(g.runs, 1, 'the timer came due during the pass: no second pass at once');
    assert.is(g.running, 1);
    await g.release();
    assert.is(await first, 1);
    assert.is(await joined, 1);
    await time.advance(0);
    assert.is(g.runs, 2, 'one more pass after the one in flight: what arrived meanwhile is not left waiting');
    await g.release();
    assert.is(g.most, 1, 'never two passes at once');
  },
);

test('soon(): the earliest request wins, one timer at a time', async () => {
  const time = new FakeTime();
  const g = gatedPass(time);
  g.pass.soon(5000);
  g.pass.soon(1000);
  g.pass.soon(3000);
  assert.is(time.pending(), 1);
  await time.advance(1000);
  assert.is(g.runs, 1);
  await g.release();
  await time.advance(10_000);
  assert.is(g.runs, 1, 'the later requests were covered by the earlier pass');
});

test('a failed pass is told and tried again after a pause that doubles up to maxMs; a success resets it', async () => {
  const time = new FakeTime();
  const g = gatedPass(time);
  g.failNext(true);
  await failedPass(g);
  assert.equal(g.failures, [1000]);
  for (const pause of [1000, 2000, 4000]) {
    await time.advance(pause);
    await g.release();
  }
  assert.equal(g.failures, [1000, 2000, 4000, 4000], 'doubling from minMs, capped at maxMs');
  g.failNext(false);
  await time.advance(4000);
  await g.release();
  assert.is(g.runs, 5);
  g.failNext(true);
  await failedPass(g);
  assert.is(g.failures.at(-1), 1000, 'a success resets the pause to minMs');
});

test(
  'stop() aborts the pass in flight, resolves once it ended, and arms nothing more; run() after it still runs ' +
    'once',
  async () => {
    const time = new FakeTime();
    const g = gatedPass(time, { next: () => 1000 });
    g.pass.start();
    await time.advance(0);
    g.pass.soon(500);
    let stopped = false;
    const stopping = g.pass.stop().then(() => {
      stopped = true;
    });
    assert.ok(g.pass.signal.aborted, "the owner's exchanges take this signal: they end now");
    await stopping;
    assert.ok(stopped);
    assert.is(g.running, 0, 'the pass in flight ended before stop() resolved');
    assert.equal(g.failures, [], 'a pass cut by the stop is not reported as failing');
    assert.is(time.pending(), 0, 'no timer left armed');
    await time.advance(60_000);
    assert.is(g.runs, 1);
    const explicit = g.pass.run();
    await g.release();
    await explicit.catch(() => undefined);
    assert.is(g.runs, 2);
    assert.is(time.pending(), 0, 'an explicit pass after the stop schedules nothing');
  },
);

test('halted(): no timer is armed while the owner says it has stopped by other means', async () => {
  const time = new FakeTime();
  let closed = false;
  const g = gatedPass(time, { halted: () => closed });
  closed = true;
  g.pass.soon(0);
  g.pass.start();
  await time.advance(10_000);
  assert.is(g.runs, 0);
});

test.run();
