// tier: fast
/**
 * State files written by the code of f11d35c (test/storage/fixtures/f11d35c), before the storage formats were
 * shared: a router upgrading keeps its sessions, its queued upstream records and its marks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { Outbox } from '../../src/upstream/outbox.ts';
import { EndMarks } from '../../src/upstream/end-marks.ts';
import { LineLog } from '../../src/storage/index.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-oldfiles-', test.after);
const FIXTURES = new URL('fixtures/f11d35c/', import.meta.url).pathname;

function copy(name: string): string {
  const dir = join(tempDir(), name);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

test('the session snapshot and journal', async () => {
  const store = new JournalStore({ dir: copy('state'), now: () => 1_700_000_400_000 });
  const loaded = await store.load();
  await store.close();
  assert.equal(
    loaded.warnings.map((w) => w.code),
    [],
  );
  const view = [...loaded.sessions.values()].map((s) => [
    s.id,
    s.state,
    s.used,
    s.bytes,
    s.payments.map((p) => p.reference),
  ]);
  assert.equal(view, [
    ['s1', 'ACTIVE', 60, 1000, ['v1']],
    ['s2', 'TERMINATED', 10, 99, ['v2']],
    ['s3', 'ACTIVE', 30, 500, ['v3']],
  ]);
  assert.equal([...loaded.refs.keys()].sort(), ['voucher:v1', 'voucher:v2', 'voucher:v3']);
});

test('the outbox segments, cursor and sequence mark', async () => {
  const box = await Outbox.open({
    dir: copy('outbox'),
    maxBytes: 64 * 1024,
    segmentBytes: 4096,
    consumers: ['a', 'b'],
    syncIntervalMs: 60_000,
  });
  try {
    assert.equal(
      box.pending('a').map((r) => r.seq),
      [4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    const b = box.pending('b');
    assert.equal(
      b.map((r) => [r.seq, r.durable, r.type, r.at]),
      Array.from({ length: 12 }, (_, i) => [i + 1, (i + 1) % 3 === 0, (i + 1) % 4, 1_700_000_000_000]),
    );
    assert.equal(
      b.map((r) => Buffer.from(r.payload).toString()),
      Array.from({ length: 12 }, (_, i) => `record ${i + 1} `.padEnd(500, 'x')),
    );
    assert.is(box.nextSeq, 13);
  } finally {
    await box.close();
  }
});

test(
  'the RADIUS ack log and end marks in the old line format: ' + 'read, torn last lines left out, rewritten in records',
  () => {
    const dir = copy('radius');
    const acks = LineLog.open(join(dir, 'acked'), /^[1-9][0-9]*$/);
    assert.equal([acks.lines, acks.repaired], [['4', '5', '9'], 'text']);
    acks.log.close();
    assert.equal(
      readFileSync(join(dir, 'acked')),
      Buffer.concat(['4', '5', '9'].map((s) => encodeRecord(Buffer.from(s)))),
    );
    assert.equal(LineLog.open(join(dir, 'acked'), /^[1-9][0-9]*$/).lines, ['4', '5', '9']);
    const marks = EndMarks.open(join(dir, 'stopped'), [], () => true);
    assert.equal([marks.has('s2'), marks.has('sess-0042'), marks.has('sess-00')], [true, true, false]);
    marks.close();
    const reopened = EndMarks.open(join(dir, 'stopped'), [], () => true);
    assert.equal([reopened.has('s2'), reopened.has('sess-0042')], [true, true]);
    reopened.abandon();
  },
);

test.run();
