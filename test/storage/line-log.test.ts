// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { damagedTables, LineLog } from '../../src/storage/index.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';
import { MAX_MARK_BYTES } from '../../src/storage/line-log.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-linelog-', test.after);
const ID = /^[\x21-\x7e]{1,128}$/;

test('marks are records of the storage format, read back at open, one write each', () => {
  const path = join(tempDir(), 'marks');
  const { log, lines, repaired } = LineLog.open(path, ID);
  assert.equal([lines, repaired], [[], null]);
  log.append('s1');
  assert.equal(readFileSync(path), encodeRecord(Buffer.from('s1')), 'in the file at once (before any fsync or close)');
  log.append('s2');
  assert.is(log.size, 2);
  log.close();
  const again = LineLog.open(path, ID);
  assert.equal([again.lines, again.repaired, again.log.size], [['s1', 's2'], null, 2]);
  again.log.rewrite(['s2']);
  again.log.append('s3');
  again.log.close();
  assert.equal(LineLog.open(path, ID).lines, ['s2', 's3']);
});

test('a damaged record with marks after it is damage (counted in damaged_tables); a torn last one is not', () => {
  const dir = tempDir();
  const path = join(dir, 'acked');
  const bad = encodeRecord(Buffer.from('s2'));
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
  writeFileSync(path, Buffer.concat([encodeRecord(Buffer.from('s1')), bad, encodeRecord(Buffer.from('s3'))]));
  const before = damagedTables()['acked'] ?? 0;
  const { log, repaired } = LineLog.open(path, ID);
  log.close();
  assert.is(repaired, 'corrupt');
  assert.is(damagedTables()['acked'], before + 1, 'counted');
  writeFileSync(path, Buffer.concat([encodeRecord(Buffer.from('s1')), encodeRecord(Buffer.from('s2')).subarray(0, 5)]));
  LineLog.open(path, ID).log.close();
  assert.is(damagedTables()['acked'], before + 1, 'a torn tail is a crash, not damage');
});

test('a torn last record is cut off at open, so the next mark follows a whole one', () => {
  const path = join(tempDir(), 'marks');
  writeFileSync(path, Buffer.concat([encodeRecord(Buffer.from('s1')), encodeRecord(Buffer.from('s2')).subarray(0, 5)]));
  const { log, lines, repaired } = LineLog.open(path, ID);
  assert.equal([lines, repaired], [['s1'], 'torn']);
  assert.is(statSync(path).size, encodeRecord(Buffer.from('s1')).length);
  log.append('s3');
  log.close();
  assert.equal(LineLog.open(path, ID).lines, ['s1', 's3']);
});

test('a corrupt record: the marks before it are kept and the file rewritten without it', () => {
  const path = join(tempDir(), 'marks');
  const bad = encodeRecord(Buffer.from('s2'));
  bad[bad.length - 1]! ^= 1;
  writeFileSync(path, Buffer.concat([encodeRecord(Buffer.from('s1')), bad, encodeRecord(Buffer.from('s3'))]));
  const { log, lines, repaired } = LineLog.open(path, ID);
  assert.equal([lines, repaired], [['s1'], 'corrupt']);
  log.close();
  assert.equal(readFileSync(path), encodeRecord(Buffer.from('s1')));
});

test('a file of the old line format is read (an unterminated last line is torn) and rewritten in records', () => {
  const path = join(tempDir(), 'marks');
  writeFileSync(path, 's1\nnot valid because of spaces\ns2\ns');
  const { log, lines, repaired } = LineLog.open(path, ID);
  assert.equal([lines, repaired], [['s1', 's2'], 'text']);
  log.append('s3');
  log.close();
  assert.equal(readFileSync(path), Buffer.concat(['s1', 's2', 's3'].map((s) => encodeRecord(Buffer.from(s)))));
  assert.equal(LineLog.open(path, ID).repaired, null);
});

test('a mark longer than MAX_MARK_BYTES is refused (its length would read as text)', () => {
  const path = join(tempDir(), 'marks');
  const { log } = LineLog.open(path, ID);
  assert.throws(
    () => log.append('x'.repeat(MAX_MARK_BYTES + 1)),
    (err: { code?: string }) => err.code === 'ERR_LOG_RECORD_TOO_LARGE',
  );
  log.append('x'.repeat(MAX_MARK_BYTES));
  log.close();
  assert.equal(
    LineLog.open(path, /^x+$/).lines.map((l) => l.length),
    [MAX_MARK_BYTES],
  );
});

test.run();
