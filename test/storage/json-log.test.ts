// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJsonLine, encodeJsonLine, readJsonLog, type JsonDecoded } from '../../src/storage/index.ts';
import { crc32 } from '../../src/storage/crc32.ts';

const decodeN = (v: unknown): JsonDecoded<number> => {
  const n = (v as { n?: unknown } | null)?.n;
  return typeof n === 'number' ? { ok: true, value: n } : { ok: false, reason: 'no n' };
};
const lines = (...ns: number[]): string => ns.map((n) => encodeJsonLine(JSON.stringify({ n }))).join('');

test('a record is `<crc32 hex> <json>\\n`', () => {
  const json = '{"n":1}';
  assert.is(encodeJsonLine(json), `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`);
  assert.equal(decodeJsonLine(encodeJsonLine(json).slice(0, -1), decodeN), { ok: true, value: 1 });
  assert.equal(
    decodeJsonLine(encodeJsonLine('{"m":1}').slice(0, -1), decodeN),
    { ok: false, reason: 'no n' },
    'the user decides what a record holds',
  );
});

test('an unfinished last line is torn; a complete last line that fails its CRC is corruption', () => {
  const text = lines(1, 2, 3);
  const torn = readJsonLog(Buffer.from(text.slice(0, -5)), decodeN);
  assert.equal(
    [torn.lines, torn.corrupt.length, torn.tornBytes, torn.goodLength],
    [[1, 2], 0, lines(3).length - 5, lines(1, 2).length],
  );
  const flipped = Buffer.from(text);
  flipped[text.length - 3] = 0x39 - (flipped[text.length - 3]! === 0x39 ? 1 : 0);
  const bad = readJsonLog(flipped, decodeN);
  assert.equal([bad.lines, bad.corrupt.map((p) => p.reason), bad.tornBytes], [[1, 2], ['checksum mismatch'], 0]);
  const zeros = readJsonLog(Buffer.concat([Buffer.from(lines(1)), Buffer.alloc(20)]), decodeN);
  assert.equal([zeros.lines, zeros.tornBytes, zeros.lostBytes], [[1], 0, 20], 'a zeroed tail is not a torn write');
});

test('a lost newline: both records are found again by their framing', () => {
  const text = lines(1, 2, 3);
  const nl = text.indexOf('\n');
  const read = readJsonLog(Buffer.from(`${text.slice(0, nl)}X${text.slice(nl + 1)}`), decodeN);
  assert.equal([read.lines, read.corrupt.map((p) => p.recovered), read.lostBytes], [[1, 2, 3], [2], 2]);
});

test.run();
