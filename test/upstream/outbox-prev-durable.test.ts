// tier: daemon
/**
 * Each payload that is a function is told the number of the durable record before it, also across a crash (the
 * records found) and after every durable record was acknowledged and removed (the seq mark): what lets a consumer
 * tell a gap of droppable records (MQTT usage reports in RAM) from a lost durable one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Outbox } from '../../src/upstream/outbox.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-outbox-prev-', test.after);

const open = (dir: string) =>
  Outbox.open({ dir, maxBytes: 64 * 1024, consumers: ['a'], syncIntervalMs: 60_000, droppableInRam: true });

/** Appends one record and returns [its seq, the prevDurable its payload was told]. */
async function put(box: Outbox, durable: boolean): Promise<[number, number]> {
  let told = -1;
  const seq = await box.append(
    (s, prev) => {
      told = prev;
      return Buffer.from(`r${s}`);
    },
    { durable },
  );
  return [seq, told];
}

test('a payload is told the last durable record: in a batch, after a crash, once all is acknowledged', async () => {
  const dir = tempDir();
  const box = await open(dir);
  assert.equal(await put(box, false), [1, 0], 'none ever');
  assert.equal(await put(box, true), [2, 0]);
  assert.equal(await put(box, false), [3, 2]);
  assert.equal(await put(box, false), [4, 2]);
  assert.equal(await put(box, true), [5, 2]);
  const told: number[] = [];
  await box.appendMany(
    [0, 1, 2].map(() => (_s: number, prev: number) => (told.push(prev), Buffer.from('x'))),
    { durable: true },
  );
  assert.equal(told, [5, 6, 7], 'each record of a durable batch follows the one before it');
  assert.equal(await put(box, false), [9, 8]);

  // A kill -9 now: the files as they are (the page cache), no close.
  const crashed = tempDir();
  cpSync(dir, crashed, { recursive: true });
  const after = await open(crashed);
  const [seq, prev] = await put(after, false);
  assert.ok(seq > 9, 'numbering resumes past the reserved block');
  assert.is(prev, 8, 'the newest durable record found');
  await after.close();

  // Everything acknowledged and the store closed; its segments gone (as a compaction of acknowledged records leaves
  // it): the seq mark remembers, also through a crash.
  for (const r of box.pending('a', { limit: 100 })) box.ack('a', r.seq);
  await box.close();
  const noSegments = () => {
    for (const n of readdirSync(dir)) if (n.startsWith('seg-')) rmSync(join(dir, n));
  };
  noSegments();
  const again = await open(dir);
  assert.equal(await put(again, false), [10, 8]);
  const crashedAgain = tempDir();
  cpSync(dir, crashedAgain, { recursive: true });
  for (const n of readdirSync(crashedAgain)) if (n.startsWith('seg-')) rmSync(join(crashedAgain, n));
  const third = await open(crashedAgain);
  assert.is((await put(third, false))[1], 8);
  await third.close();
  await again.close();
});

test.run();
