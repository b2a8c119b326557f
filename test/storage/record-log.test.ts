// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { FRAME_BYTES, MAX_RECORD_PAYLOAD, scanRecords, sealRecord } from '../../src/storage/index.ts';
import { crc32, crc32Table } from '../../src/storage/crc32.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';

test('crc32: the check value of "123456789", zlib and the table loop agree, and a CRC continues', () => {
  assert.is(crc32('123456789'), 0xcbf43926);
  assert.is(crc32Table('123456789'), 0xcbf43926);
  const data = randomBytes(10_000);
  assert.is(crc32(data), crc32Table(data));
  assert.is(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), crc32(data));
  assert.is(crc32('grüße'), crc32Table(Buffer.from('grüße', 'utf8')));
});

test("a record is length, CRC-32 of header and payload, the log's own header, the payload", () => {
  const rec = encodeRecord(Buffer.from('abc'));
  assert.equal(
    [...rec],
    [3, 0, 0, 0, ...[...Buffer.alloc(4)].map((_, i) => (crc32('abc') >>> (8 * i)) & 0xff), 0x61, 0x62, 0x63],
  );
  const head = Buffer.alloc(FRAME_BYTES + 2);
  head.write('hh', FRAME_BYTES);
  sealRecord(head, Buffer.from('p'));
  assert.is(head.readUInt32LE(0), 1, 'the length counts the payload alone');
  assert.is(head.readUInt32LE(4), crc32('hhp'));
  const scan = scanRecords(Buffer.concat([head, Buffer.from('p')]), 2);
  assert.equal(
    scan.records.map((r) => [r.offset, r.bytes, r.header.toString(), r.payload.toString()]),
    [[0, 11, 'hh', 'p']],
  );
  assert.is(scan.problem, null);
});

test('scanRecords: a short or bad-CRC last record is torn, damage with bytes after it is corrupt', () => {
  const a = encodeRecord(Buffer.from('first'));
  const b = encodeRecord(Buffer.from('second'));
  const both = Buffer.concat([a, b]);
  for (let cut = 1; cut < b.length; cut++) {
    const scan = scanRecords(both.subarray(0, a.length + cut), 0);
    assert.equal([scan.records.length, scan.end, scan.problem], [1, a.length, 'torn'], `cut ${cut}`);
  }
  const lastFlipped = Buffer.from(both);
  lastFlipped[both.length - 1]! ^= 1;
  assert.equal(scanRecords(lastFlipped, 0).problem, 'torn');
  const firstFlipped = Buffer.from(both);
  firstFlipped[FRAME_BYTES]! ^= 1;
  const corrupt = scanRecords(firstFlipped, 0);
  assert.equal([corrupt.records.length, corrupt.end, corrupt.problem], [0, 0, 'corrupt']);
  const huge = Buffer.from(both);
  huge.writeUInt32LE(MAX_RECORD_PAYLOAD + 1, 0);
  assert.equal(scanRecords(huge, 0).problem, 'corrupt', 'an impossible length');
  assert.equal(scanRecords(Buffer.alloc(0), 0), { records: [], end: 0, problem: null });
});

test.run();
