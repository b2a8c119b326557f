// tier: daemon
import { test } from 'uvu';
import { damagedTables } from '../../src/storage/index.ts';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Outbox, type OutboxOptions } from '../../src/upstream/outbox.ts';
import { decodeSegment, encodeRecord, RECORD_HEADER_BYTES } from '../../src/upstream/outbox-codec.ts';
import type { SluiceError } from '../../src/errors.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-outbox-', test.after);

const segments = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => /^seg-\d{16}\.log$/.test(n))
    .sort();
const text = (p: Uint8Array): string => Buffer.from(p).toString();

async function openAt(dir: string, extra: Partial<OutboxOptions> = {}) {
  const warnings: SluiceError[] = [];
  const box = await Outbox.open({
    dir,
    maxBytes: 1 << 20,
    consumers: ['a'],
    syncIntervalMs: 60_000,
    onWarning: (w) => warnings.push(w),
    ...extra,
  });
  return { box, warnings };
}

test('the record codec round-trips and pins its header layout', () => {
  const buf = encodeRecord({ seq: 7, durable: true, type: 3, at: 1_700_000_000_000, payload: Buffer.from('hi') });
  assert.is(buf.length, RECORD_HEADER_BYTES + 2);
  assert.is(buf.readUInt32LE(0), 2);
  assert.is(Number(buf.readBigUInt64LE(8)), 7);
  assert.is(buf[16], 1);
  assert.is(buf[17], 3);
  const decoded = decodeSegment(buf);
  assert.ok(decoded.ok);
  assert.equal(
    decoded.records.map((r) => [r.seq, r.durable, r.type, r.at, text(r.payload)]),
    [[7, true, 3, 1_700_000_000_000, 'hi']],
  );
  const flipped = Buffer.concat([buf, buf]);
  flipped[RECORD_HEADER_BYTES + 1]! ^= 1;
  const bad = decodeSegment(flipped);
  assert.is(bad.ok, false);
  assert.equal(bad.ok ? null : [bad.reason, bad.end, bad.records.length], ['corrupt', 0, 0]);
  const notAbove = decodeSegment(Buffer.concat([buf, buf]));
  assert.equal(
    notAbove.ok ? null : [notAbove.reason, notAbove.end],
    ['corrupt', buf.length],
    'a sequence number must rise',
  );
});

test('records come out in order, acks in any order, sequence numbers continue across a reopen', async () => {
  const dir = tempDir();
  let { box } = await openAt(dir);
  const seqs: number[] = [];
  for (let i = 0; i < 10; i++) seqs.push(await box.append(Buffer.from(`r${i}`), { durable: i % 3 === 0 }));
  assert.equal(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(
    box.pending('a', { limit: 3 }).map((r) => r.seq),
    [1, 2, 3],
  );
  assert.equal(
    box.pending('a', { after: 8 }).map((r) => text(r.payload)),
    ['r8', 'r9'],
  );
  box.ack('a', 3);
  box.ack('a', 1);
  box.ack('a', 99); // unknown: ignored
  box.ack('a', 1); // twice: ignored
  assert.equal(
    box.pending('a', { limit: 3 }).map((r) => r.seq),
    [2, 4, 5],
  );
  assert.equal(box.stats().consumers['a'], { pending: 8, floor: 1 });
  await box.close();
  ({ box } = await openAt(dir));
  // Cursor persisted at close: floor 1, so 3 (acked out of order) is delivered again — at least once.
  assert.equal(
    box.pending('a').map((r) => r.seq),
    [2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.is(await box.append(Buffer.from('after'), { durable: false }), 11);
  await rejectsWithCode(box.append(Buffer.alloc(2 << 20), { durable: true }), 'ERR_OUTBOX_RECORD_TOO_LARGE');
  assert.is(box.nextSeq, 12, 'a refused record uses no sequence number');
  await box.close();
  await rejectsWithCode(box.append(Buffer.from('x'), { durable: true }), 'ERR_OUTBOX_CLOSED');
});

test('each consumer has its own acknowledgements; a segment goes when every consumer is done with it', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { consumers: ['radius', 'mqtt'], maxBytes: 32768, segmentBytes: 4096 });
  for (let i = 0; i < 100; i++) await box.append(Buffer.alloc(200, i), { durable: false });
  const before = segments(dir).length;
  assert.ok(before >= 5, `${before} segments`);
  for (const r of box.pending('radius', { limit: 1000 })) box.ack('radius', r.seq);
  assert.is(box.pending('radius').length, 0);
  assert.is(box.pending('mqtt', { limit: 1000 }).length, 100);
  await box.flush();
  assert.is(segments(dir).length, before, 'mqtt still needs them');
  for (const r of box.pending('mqtt', { limit: 1000 })) box.ack('mqtt', r.seq);
  await box.flush();
  assert.equal(segments(dir), [segments(dir).at(-1)], 'only the active segment is left');
  assert.is(box.stats().records, 0);
  await box.close();
});

test(
  'appendMany: consecutive sequence numbers, one write per ' + 'segment it lands in, the same records after a reopen',
  async () => {
    const dir = tempDir();
    const { box } = await openAt(dir, { segmentBytes: 4096 });
    let woke = 0;
    box.onAppend(() => woke++);
    assert.equal(await box.append(Buffer.from('first'), { durable: true }), 1);
    const writes = box.stats().writes;
    const payloads = Array.from({ length: 5 }, (_, i) => (seq: number) => Buffer.from(`part ${i} seq ${seq}`));
    assert.equal(await box.appendMany(payloads, { durable: false, type: 4 }), [2, 3, 4, 5, 6]);
    assert.is(box.stats().writes - writes, 1, 'one write for the batch');
    assert.is(woke, 2, 'listeners once per batch');
    // 3 records of 1500 bytes per 4 KiB segment: a batch of 7 spans three segments, three writes.
    const before = segments(dir).length;
    assert.equal(
      await box.appendMany(
        Array.from({ length: 7 }, (_, i) => Buffer.alloc(1500, i)),
        { durable: false },
      ),
      [7, 8, 9, 10, 11, 12, 13],
    );
    assert.is(box.stats().writes - writes, 4);
    assert.is(segments(dir).length, before + 2);
    await rejectsWithCode(
      box.appendMany([Buffer.from('ok'), Buffer.alloc(2 << 20)], { durable: false }),
      'ERR_OUTBOX_RECORD_TOO_LARGE',
    );
    assert.is(box.nextSeq, 14, 'a batch with a record too large stores nothing and uses no sequence number');
    assert.equal(await box.appendMany([], { durable: true }), []);
    const all = box.pending('a', { limit: 100 });
    assert.equal(
      all.map((r) => r.seq),
      Array.from({ length: 13 }, (_, i) => i + 1),
    );
    assert.is(box.pendingCount('a'), 13);
    assert.equal(
      all.slice(1, 6).map((r) => [text(r.payload), r.type, r.durable]),
      [0, 1, 2, 3, 4].map((i) => [`part ${i} seq ${i + 2}`, 4, false]),
    );
    await box.close();
    const { box: again } = await openAt(dir, { segmentBytes: 4096 });
    assert.equal(
      again.pending('a', { limit: 100 }).map((r) => [r.seq, Buffer.from(r.payload).toString('hex')]),
      all.map((r) => [r.seq, Buffer.from(r.payload).toString('hex')]),
    );
    await again.close();
  },
);

test(
  'payloads are read back from the files: the caller may reuse its buffer, and rewrites keep every payload ' +
    'readable',
  async () => {
    const dir = tempDir();
    const { box } = await openAt(dir, { maxBytes: 8192, segmentBytes: 2048 });
    const scratch = Buffer.alloc(300);
    const body = (seq: number): string => `record ${seq} `.padEnd(300, String.fromCharCode(97 + (seq % 26)));
    // One durable record unacknowledged at the front of each segment, the rest acknowledged or not: rewrites move
    // records to new offsets (lossless: acknowledged ones reclaimed; lossy: old droppable ones dropped).
    for (let i = 0; i < 120; i++) {
      const seq = await box.append(
        (q) => {
          scratch.write(body(q));
          return scratch;
        },
        { durable: i % 7 === 0 },
      );
      if (i % 3 === 1) box.ack('a', seq);
      scratch.fill(0); // the caller's buffer is its own again
      // Checked while rewrites are still being written (the old file is read) and after (the new one).
      for (const r of box.pending('a', { limit: 1000 }))
        assert.is(text(r.payload), body(r.seq), `record ${r.seq} after append ${i + 1}`);
    }
    await box.flush();
    const s = box.stats();
    assert.ok(s.compactions > 0, `${s.compactions} rewrites`);
    const left = box.pending('a', { limit: 1000 });
    assert.ok(left.length > 0);
    for (const r of left) assert.is(text(r.payload), body(r.seq));
    assert.equal(
      box.pending('a', { limit: 1000, type: 0 }).map((r) => r.seq),
      left.map((r) => r.seq),
    );
    assert.equal(box.pending('a', { limit: 1000, type: 9 }), []);
    await box.close();
    // After a reopen: every pending record again (and those acknowledged above the saved floor: at least once, which
    // may push the store over its bound: then old droppable ones go, counted), each payload right.
    const { box: again } = await openAt(dir, { maxBytes: 8192, segmentBytes: 2048 });
    const back = again.pending('a', { limit: 1000 });
    for (const r of back) assert.is(text(r.payload), body(r.seq));
    const seqs = new Set(back.map((r) => r.seq));
    const gone = left.filter((r) => !seqs.has(r.seq));
    assert.ok(
      gone.every((r) => !r.durable) && gone.length <= again.stats().dropped,
      `gone: ${gone.map((r) => r.seq).join(',')}`,
    );
    await again.close();
  },
);

test('more segments than read descriptors kept open: every payload still reads back, in order', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { maxBytes: 1 << 20, segmentBytes: 4096 });
  const body = (seq: number): string => `event ${seq} `.padEnd(1500, String.fromCharCode(97 + (seq % 26)));
  for (let i = 0; i < 90; i++) await box.append((q) => Buffer.from(body(q)), { durable: true });
  assert.ok(segments(dir).length >= 30, `${segments(dir).length} segments`);
  const fds = readdirSync('/proc/self/fd').length;
  for (let round = 0; round < 2; round++) {
    const got = box.pending('a', { limit: 1000 });
    assert.equal(
      got.map((r) => r.seq),
      Array.from({ length: 90 }, (_, i) => i + 1),
    );
    for (const r of got) assert.is(text(r.payload), body(r.seq));
    // Backwards, one at a time: each read may need a descriptor another one's read closed.
    for (let q = 90; q >= 1; q -= 7) assert.is(text(box.pending('a', { after: q - 1, limit: 1 })[0]!.payload), body(q));
  }
  const opened = readdirSync('/proc/self/fd').length - fds;
  assert.ok(opened <= 16, `${opened} more descriptors open after reading ${segments(dir).length} segments`);
  await box.close();
});

test('droppable appends share one fsync per interval; a durable append waits for its own', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir);
  const base = box.stats().fsyncs;
  for (let i = 0; i < 200; i++) await box.append(Buffer.from(`usage ${i}`), { durable: false });
  assert.is(box.stats().fsyncs, base, 'no fsync for droppable records before the interval');
  assert.is(box.stats().writes, 200);
  await Promise.all(Array.from({ length: 20 }, (_, i) => box.append(Buffer.from(`event ${i}`), { durable: true })));
  const fsyncs = box.stats().fsyncs - base;
  assert.ok(fsyncs >= 1 && fsyncs <= 3, `20 concurrent durable appends took ${fsyncs} fsyncs (group commit)`);
  await box.close();
});

test(
  'a torn last record, cut at every byte offset, recovers ' + 'every record before it and reuses no sequence number',
  async () => {
    const dir = tempDir();
    const { box } = await openAt(dir);
    for (let i = 1; i <= 3; i++) await box.append(Buffer.from(`keep ${i}`), { durable: true });
    const seg = join(dir, segments(dir)[0]!);
    const good = statSync(seg).size;
    await box.append(Buffer.from('the torn one'), { durable: true });
    await box.close();
    const full = statSync(seg).size;
    for (let cut = good + 1; cut < full; cut++) {
      const copy = tempDir();
      cpSync(dir, copy, { recursive: true });
      truncateSync(join(copy, segments(copy)[0]!), cut);
      // The close wrote a clean mark; a crash would not have.
      rmSync(join(copy, 'seq'));
      const again = await openAt(copy);
      assert.equal(
        again.box.pending('a').map((r) => text(r.payload)),
        ['keep 1', 'keep 2', 'keep 3'],
        `cut at ${cut}`,
      );
      assert.equal(
        again.warnings.map((w) => w.code),
        ['ERR_OUTBOX_TORN'],
        `cut at ${cut}`,
      );
      assert.is(statSync(join(copy, segments(copy)[0]!)).size, good, 'the tail is cut off');
      assert.is(await again.box.append(Buffer.from('next'), { durable: true }), 4);
      await again.box.close();
    }
  },
);

test('garbage in the middle of a segment is reported, copied aside, and the records before it kept', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { segmentBytes: 4096 });
  for (let i = 0; i < 60; i++) await box.append(Buffer.alloc(100, i), { durable: true });
  await box.close();
  const first = join(dir, segments(dir)[0]!);
  const data = readFileSync(first);
  data[RECORD_HEADER_BYTES * 3 + 250]! ^= 0xff; // inside the third record
  writeFileSync(first, data);
  const counted = damagedTables()[basename(first)] ?? 0;
  const { box: again, warnings } = await openAt(dir, { segmentBytes: 4096 });
  assert.equal(
    warnings.map((w) => w.code),
    ['ERR_OUTBOX_CORRUPT'],
  );
  assert.ok(readdirSync(dir).some((n) => n.endsWith('.corrupt')));
  assert.is(damagedTables()[basename(first)], counted + 1, 'counted in damaged_tables');
  const seqs = again.pending('a', { limit: 1000 }).map((r) => r.seq);
  assert.equal(seqs.slice(0, 2), [1, 2]);
  assert.ok(seqs.length > 2 && seqs[2]! > 3, 'later segments survive');
  assert.is(await again.append(Buffer.from('x'), { durable: false }), 61);
  await again.close();
});

test('when full, the oldest droppable records go first, counted; durable records never', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { maxBytes: 16384, segmentBytes: 4096 });
  const durable: number[] = [];
  for (let i = 0; i < 400; i++) {
    const isDurable = i % 50 === 0;
    const seq = await box.append(Buffer.from(`${isDurable ? 'event' : 'usage'} ${i} `.padEnd(100, '.')), {
      durable: isDurable,
      type: isDurable ? 1 : 2,
    });
    if (isDurable) durable.push(seq);
  }
  const s = box.stats();
  assert.ok(s.dropped > 0, 'some usage dropped');
  assert.ok(s.bytes <= 16384 + 4096, `${s.bytes} bytes on disk`);
  const left = box.pending('a', { limit: 10_000 });
  assert.is(left.length + s.dropped, 400, 'every record is either pending or counted as dropped');
  for (const seq of durable)
    assert.ok(
      left.some((r) => r.seq === seq),
      `durable ${seq} kept`,
    );
  const kept = new Set(left.map((r) => r.seq));
  const dropped = Array.from({ length: 400 }, (_, i) => i + 1).filter((q) => !kept.has(q));
  const usage = left.filter((r) => !r.durable).map((r) => r.seq);
  assert.ok(
    Math.max(...dropped) < Math.min(...usage),
    `oldest first: dropped up to ${Math.max(...dropped)}, kept from ${Math.min(...usage)}`,
  );
  assert.ok(usage.includes(400), 'the newest usage record is kept');
  await box.close();
  // The drops are on flash too: a reopen does not bring them back.
  const { box: again } = await openAt(dir, { maxBytes: 16384, segmentBytes: 4096 });
  assert.equal(
    again.pending('a', { limit: 10_000 }).map((r) => r.seq),
    left.map((r) => r.seq),
  );
  await again.close();
});

test('only durable records left: the store grows past its bound rather than lose one', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { maxBytes: 8192, segmentBytes: 4096 });
  for (let i = 0; i < 100; i++) await box.append(Buffer.alloc(100, 1), { durable: true });
  const s = box.stats();
  assert.is(s.dropped, 0);
  assert.is(box.pending('a', { limit: 1000 }).length, 100);
  assert.ok(s.overLimitBytes > 0, 'reported');
  await box.close();
});

test('acknowledged records are reclaimed without dropping anything when the store fills', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir, { maxBytes: 8192, segmentBytes: 4096 });
  // One durable record stays unacknowledged at the front; everything after it is acknowledged.
  await box.append(Buffer.alloc(100, 7), { durable: true });
  for (let i = 0; i < 300; i++) {
    const seq = await box.append(Buffer.alloc(100, 1), { durable: false });
    box.ack('a', seq);
  }
  await box.flush();
  const s = box.stats();
  assert.is(s.dropped, 0);
  assert.ok(s.bytes <= 8192, `${s.bytes}`);
  assert.equal(
    box.pending('a').map((r) => r.seq),
    [1],
  );
  await box.close();
});

test('kill -9 after appends: every record is there after reopen, sequence numbers continue without a gap', async () => {
  const dir = tempDir();
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'outbox-crash-child.ts'), dir, '500', '0'],
    { encoding: 'utf8' },
  );
  assert.is(child.signal, 'SIGKILL', child.stderr);
  const seqs = JSON.parse(child.stdout.trim()) as number[];
  assert.equal(
    seqs,
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
  const box = await Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['a', 'b'] });
  const got = box.pending('a', { limit: 1000 });
  assert.equal(
    got.map((r) => r.seq),
    seqs,
  );
  assert.equal(
    got.map((r) => text(r.payload)),
    seqs.map((q, i) => `record ${i} seq ${q}`),
  );
  assert.equal(got.filter((r) => r.durable).length, 100);
  assert.is(await box.append(Buffer.from('next'), { durable: true }), 501, 'same boot: no gap');
  await box.close();
});

test('after a power cut (another boot, no clean mark) numbering resumes past the reserved block', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir);
  await box.append(Buffer.from('x'), { durable: true });
  await box.close();
  const mark = JSON.parse(readFileSync(join(dir, 'seq'), 'utf8')) as Record<string, unknown>;
  assert.is(mark['clean'], true);
  writeFileSync(join(dir, 'seq'), JSON.stringify({ reserved: 4098, boot: 'another-boot', clean: false }));
  const { box: again } = await openAt(dir);
  assert.is(await again.append(Buffer.from('y'), { durable: true }), 4098);
  await again.close();
});

test('a bad cursor file is reported and everything is delivered again', async () => {
  const dir = tempDir();
  const { box } = await openAt(dir);
  await box.append(Buffer.from('x'), { durable: true });
  box.ack('a', 1);
  await box.close();
  assert.equal(
    await openAt(dir).then(async ({ box: b }) => {
      const p = b.pending('a');
      await b.close();
      return p;
    }),
    [],
    'acknowledged',
  );
  writeFileSync(join(dir, 'cursor-a'), '{"floor": -3}');
  const { box: again, warnings } = await openAt(dir);
  assert.equal(
    warnings.map((w) => w.code),
    ['ERR_OUTBOX_CORRUPT'],
  );
  assert.equal(
    again.pending('a').map((r) => r.seq),
    [1],
  );
  await again.close();
});

test('bad options are refused with ERR_OUTBOX_OPTIONS', async () => {
  const dir = tempDir();
  await rejectsWithCode(Outbox.open({ dir, maxBytes: 1 << 20, consumers: [] }), 'ERR_OUTBOX_OPTIONS');
  await rejectsWithCode(Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['a', 'a'] }), 'ERR_OUTBOX_OPTIONS');
  await rejectsWithCode(Outbox.open({ dir, maxBytes: 100, consumers: ['a'] }), 'ERR_OUTBOX_OPTIONS');
  const { box } = await openAt(dir);
  assert.throws(() => box.pending('nobody'));
  await box.close();
});

test(
  'a queue directory under /proc is refused at open ' + '(ERR_OUTBOX_OPEN), not retried for ever by a recursive mkdir',
  async () => {
    // Node's mkdir(..., {recursive: true}) spins at 100% CPU under /proc and never settles.
    await rejectsWithCode(
      Outbox.open({ dir: '/proc/sluice-outbox-test/queue', maxBytes: 1 << 20, consumers: ['a'] }),
      'ERR_OUTBOX_OPEN',
    );
  },
);

test.run();
