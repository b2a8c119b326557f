// tier: fast
// The word-at-a-time string search must give stringEnd's answers and stops at every offset, whatever the alignment.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stringEnd, stringEndWords, Stop, withSentinel, wordsOf } from '../../src/portal/scan-lex.ts';

/** stringEnd's or stringEndWords' answer: the closing quote's index, or the stop's reason and byte. */
function outcome(find: () => number): string {
  try {
    return `at ${find()}`;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    return `stop ${err.why} at ${err.at}`;
  }
}

/** Every start of every buffer in `bodies`, each placed at byte offsets 0–7 of its memory (unaligned reads). */
function agreeEverywhere(bodies: Buffer[]): number {
  let compared = 0;
  for (const body of bodies) {
    for (let shift = 0; shift < 8; shift++) {
      const memory = Buffer.alloc(shift + body.length + 1, 0x78);
      body.copy(memory, shift);
      const buf = withSentinel(memory.subarray(shift, shift + body.length));
      const words = wordsOf(buf);
      const n = body.length;
      for (let i = 0; i <= n + 1; i++) {
        const expected = outcome(() => stringEnd(buf, i, n));
        const actual = outcome(() => stringEndWords(buf, words, i, n));
        assert.is(actual, expected, `${JSON.stringify(body.toString('latin1'))}, shift ${shift}, from ${i}`);
        compared++;
      }
    }
  }
  return compared;
}

test('a quote at every position of strings up to 12 bytes, and none: the same index or the same stop', () => {
  const bodies: Buffer[] = [Buffer.alloc(0)];
  for (let len = 1; len <= 12; len++) {
    bodies.push(Buffer.alloc(len, 0x61));
    for (let q = 0; q < len; q++) {
      const b = Buffer.alloc(len, 0x61);
      b[q] = 0x22;
      bodies.push(b);
    }
  }
  assert.ok(agreeEverywhere(bodies) > 5000);
});

test('bytes that defeat a naive zero-byte test (0x21, 0x23, 0xa2, 0x00, 0x80, 0xff beside a quote)', () => {
  // The borrow of (w - 0x01010101) flags bytes above a zero: 0x23 ^ 0x22 = 0x01 after a quote is one such byte.
  const tricky = [0x21, 0x23, 0xa2, 0x00, 0x80, 0xff, 0x01, 0x7f];
  const bodies: Buffer[] = [];
  for (const a of tricky)
    for (const b of tricky) {
      bodies.push(Buffer.from([a, b, a, b, a, b, a, b, a]));
      bodies.push(Buffer.from([a, 0x22, b, a, b, 0x22, a]));
      bodies.push(Buffer.from([a, b, 0x22, 0x22, b, a]));
    }
  assert.ok(agreeEverywhere(bodies) > 10_000);
});

test('an openNDS listing: every string end found by words is the one found byte by byte', () => {
  const listing = Buffer.from(
    '{"client_list_length":"1","clients":{"02:00:00:00:0c:01":{"gatewayname":"TGtest","ip":"10.77.0.148",' +
      '"token":"d7eecbd4","state":"Authenticated","download_this_session":"20504","upload_this_session":"16"}}}',
  );
  const buf = withSentinel(listing);
  const words = wordsOf(buf);
  let strings = 0;
  for (let i = listing.indexOf(0x22); i >= 0 && i < listing.length; i = listing.indexOf(0x22, i + 1)) {
    const end = stringEndWords(buf, words, i + 1, listing.length);
    assert.is(end, stringEnd(buf, i + 1, listing.length));
    i = end;
    strings++;
  }
  assert.is(strings, 16);
});

test.run();
