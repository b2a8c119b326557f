// tier: fast
/**
 * The venue service's queue (src/fleet/fair-queue.ts): one router's flood waits behind itself. Another router's task
 * runs as soon as a slot is free, whatever the flood holds; claims for one device wait once; a router's queue is
 * bounded and what it sends beyond is dropped and counted; never more than `concurrency` tasks run at once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FairQueue } from '../../src/fleet/fair-queue.ts';

test("a flood of one router: another router's task is the next to run, at most 2 run at once", async () => {
  const ran: string[] = [];
  let running = 0;
  let most = 0;
  const dropped: string[] = [];
  const q = new FairQueue({
    concurrency: 2,
    perRouter: 512,
    claimsPerRouter: 64,
    onDrop: (r) => dropped.push(r),
    onError: () => assert.unreachable(),
  });
  const task = (name: string) => async () => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setImmediate(r));
    ran.push(name);
    running--;
  };
  for (let i = 0; i < 20_000; i++) q.push('rx', `claim 02:00:00:00:${Math.floor(i / 256)}:${i % 256}`, task(`rx${i}`));
  q.push('rb', 'claim 02:00:00:00:00:01', task('rb'));
  q.push('rc', null, task('rc'));
  await q.drained();
  assert.ok(ran.indexOf('rb') <= 2, `rb ran ${ran.indexOf('rb') + 1}th`);
  assert.ok(ran.indexOf('rc') <= 3, `rc ran ${ran.indexOf('rc') + 1}th`);
  assert.is(ran.length, 1 + 64 + 2, 'rx: one ran at once, 64 waited, the rest dropped');
  assert.is(dropped.length, 20_000 - 65);
  assert.ok(most <= 2, `${most} at once`);
});

test('claims for one device wait once; a router keeps its order', async () => {
  const ran: string[] = [];
  const q = new FairQueue({
    concurrency: 1,
    perRouter: 4,
    claimsPerRouter: 2,
    onDrop: () => undefined,
    onError: () => undefined,
  });
  const task = (name: string) => async () => void ran.push(name);
  assert.is(q.push('ra', null, task('report1')), 'queued');
  assert.is(q.push('ra', 'claim d', task('claim-d')), 'queued');
  assert.is(q.push('ra', 'claim d', task('claim-d again')), 'joined');
  assert.is(q.push('ra', null, task('report2')), 'queued');
  await q.drained();
  assert.equal(ran, ['report1', 'claim-d', 'report2']);
});

test.run();
