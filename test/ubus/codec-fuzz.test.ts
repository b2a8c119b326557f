// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BlobmsgType,
  MsgType,
  UBUS_MAX_MSGLEN,
  UbusCodecError,
  decodeBlobmsgNodes,
  decodeBlobmsgTable,
  decodeHeader,
  decodeMessage,
  encodeBlobmsgNodes,
  encodeBlobmsgTable,
  encodeMessage,
} from '../../src/ubus/codec/index.ts';
import type { BlobmsgNode, BlobmsgTable, BlobmsgValue, UbusMessage } from '../../src/ubus/codec/index.ts';
import { captureFrames, prng } from './codec-fixtures.ts';

const frames = captureFrames().map((f) => Buffer.from(f.hex, 'hex'));

function isCodecError(e: unknown): boolean {
  return e instanceof UbusCodecError && e.code === 'ERR_UBUS_CODEC';
}

/** Runs `fn`; it may succeed or throw UbusCodecError, anything else fails the test. */
function onlyCodecErrors(fn: () => unknown, what: string): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!isCodecError(e)) assert.unreachable(`${what}: threw ${String(e)}`);
    return false;
  }
}

function randomString(rnd: () => number, max = 12): string {
  const alphabet = 'abcXYZ09_.-é€😀 ';
  const chars = [...alphabet];
  let s = '';
  const n = Math.floor(rnd() * max);
  for (let i = 0; i < n; i++) s += chars[Math.floor(rnd() * chars.length)]!;
  return s;
}

function randomValue(rnd: () => number, depth: number): BlobmsgValue {
  const pick = Math.floor(rnd() * (depth > 3 ? 7 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rnd() < 0.5;
    case 2:
      return Math.floor(rnd() * 2 ** 32) - 2 ** 31; // INT32
    case 3:
      return Math.floor(rnd() * 2 ** 53) * (rnd() < 0.5 ? -1 : 1); // INT64 as number
    case 4:
      return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20); // DOUBLE (or an integer that happens to fit)
    case 5:
      return randomString(rnd);
    case 6:
      return BigInt.asIntN(64, BigInt(Math.floor(rnd() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(rnd() * 2 ** 32)));
    case 7:
      return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(rnd, depth + 1));
    default:
      return randomTable(rnd, depth + 1);
  }
}

function randomTable(rnd: () => number, depth: number): BlobmsgTable {
  const t: BlobmsgTable = {};
  const n = Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++) t[`k${i}${randomString(rnd, 4)}`] = randomValue(rnd, depth);
  return t;
}

/** Decoded bigint values that fit 2^53 come back as numbers; JS doubles that are integers come back as ints. */
function normalize(v: BlobmsgValue): BlobmsgValue {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 2 ** 63)
    return BigInt(v);
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

test('random nested tables round-trip through blobmsg (seeded)', () => {
  const rnd = prng(0x5eed);
  for (let i = 0; i < 500; i++) {
    const t = randomTable(rnd, 0);
    const body = encodeBlobmsgTable(t);
    assert.equal(decodeBlobmsgTable(body), normalize(t), `iteration ${i}`);
    assert.is(Buffer.compare(encodeBlobmsgNodes(decodeBlobmsgNodes(body)), body), 0, `iteration ${i}: lossless`);
  }
});

function randomNode(rnd: () => number, named: boolean, depth: number): BlobmsgNode {
  const name = named ? `n${randomString(rnd, 6)}` : '';
  const type = Math.floor(rnd() * (depth > 3 ? 7 : 9));
  const int = (bits: number): number => Math.floor(rnd() * 2 ** bits) - 2 ** (bits - 1);
  switch (type) {
    case 0:
      return {
        name,
        type: BlobmsgType.UNSPEC,
        payload: Uint8Array.from({ length: Math.floor(rnd() * 6) }, () => Math.floor(rnd() * 256)),
      };
    case 1:
      return { name, type: BlobmsgType.INT8, value: int(8) };
    case 2:
      return { name, type: BlobmsgType.INT16, value: int(16) };
    case 3:
      return { name, type: BlobmsgType.INT32, value: int(32) };
    case 4:
      return { name, type: BlobmsgType.INT64, value: BigInt(int(32)) * 2n ** 31n };
    case 5:
      return { name, type: BlobmsgType.DOUBLE, value: rnd() * 1e6 };
    case 6:
      return { name, type: BlobmsgType.STRING, value: randomString(rnd) };
    case 7:
      return {
        name,
        type: BlobmsgType.ARRAY,
        children: Array.from({ length: Math.floor(rnd() * 4) }, () => randomNode(rnd, false, depth + 1)),
      };
    default:
      return {
        name,
        type: BlobmsgType.TABLE,
        children: Array.from({ length: Math.floor(rnd() * 4) }, () => randomNode(rnd, true, depth + 1)),
      };
  }
}

test('random lossless nodes of every wire type re-encode to the same bytes (seeded)', () => {
  const rnd = prng(42);
  for (let i = 0; i < 500; i++) {
    const nodes = Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => randomNode(rnd, true, 0));
    const body = encodeBlobmsgNodes(nodes);
    const back = decodeBlobmsgNodes(body);
    assert.is(Buffer.compare(encodeBlobmsgNodes(back), body), 0, `iteration ${i}`);
    assert.is(back.length, nodes.length);
  }
});

test('random messages round-trip (seeded)', () => {
  const rnd = prng(7);
  const u32 = (): number => Math.floor(rnd() * 2 ** 32);
  for (let i = 0; i < 300; i++) {
    const msg: UbusMessage = {
      type: Math.floor(rnd() * 11),
      seq: Math.floor(rnd() * 65536),
      peer: u32(),
      attrs: {
        objid: u32(),
        method: randomString(rnd),
        data: randomTable(rnd, 0),
        user: 'root',
        group: 'root',
        subscribers: [u32(), u32()],
        status: 0,
        active: true,
      },
    };
    const back = decodeMessage(encodeMessage(msg));
    assert.is(back.seq, msg.seq);
    assert.is(back.peer, msg.peer);
    assert.is(back.attrs.objid, msg.attrs.objid);
    assert.equal(back.attrs.subscribers, msg.attrs.subscribers);
    assert.equal(back.attrs.data, normalize(msg.attrs.data!));
  }
});

test('every truncation of every captured frame → UbusCodecError', () => {
  let n = 0;
  for (const f of frames) {
    for (let len = 0; len < f.length; len++) {
      assert.throws(() => decodeMessage(f.subarray(0, len)), isCodecError, `length ${len}`);
      n++;
    }
    assert.throws(() => decodeMessage(Buffer.concat([f, Buffer.alloc(4)])), isCodecError);
  }
  assert.ok(n > 1000);
});

test('header validation: blob length < 4 or > 1 MiB is rejected before reading a body', () => {
  const h = (len: number): Buffer => {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(len, 8);
    return b;
  };
  assert.throws(() => decodeHeader(h(0)), isCodecError);
  assert.throws(() => decodeHeader(h(3)), isCodecError);
  assert.throws(() => decodeHeader(h(2 * 1024 * 1024)), isCodecError);
  assert.throws(() => decodeHeader(h(UBUS_MAX_MSGLEN + 1)), isCodecError);
  assert.is(decodeHeader(h(UBUS_MAX_MSGLEN)).totalLength, UBUS_MAX_MSGLEN + 8);
  assert.throws(() => decodeHeader(Buffer.alloc(11)), isCodecError);
});

test('encodeMessage refuses out-of-range header fields and oversized messages', () => {
  const base = { type: MsgType.PING, seq: 1, peer: 0, attrs: {} };
  for (const bad of [{ seq: 65536 }, { seq: -1 }, { peer: 2 ** 32 }, { type: 256 }, { seq: 1.5 }]) {
    assert.throws(() => encodeMessage({ ...base, ...bad }), isCodecError);
  }
  assert.throws(() => encodeMessage({ ...base, attrs: { dataRaw: new Uint8Array(UBUS_MAX_MSGLEN) } }), isCodecError);
});

test('deep nesting is an error, not a stack overflow', () => {
  let body: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 2000; i++) {
    const hdr = Buffer.from([0, 1, 0x61, 0]);
    const len = 4 + hdr.length + body.length;
    const head = Buffer.alloc(4);
    head.writeUInt32BE((0x80000000 | (BlobmsgType.TABLE << 24) | len) >>> 0);
    body = Buffer.concat([head, hdr, body]);
  }
  assert.throws(() => decodeBlobmsgTable(body), isCodecError);
  let v: BlobmsgTable = {};
  for (let i = 0; i < 2000; i++) v = { a: v };
  assert.throws(() => encodeBlobmsgTable(v), isCodecError);
});

test('fuzz: thousands of mutated frames decode or throw UbusCodecError, nothing else', () => {
  const rnd = prng(1234);
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < 6000; i++) {
    const f = Buffer.from(frames[Math.floor(rnd() * frames.length)]!);
    const mutations = 1 + Math.floor(rnd() * 4);
    for (let m = 0; m < mutations; m++) {
      const at = Math.floor(rnd() * f.length);
      const kind = rnd();
      if (kind < 0.5) f[at] = Math.floor(rnd() * 256);
      else if (kind < 0.8) f[at] = f[at]! ^ (1 << Math.floor(rnd() * 8));
      else if (at + 4 <= f.length) f.writeUInt32BE(Math.floor(rnd() * 2 ** 32), at);
    }
    const ok = onlyCodecErrors(() => {
      const msg = decodeMessage(f);
      encodeMessage(msg); // whatever decoded must also re-encode
      if (msg.attrs.dataRaw) onlyCodecErrors(() => decodeBlobmsgNodes(msg.attrs.dataRaw!), 'data');
    }, `mutation ${i}`);
    if (ok) decoded++;
    else rejected++;
  }
  assert.ok(decoded > 0 && rejected > 0, `decoded ${decoded}, rejected ${rejected}`);
});

test('fuzz: random garbage buffers and random blobmsg bodies', () => {
  const rnd = prng(99);
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rnd() * 64);
    const buf = Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
    if (rnd() < 0.5 && len >= 12) buf.writeUInt32BE(len - 8, 8); // consistent length: reach the attr parser
    onlyCodecErrors(() => decodeMessage(buf), `garbage ${i}`);
    onlyCodecErrors(() => decodeBlobmsgTable(buf), `garbage body ${i}`);
    onlyCodecErrors(() => decodeHeader(buf), `garbage header ${i}`);
  }
});

test.run();
