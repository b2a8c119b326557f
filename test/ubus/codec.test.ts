// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Attr,
  BlobmsgType,
  MsgType,
  UbusCodecError,
  blobmsgTypeName,
  decodeBlobmsgNodes,
  decodeBlobmsgTable,
  decodeHeader,
  decodeMessage,
  decodeMonitor,
  encodeBlobmsgArray,
  encodeBlobmsgNodes,
  encodeBlobmsgTable,
  encodeMessage,
  msgTypeName,
  statusName,
  Status,
} from '../../src/ubus/codec/index.ts';
import type { BlobmsgNode, BlobmsgScalar, BlobmsgValue, UbusMessage } from '../../src/ubus/codec/index.ts';
import { captureFrames, loadFrameFiles } from './codec-fixtures.ts';
import type { FixtureDecoded, FixtureNode } from './codec-fixtures.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const files = loadFrameFiles();
const capture = captureFrames();

/** The typed view alone (no rawAttrs, and DATA from the decoded table when it decoded). */
function typedOnly(m: UbusMessage): UbusMessage {
  const attrs = { ...m.attrs };
  if (attrs.data !== undefined) delete attrs.dataRaw;
  if (attrs.signature !== undefined) delete attrs.signatureRaw;
  return { type: m.type, seq: m.seq, peer: m.peer, attrs };
}

/** JSON has no bigint: the fixture prints every integer as a number. */
function jsonish(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(jsonish);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonish(x)]));
  return v;
}

function fixtureNodeType(n: BlobmsgNode): string {
  return n.type === BlobmsgType.INT8 ? 'INT8/BOOL' : blobmsgTypeName(n.type);
}

function compareNodes(nodes: BlobmsgNode[], want: FixtureNode[], where: string): void {
  assert.is(nodes.length, want.length, `${where}: node count`);
  nodes.forEach((n, i) => {
    const w = want[i]!;
    assert.is(n.name, w.name, `${where}: name`);
    assert.is(fixtureNodeType(n), w.type, `${where}.${n.name}: type`);
    if (n.children !== undefined) compareNodes(n.children, w.value as FixtureNode[], `${where}.${n.name}`);
    else assert.equal(jsonish(n.value), w.value, `${where}.${n.name}: value`);
  });
}

function checkAgainstDecoded(buf: Buffer, d: FixtureDecoded, where: string): void {
  const m = decodeMessage(buf);
  assert.is(m.version, d.version, `${where}: version`);
  assert.is(m.type, d.type_num, `${where}: type`);
  assert.is(msgTypeName(m.type), d.type, `${where}: type name`);
  assert.is(m.seq, d.seq, `${where}: seq`);
  assert.is(m.peer, Number(d.peer), `${where}: peer`);
  assert.is(decodeHeader(buf).totalLength, 8 + d.blob_len, `${where}: length`);
  const raw = m.rawAttrs ?? [];
  assert.equal(
    raw.map((a) => a.id),
    d.attrs.map((a) => a.id),
    `${where}: attr order`,
  );
  raw.forEach((a, i) => assert.is(a.payload.length + 4, d.attrs[i]!.len, `${where}: attr ${a.id} len`));
  if (m.type === MsgType.MONITOR) {
    const rec = decodeMonitor(m);
    const byName = Object.fromEntries(d.attrs.map((a) => [a.name, a]));
    assert.is(rec.client, Number(byName.CLIENT!.value));
    assert.is(rec.peer, Number(byName.PEER!.value));
    assert.is(rec.seq, byName.SEQ!.value);
    assert.is(rec.type, byName.TYPE!.value);
    assert.is(rec.send, byName.SEND!.value === 1);
    assert.is(hex(rec.data), byName.DATA!.value_hex);
    return;
  }
  for (const a of d.attrs) {
    const t = m.attrs;
    switch (a.id) {
      case Attr.STATUS:
        assert.is(t.status, a.value, `${where}: status`);
        break;
      case Attr.OBJPATH:
        assert.is(t.objpath, a.value);
        break;
      case Attr.OBJID:
        assert.is(t.objid, Number(a.value), `${where}: objid`);
        break;
      case Attr.METHOD:
        assert.is(t.method, a.value);
        break;
      case Attr.OBJTYPE:
        assert.is(t.objtype, Number(a.value));
        break;
      case Attr.SIGNATURE:
        assert.equal(t.signature, a.value, `${where}: signature`);
        break;
      case Attr.DATA:
        assert.equal(jsonish(t.data), a.value, `${where}: data`);
        if (a.blobmsg) compareNodes(decodeBlobmsgNodes(t.dataRaw!), a.blobmsg, `${where}: DATA`);
        break;
      case Attr.TARGET:
        assert.is(t.target, Number(a.value));
        break;
      case Attr.ACTIVE:
        assert.is(t.active, a.value === 1);
        break;
      case Attr.SUBSCRIBERS:
        assert.equal(t.subscribers, (a.value as string[]).map(Number));
        break;
      case Attr.USER:
        assert.is(t.user, a.value);
        break;
      case Attr.GROUP:
        assert.is(t.group, a.value);
        break;
      default:
        assert.unreachable(`${where}: unexpected attr ${a.id}`);
    }
  }
}

test('every fixture frame decodes to its recorded meaning', () => {
  assert.is(files.length, 44);
  for (const f of files) {
    checkAgainstDecoded(unhex(f.hex), f.decoded, f.file);
    if (f.request_hex && f.request_decoded)
      checkAgainstDecoded(unhex(f.request_hex), f.request_decoded, `${f.file} request`);
  }
});

test('every fixture and capture frame re-encodes byte for byte (lossless and from typed attrs)', () => {
  const all = [
    ...files.map((f) => ({ hex: f.hex, where: f.file })),
    ...capture.map((c) => ({ hex: c.hex, where: `capture line ${c.line}` })),
  ];
  assert.ok(capture.length > 100);
  let typed = 0;
  for (const { hex: h, where } of all) {
    const buf = unhex(h);
    const m = decodeMessage(buf);
    assert.is(hex(encodeMessage(m)), h, `${where}: lossless`);
    if (m.type === MsgType.MONITOR) continue;
    assert.is(hex(encodeMessage(typedOnly(m))), h, `${where}: typed`);
    typed++;
  }
  assert.ok(typed > 100);
});

test('blobmsg: false keeps DATA and SIGNATURE as bytes only, and the frame still re-encodes byte for byte', () => {
  let withData = 0;
  let withSignature = 0;
  for (const c of capture) {
    const buf = unhex(c.hex);
    const full = decodeMessage(buf);
    const m = decodeMessage(buf, { blobmsg: false });
    if (m.type === MsgType.MONITOR) continue;
    assert.is(m.attrs.data, undefined, `capture line ${c.line}`);
    assert.is(m.attrs.signature, undefined, `capture line ${c.line}`);
    if (full.attrs.dataRaw !== undefined) withData++;
    if (full.attrs.signatureRaw !== undefined) withSignature++;
    const { data: _data, signature: _signature, ...rest } = full.attrs;
    assert.equal(m.attrs, rest, `capture line ${c.line}: other attrs as in a full decode`);
    assert.is(
      hex(encodeMessage({ type: m.type, seq: m.seq, peer: m.peer, attrs: m.attrs })),
      c.hex,
      `capture line ${c.line}: typed`,
    );
  }
  assert.ok(withData > 10 && withSignature > 0);
});

test('the ubus CLI monitor request carries plain attrs as DATA: kept raw, not an error', () => {
  const c = capture.find((f) => f.hex.startsWith('000500010000000300'))!;
  const m = decodeMessage(unhex(c.hex));
  assert.is(m.attrs.method, 'add');
  assert.is(m.attrs.data, undefined);
  assert.is(hex(m.attrs.dataRaw!), '03000008000000030400000861646400');
});

test('ubus-protocol.md §4 examples, byte for byte', () => {
  // The doc shows the name header unpadded; its stated length 18 = 4 + pad4(2+3+1) + 6 is what counts.
  assert.is(hex(encodeBlobmsgTable({ str: 'hello' })), '830000120003737472000000' + '68656c6c6f00' + '0000');
  assert.is(hex(encodeBlobmsgArray([1])), '8500000c00000000' + '00000001');
  assert.is(hex(encodeBlobmsgArray([true])), '8700000900000000' + '01000000');
  assert.is(hex(encodeBlobmsgTable({ d: 1.5 })), '8800001000016400' + '3ff8000000000000');
  assert.is(hex(encodeBlobmsgTable({ empty: {} })), '8200000c0005656d70747900');
  assert.is(hex(encodeBlobmsgTable({ nul: null })), '8000000c00036e756c000000');
  assert.is(hex(encodeBlobmsgTable({ earr: [] })), '8100000c000465617272' + '0000');
});

test('ubus-protocol.md §2/§6/§20 examples, byte for byte', () => {
  assert.is(
    hex(encodeMessage({ type: MsgType.HELLO, seq: 0, peer: 0x7b7b6447, attrs: {} })),
    '000000007b7b644700000004',
  );
  assert.is(
    hex(encodeMessage({ type: MsgType.LOOKUP, seq: 1, peer: 0, attrs: { objpath: 'demo' } })),
    '00040001000000000000001002000009' + '64656d6f00000000',
  );
  const invoke = encodeMessage({
    type: MsgType.INVOKE,
    seq: 2,
    peer: 0xc9bbca09,
    attrs: { objid: 0xc9bbca09, method: 'ping', data: {} },
  });
  assert.is(hex(invoke), '00050002c9bbca090000001c03000008c9bbca0904000009' + '70696e6700000000' + '07000004');
  const pong = encodeBlobmsgTable({ pong: true, count: 1 });
  assert.is(hex(pong), '8700000d0004706f6e670000' + '01000000' + '850000100005636f756e7400' + '00000001');
  const active = encodeMessage({ type: MsgType.NOTIFY, seq: 1, peer: 0, attrs: { active: true } });
  assert.is(hex(active.subarray(12)), '0900000501000000');
  const status = encodeMessage({ type: MsgType.STATUS, seq: 1, peer: 0, attrs: { status: 0 } });
  assert.is(hex(status), '00010001000000000000000c0100000800000000');
});

test('typed attr order: NO_REPLY first in INVOKE, after METHOD in NOTIFY; STATUS after SUBSCRIBERS', () => {
  const ids = (m: UbusMessage): number[] => (decodeMessage(encodeMessage(m)).rawAttrs ?? []).map((a) => a.id);
  const a = { objid: 5000, method: 'x', noReply: true, user: 'u', group: 'g', data: {} };
  assert.equal(ids({ type: MsgType.INVOKE, seq: 1, peer: 1, attrs: a }), [10, 3, 4, 12, 13, 7]);
  assert.equal(
    ids({ type: MsgType.NOTIFY, seq: 1, peer: 1, attrs: { objid: 5000, method: 'x', noReply: true, data: {} } }),
    [3, 4, 10, 7],
  );
  assert.equal(
    ids({ type: MsgType.STATUS, seq: 1, peer: 1, attrs: { status: 0, objid: 5000, subscribers: [1, 2] } }),
    [3, 11, 1],
  );
  assert.equal(ids({ type: MsgType.STATUS, seq: 1, peer: 1, attrs: { status: 0, objid: 5000 } }), [1, 3]);
});

test('JS → blobmsg mapping follows the reference CLI', () => {
  const nodes = decodeBlobmsgNodes(
    encodeBlobmsgTable({
      i: 7,
      neg: -2147483648,
      big: 2147483648,
      huge: 2 ** 70,
      b: false,
      f: 0.25,
      s: 'x',
      n: null,
      bi: 5n,
      a: [1],
      t: {},
    }),
  );
  const types = Object.fromEntries(nodes.map((n) => [n.name, blobmsgTypeName(n.type)]));
  assert.equal(types, {
    i: 'INT32',
    neg: 'INT32',
    big: 'INT64',
    huge: 'DOUBLE',
    b: 'INT8',
    f: 'DOUBLE',
    s: 'STRING',
    n: 'UNSPEC',
    bi: 'INT64',
    a: 'ARRAY',
    t: 'TABLE',
  });
  assert.equal(decodeBlobmsgTable(encodeBlobmsgTable({ b: true, c: false })), { b: true, c: false });
});

test('policy forces a wire type per key and rejects values it cannot carry', () => {
  const body = encodeBlobmsgTable(
    { object: 0xc9bbca09, small: 3, d: 2, s16: -2 },
    {
      object: BlobmsgType.INT32,
      small: BlobmsgType.INT64,
      d: BlobmsgType.DOUBLE,
      s16: BlobmsgType.INT16,
    },
  );
  const nodes = decodeBlobmsgNodes(body);
  assert.equal(
    nodes.map((n) => blobmsgTypeName(n.type)),
    ['INT32', 'INT64', 'DOUBLE', 'INT16'],
  );
  assert.is(hex(nodes[0]!.payload!), 'c9bbca09', 'u32 object id written as its INT32 bit pattern');
  assert.equal(decodeBlobmsgTable(body), { object: 0xc9bbca09 | 0, small: 3, d: 2, s16: -2 });
  for (const [v, t] of [
    ['x', BlobmsgType.INT32],
    [70000, BlobmsgType.INT16],
    [1.5, BlobmsgType.INT32],
    [2 ** 32, BlobmsgType.INT32],
    [1, BlobmsgType.STRING],
    [[], BlobmsgType.TABLE],
    [{}, BlobmsgType.ARRAY],
    [1, BlobmsgType.UNSPEC],
    [2n ** 64n, BlobmsgType.INT64],
  ] as const) {
    assert.throws(
      () => encodeBlobmsgTable({ k: v as BlobmsgValue }, { k: t }),
      (e: unknown) => e instanceof UbusCodecError && e.code === 'ERR_UBUS_CODEC',
    );
  }
  assert.throws(
    () => encodeBlobmsgTable({ f: (() => 1) as unknown as BlobmsgValue }),
    (e: unknown) => e instanceof UbusCodecError,
  );
});

test('a table is written byte for byte as its typed elements, and refused with an error naming the key', () => {
  const T = BlobmsgType;
  const leaf = (name: string, type: number, value: BlobmsgScalar): BlobmsgNode => ({ name, type, value });
  const box = (name: string, type: number, children: BlobmsgNode[]): BlobmsgNode => ({ name, type, children });
  const sessions = Array.from({ length: 3 }, (_, i) => ({
    id: `s-${i}`,
    mac: `02:00:00:00:00:0${i}`,
    metric: 'bytes',
    delta: 20000 + i,
    used: String(10n ** 12n + BigInt(i)),
    remaining: null,
    exhausted: i === 2,
  }));
  const cases: Array<[Record<string, BlobmsgValue | undefined>, Record<string, number> | undefined, BlobmsgNode[]]> = [
    [
      { event: 'usage', sessions },
      undefined,
      [
        leaf('event', T.STRING, 'usage'),
        box(
          'sessions',
          T.ARRAY,
          sessions.map((x) =>
            box('', T.TABLE, [
              leaf('id', T.STRING, x.id),
              leaf('mac', T.STRING, x.mac),
              leaf('metric', T.STRING, x.metric),
              leaf('delta', T.INT32, x.delta),
              leaf('used', T.STRING, x.used),
              leaf('remaining', T.UNSPEC, null),
              leaf('exhausted', T.INT8, x.exhausted),
            ]),
          ),
        ),
      ],
    ],
    [
      { é: 'naïve ☕ caf\u00e9', '': '', a: [[1, 'x', [true]], { t: { u: 2 ** 40 } }], gone: undefined },
      undefined,
      [
        leaf('é', T.STRING, 'naïve ☕ café'),
        leaf('', T.STRING, ''),
        box('a', T.ARRAY, [
          box('', T.ARRAY, [leaf('', T.INT32, 1), leaf('', T.STRING, 'x'), box('', T.ARRAY, [leaf('', T.INT8, true)])]),
          box('', T.TABLE, [box('t', T.TABLE, [leaf('u', T.INT64, 2 ** 40)])]),
        ]),
      ],
    ],
    [
      { n: -1, m: 4294967295, f: -0.5, big: -(2n ** 63n), z: 0, b: true },
      undefined,
      [
        leaf('n', T.INT32, -1),
        leaf('m', T.INT64, 4294967295),
        leaf('f', T.DOUBLE, -0.5),
        leaf('big', T.INT64, -(2n ** 63n)),
        leaf('z', T.INT32, 0),
        leaf('b', T.INT8, true),
      ],
    ],
    [
      { object: 0xc9bbca09, small: 3, d: 2, s16: -2, s8: 200 },
      { object: T.INT32, small: T.INT64, d: T.DOUBLE, s16: T.INT16, s8: T.INT8 },
      [
        leaf('object', T.INT32, 0xc9bbca09),
        leaf('small', T.INT64, 3),
        leaf('d', T.DOUBLE, 2),
        leaf('s16', T.INT16, -2),
        leaf('s8', T.INT8, 200),
      ],
    ],
  ];
  for (const [table, policy, nodes] of cases) {
    assert.is(hex(encodeBlobmsgTable(table as Record<string, BlobmsgValue>, policy)), hex(encodeBlobmsgNodes(nodes)));
  }
  const nest = (d: number): BlobmsgValue => (d === 0 ? 1 : { n: nest(d - 1) });
  const refusals: Array<[Record<string, BlobmsgValue>, Record<string, number> | undefined, string]> = [
    [{ k: 'x' }, { k: T.INT32 }, '"k": string "x" cannot be encoded as INT32'],
    [{ k: 70000 }, { k: T.INT16 }, '"k": 70000 is out of range for INT16'],
    [{ k: 2 ** 32 }, { k: T.INT32 }, '"k": 4294967296 is out of range for INT32'],
    [{ k: [] }, { k: T.TABLE }, '"k": an array is not a table'],
    [{ k: 1 }, { k: 99 }, '"k": type UNKNOWN_99 is not a scalar'],
    [
      { ok: 1, deep: { a: { b: [{ c: (() => 1) as unknown as BlobmsgValue }] } } },
      undefined,
      '"c": function has no blobmsg representation',
    ],
    [{ deep: nest(70) }, undefined, 'blobmsg nesting deeper than 64'],
  ];
  for (const [table, policy, message] of refusals) {
    assert.throws(
      () => encodeBlobmsgTable(table, policy),
      (e: unknown) => e instanceof UbusCodecError && e.message === message,
      message,
    );
  }
});

test('INT64 decodes to number when safe, bigint beyond 2^53', () => {
  const t = decodeBlobmsgTable(encodeBlobmsgTable({ a: 2n ** 60n, b: -(2n ** 60n), c: 5000000000n }));
  assert.equal(t, { a: 2n ** 60n, b: -(2n ** 60n), c: 5000000000 });
});

test('status/type names', () => {
  assert.is(statusName(Status.PERMISSION_DENIED), 'PERMISSION_DENIED');
  assert.is(statusName(99), 'UNKNOWN_99');
  assert.is(msgTypeName(MsgType.MONITOR), 'MONITOR');
  assert.is(blobmsgTypeName(7), 'INT8');
});

test.run();
