// tier: fast
/**
 * The collector's intake (src/fleet/collector/intake.ts): session messages and statuses are stored in batches that
 * take the waiting routers in turn, one message each a round, so a flooding router gets at most `perTurn` of a
 * batch and every other router waiting is in the next one; a router's messages keep their order and it is in one
 * batch at a time; what it sends beyond `waiting` is kept aside and read back in its turns, after what it had in
 * memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Intake, type Taken } from '../../src/fleet/collector/intake.ts';
import type { DeferredMessage } from '../../src/fleet/collector/deferred.ts';

const msg = (router: string, n: number): Taken => ({
  router,
  topic: `sluice/${router}/session`,
  payload: Buffer.from(`${router}:${n}`),
  retained: false,
  receivedAt: 0,
  alive: () => true,
});

const label = (m: Taken) => m.payload.toString();
const tick = () => new Promise((r) => setImmediate(r));

/** An intake whose batches wait until released, one at a time, and whose aside table is an array. */
function rig(o: { waiting: number; concurrency?: number }) {
  const batches: string[][] = [];
  const pending: Array<() => void> = [];
  const aside: Array<DeferredMessage & { id: string }> = [];
  let ids = 0;
  const intake = new Intake({
    concurrency: o.concurrency ?? 1,
    maxBatch: 64,
    perTurn: 16,
    waiting: o.waiting,
    store: (ms) => {
      batches.push(ms.map(label));
      for (const m of ms) {
        const at = aside.findIndex((a) => a.id === m.asideId);
        if (at >= 0) aside.splice(at, 1);
      }
      return new Promise((resolve) => pending.push(() => resolve(ms.map(() => true))));
    },
    putAside: async (ms) => {
      for (const m of ms) aside.push({ ...m, id: String(++ids) });
      return ms.map(() => true);
    },
    next: async (router, limit) => aside.filter((a) => a.router === router).slice(0, limit),
    onError: (_r, err) => {
      throw err;
    },
  });
  const release = async () => {
    await tick();
    pending.shift()?.();
    await tick();
    await tick();
  };
  return { intake, batches, pending, aside, release };
}

test('a flood gets at most its turn of a batch; every other router waiting is in the next batch', async () => {
  const { intake, batches, release } = rig({ waiting: 1000 });
  const acks: Array<Promise<boolean>> = [];
  // The first message is written at once, alone; what comes meanwhile waits for the next batch.
  for (let k = 0; k < 100; k++) acks.push(intake.take(msg('flood', k)));
  for (let r = 0; r < 10; r++) acks.push(intake.take(msg(`r${r}`, 0)));
  assert.equal(batches, [['flood:0']]);
  await release();
  const second = batches[1]!;
  assert.is(second.filter((l) => l.startsWith('flood:')).length, 16, 'the flood: its turn of 16');
  for (let r = 0; r < 10; r++) assert.ok(second.includes(`r${r}:0`), `r${r} in the batch after the first`);
  // The flood's messages in its order, over the batches that follow.
  while (batches.flat().length < 110) await release();
  const flood = batches.flat().filter((l) => l.startsWith('flood:'));
  assert.equal(
    flood,
    Array.from({ length: 100 }, (_, k) => `flood:${k}`),
  );
  assert.ok(
    batches.every((b) => b.filter((l) => l.startsWith('flood:')).length <= 16),
    'never more than its turn',
  );
  await release();
  assert.ok((await Promise.all(acks)).every(Boolean), 'every message acknowledged once stored');
});

test('a router is in one batch at a time: its next messages wait for its batch, others do not', async () => {
  const { intake, batches, release } = rig({ waiting: 1000, concurrency: 2 });
  void intake.take(msg('a', 0));
  void intake.take(msg('a', 1));
  void intake.take(msg('b', 0));
  await tick();
  assert.equal(batches, [['a:0'], ['b:0']], "b's message does not wait behind a's second");
  await release();
  assert.equal(batches[2], ['a:1']);
  await release();
  await release();
});

test('beyond its share a router is kept aside, read back after what it had in memory, in order', async () => {
  const { intake, batches, aside, release } = rig({ waiting: 4 });
  const acks = Array.from({ length: 40 }, (_, k) => intake.take(msg('flood', k)));
  await tick();
  assert.ok(aside.length > 0, 'the rest kept aside');
  for (let i = 0; i < 20 && batches.flat().length < 40; i++) await release();
  await release();
  assert.equal(
    batches.flat(),
    Array.from({ length: 40 }, (_, k) => `flood:${k}`),
  );
  assert.is(aside.length, 0, 'nothing left aside');
  assert.ok((await Promise.all(acks)).every(Boolean));
  // Caught up: its next message goes to its queue, not aside.
  void intake.take(msg('flood', 40));
  await tick();
  assert.is(aside.length, 0);
  await release();
  assert.equal(batches.at(-1), ['flood:40']);
});

test.run();
