// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UbusCodecError, UbusFrameReader } from '../../src/ubus/codec/index.ts';
import { captureFrames, prng } from './codec-fixtures.ts';

const frames = captureFrames().map((f) => Buffer.from(f.hex, 'hex'));
const stream = Buffer.concat(frames);

test('frames split at every kind of boundary come out whole and in order', () => {
  const rnd = prng(5);
  for (const maxChunk of [1, 3, 12, 13, 100, stream.length]) {
    const r = new UbusFrameReader();
    const out: Buffer[] = [];
    for (let off = 0; off < stream.length;) {
      const n = 1 + Math.floor(rnd() * maxChunk);
      out.push(...r.push(stream.subarray(off, off + n)));
      off += n;
    }
    assert.is(out.length, frames.length, `chunk ≤ ${maxChunk}`);
    out.forEach((f, i) => assert.ok(f.equals(frames[i]!)));
    assert.is(r.pendingBytes, 0);
  }
});

test('a header claiming 2 MiB fails before any body is read, keeping earlier frames', () => {
  const r = new UbusFrameReader();
  const bad = Buffer.from('000300010000000000200004', 'hex');
  const out = r.push(Buffer.concat([frames[0]!, bad]));
  assert.ok(r.error instanceof UbusCodecError);
  assert.is(r.error.code, 'ERR_UBUS_CODEC');
  assert.is(out.length, 1);
  assert.ok(out[0]!.equals(frames[0]!));
  assert.equal(r.push(frames[0]!), [], 'stays failed');
  assert.ok(r.error instanceof UbusCodecError, 'stays failed');
});

test('a blob length below 4 fails', () => {
  const r = new UbusFrameReader();
  assert.equal(r.push(Buffer.from('000300010000000000000003', 'hex')), []);
  assert.ok(r.error instanceof UbusCodecError);
});

test.run();
