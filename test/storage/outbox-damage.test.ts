// tier: fast
/**
 * The outbox's segment file (upstream/outbox.ts: the records on their way to an upstream) against the shared damage
 * suite, under the `outbox` verdict: a damaged record is read past (the rest delivered), an emptied or deleted segment
 * is read as new, a directory in its place is refused; a segment put back older after a clean stop is counted and
 * said (the seq mark names the newest durable record), what is found delivered. Reports, not money: delivery is at
 * least once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { damagedTables } from '../../src/storage/index.ts';
import { Outbox } from '../../src/upstream/outbox.ts';
import { segmentName } from '../../src/upstream/outbox-segments.ts';
import { durableFileSuite } from './durable-file-suite.ts';

durableFileSuite<Outbox>('outbox segment (reports on their way upstream)', {
  kind: 'outbox',
  file: segmentName(1),
  code: 'ERR_OUTBOX_OPEN',
  open: (dir, atStart) => Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['up'], atStart }),
  put: async (box, n) => {
    await box.append(Buffer.from(`report ${n}`), { durable: true });
  },
  holds: (box) => box.pending('up').map((r) => `${r.seq}:${Buffer.from(r.payload).toString()}`),
  close: (box) => box.close(),
  stride: 3,
});

/** An outbox whose consumer `up` acknowledges report n at change n: its cursor and the seq mark move with each. */
const acking = {
  kind: 'outbox' as const,
  code: 'ERR_OUTBOX_OPEN' as const,
  open: (dir: string, atStart: boolean) => Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['up'], atStart }),
  put: async (box: Outbox, n: number) => {
    box.ack('up', await box.append(Buffer.from(`report ${n}`), { durable: true }));
    await box.flush();
  },
  holds: (box: Outbox) => ({
    floor: box.stats().consumers['up']?.floor,
    pending: box.pending('up').map((r) => r.seq),
    next: box.nextSeq,
  }),
  close: (box: Outbox) => box.close(),
};

durableFileSuite<Outbox>("outbox cursor (a consumer's acknowledged floor)", { ...acking, file: 'cursor-up' });

durableFileSuite<Outbox>('outbox seq mark (numbers reserved, the newest durable record)', { ...acking, file: 'seq' });

test('a segment put back older after a clean stop: counted and said, what is found delivered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-outbox-older-'));
  try {
    const box = await Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['up'] });
    await box.append(Buffer.from('report 1'), { durable: true });
    const older = readFileSync(join(dir, segmentName(1)));
    await box.append(Buffer.from('report 2'), { durable: true });
    await box.close();
    writeFileSync(join(dir, segmentName(1)), older);
    const counted = damagedTables()[segmentName(1)] ?? 0;
    const warnings: string[] = [];
    const again = await Outbox.open({
      dir,
      maxBytes: 1 << 20,
      consumers: ['up'],
      onWarning: (e) => warnings.push(e.code),
    });
    assert.equal(
      again.pending('up').map((r) => Buffer.from(r.payload).toString()),
      ['report 1'],
    );
    assert.ok(warnings.includes('ERR_OUTBOX_CORRUPT'), warnings.join());
    assert.is(damagedTables()[segmentName(1)], counted + 1);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
