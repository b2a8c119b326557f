// tier: daemon
/**
 * The outbox's RAM ring (droppableInRam): droppable records — usage reports, Interim-Updates — are not written to the
 * state dir's flash on every tick; durable ones still are, fsynced before the append resolves, and a kill -9 loses
 * none of them; numbering after the crash never reuses a number a consumer may have seen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Outbox } from '../../src/upstream/outbox.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-outbox-ram-', test.after);

const dirBytes = (dir: string): number => readdirSync(dir).reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
const text = (p: Uint8Array): string => Buffer.from(p).toString();

test('usage-sized droppable records leave the state dir unwritten; durable ones are on file', async () => {
  const dir = tempDir();
  const box = await Outbox.open({ dir, maxBytes: 8 << 20, consumers: ['a'], droppableInRam: true });
  const usage = Buffer.alloc(2720, 0x75); // one tick's report at 32 sessions (85 bytes a row)
  const durable: number[] = [];
  for (let tick = 0; tick < 1800; tick++) {
    usage.write(`tick ${tick} `); // the caller reuses its buffer: the ring must have copied it
    await box.append(usage, { durable: false, type: 1 });
    if (tick % 100 === 0) durable.push(await box.append(Buffer.from(`event ${tick}`), { durable: true, type: 2 }));
  }
  const onFile = dirBytes(dir);
  assert.ok(onFile < 8192, `an hour of ticks wrote ${onFile} bytes to the state dir (1800 × 2720 would be 4.9 MB)`);
  const got = box.pending('a', { limit: 10_000 });
  assert.is(got.length, 1818);
  assert.equal(
    got.map((r) => r.seq),
    Array.from({ length: 1818 }, (_, i) => i + 1),
    'one series, no gap',
  );
  assert.ok(text(got[0]!.payload).startsWith('tick 0 '));
  assert.ok(text(got.at(-1)!.payload).startsWith('tick 1799 '));
  assert.equal(
    got.filter((r) => r.durable).map((r) => r.seq),
    durable,
  );
  for (const r of got) box.ack('a', r.seq);
  assert.is(box.stats().ramBytes, 0, 'acknowledged records release their RAM');
  assert.is(box.stats().records, 0);
  await box.close();
});

test('the RAM ring is bounded: the oldest droppable records go first, counted as dropped', async () => {
  const dir = tempDir();
  const box = await Outbox.open({ dir, maxBytes: 64 * 1024, consumers: ['a'], droppableInRam: true });
  await box.append(Buffer.from('purchase'), { durable: true });
  for (let i = 0; i < 100; i++) await box.append(Buffer.alloc(4000, i), { durable: false });
  const s = box.stats();
  assert.ok(s.ramBytes <= 64 * 1024, `ram ${s.ramBytes}`);
  assert.ok(s.dropped > 0);
  const got = box.pending('a', { limit: 1000 });
  assert.is(got[0]!.seq, 1, 'the durable record is never dropped');
  assert.is(got.length, 101 - s.dropped);
  assert.is(got.at(-1)!.seq, 101, 'the newest are kept');
  await box.close();
});

test('acknowledging RAM records writes no cursor; acknowledging a record on file does', async () => {
  const dir = tempDir();
  const box = await Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['a'], droppableInRam: true });
  const ram = [];
  for (let i = 0; i < 10; i++) ram.push(await box.append(Buffer.from(`usage ${i}`), { durable: false }));
  for (const seq of ram) {
    assert.not.ok(box.isOnFile(seq));
    box.ack('a', seq);
  }
  await box.flush();
  assert.is(box.stats().cursorWrites, 0, 'a cursor over RAM records tells a restart nothing: no flash write');
  assert.not.ok(readdirSync(dir).some((n) => n.startsWith('cursor-')));
  const onFile = await box.append(Buffer.from('purchase'), { durable: true });
  assert.ok(box.isOnFile(onFile));
  box.ack('a', onFile);
  assert.not.ok(box.isOnFile(onFile), 'finished');
  await box.flush();
  assert.is(box.stats().cursorWrites, 1);
  await box.close();
  const again = await Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['a'], droppableInRam: true });
  assert.is(again.pending('a', { limit: 10 }).length, 0, 'the acknowledged record on file is not delivered again');
  await again.close();
});

test('kill -9 mid-stream: every durable record comes back, numbering resumes past any number handed out', async () => {
  const dir = tempDir();
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'outbox-crash-child.ts'), dir, '500', '0', 'ram'],
    { encoding: 'utf8' },
  );
  assert.is(child.signal, 'SIGKILL', child.stderr);
  const seqs = JSON.parse(child.stdout.trim()) as number[];
  const durable = seqs.filter((_, i) => i % 5 === 0);
  const box = await Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['a', 'b'], droppableInRam: true });
  const got = box.pending('a', { limit: 1000 });
  assert.equal(
    got.map((r) => r.seq),
    durable,
    'the durable records, in order; the droppable ones held in RAM are gone',
  );
  assert.equal(
    got.map((r) => text(r.payload)),
    durable.map((q) => `record ${seqs.indexOf(q)} seq ${q}`),
  );
  const next = await box.append(Buffer.from('next'), { durable: true });
  assert.ok(next > seqs.at(-1)!, `next ${next} after the crash reuses none of 1…${seqs.at(-1)}`);
  await box.close();
});

test.run();
