// tier: fast
// The usage report's row cache (RowPrefixes) is keyed by the session manager's slot, which a new session reuses once
// the old one ended: a reused slot must never put the old session's id, MAC or user on the new one's row.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { decode, loadMsgpack, usageParts } from '../../src/upstream/mqtt/messages.ts';
import { RowPrefixes } from '../../src/upstream/mqtt/writer.ts';
import type { UsageReport } from '../../src/meter/ports.ts';
import { rows } from './mqtt-rig.ts';
import { useBytes } from '../sessions/helpers.ts';

// msgpackr is read when the MQTT sink opens its queue (messages.ts); this file decodes without a sink.
await loadMsgpack();

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

function report(m: SessionManager, mac: string, id: string, delta: number): UsageReport {
  return {
    mac,
    sessionId: id,
    slot: m.slotOf(id),
    metric: 'bytes',
    deltaBytes: delta,
    deltaDownloadBytes: delta,
    deltaUploadBytes: 0,
    remainingBytes: 0,
    exhausted: false,
  };
}

function tick(m: SessionManager, prefixes: RowPrefixes, usage: UsageReport[]): Array<Record<string, unknown>> {
  const parts = usageParts('msgpack', {
    router: 'r',
    at: 1,
    usage,
    figuresInto: (id, out, slot) => m.figuresInto(id, 1, out, slot),
    maxPayload: 65536,
    prefixes,
  });
  return parts.flatMap((p) => rows(decode(p.payload(1, 0)) as Record<string, unknown>));
}

test('a slot reused by a new session gets a row of its own, by slot and without one', async () => {
  const m = await SessionManager.open({ store: new MemoryStore() });
  const pay = (r: string) => ({ method: 'grant', reference: r, amount: 1n, asset: 'X', at: 1 });
  const a = (await m.activate({ mac: A, user: 'alice', metric: 'bytes', allotment: 1000n, payment: pay('a') })).session;
  const prefixes = new RowPrefixes();
  useBytes(m, [[A, 100]]);
  assert.equal(
    tick(m, prefixes, [report(m, A, a.id, 100)]).map((r) => [r['id'], r['mac'], r['user'], r['used'], r['state']]),
    [[a.id, A, 'alice', 100, 'ACTIVE']],
  );
  const slot = m.slotOf(a.id);
  useBytes(m, [[A, 2000]]);
  const last = { ...report(m, A, a.id, 2000), slot };
  const b = (await m.activate({ mac: B, metric: 'bytes', allotment: 5000n, payment: pay('b') })).session;
  assert.is(m.slotOf(b.id), slot);
  useBytes(m, [[B, 300]]);
  // The tick that ended `a` is reported after `b` took its slot; then `b` alone, with and without the slot.
  const got = tick(m, prefixes, [last, report(m, B, b.id, 300)]);
  assert.equal(
    got.map((r) => [r['id'], r['mac'], r['user'], r['used'], r['state']]),
    [
      [a.id, A, 'alice', 2100, 'EXPIRED'],
      [b.id, B, null, 300, 'ACTIVE'],
    ],
  );
  prefixes.delete(a.id);
  assert.equal(
    tick(m, prefixes, [report(m, B, b.id, 0)]).map((r) => [r['id'], r['user']]),
    [[b.id, null]],
  );
  assert.equal(
    tick(m, prefixes, [{ ...report(m, B, b.id, 0), slot: -1 }]).map((r) => [r['id'], r['user']]),
    [[b.id, null]],
  );
  await m.close();
});

test('row integers take their smallest MessagePack width at every boundary, up to 2^53 - 1', async () => {
  const m = await SessionManager.open({ store: new MemoryStore() });
  const a = (
    await m.activate({
      mac: A,
      metric: 'bytes',
      allotment: 2n ** 60n,
      payment: { method: 'grant', reference: 'a', amount: 1n, asset: 'X', at: 1 },
    })
  ).session;
  const values = [
    0,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x10000,
    0xffffffff,
    0x100000000,
    2 ** 40 + 5,
    Number.MAX_SAFE_INTEGER,
  ];
  const width = (n: number) => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);
  const prefixes = new RowPrefixes();
  for (const v of values) {
    const u = { ...report(m, A, a.id, 0), deltaUploadBytes: v, deltaDownloadBytes: 0 };
    const parts = usageParts('msgpack', {
      router: 'r',
      at: 1,
      usage: [u],
      figuresInto: (id, out, slot) => m.figuresInto(id, 1, out, slot),
      maxPayload: 65536,
      prefixes,
    });
    const zero = usageParts('msgpack', {
      router: 'r',
      at: 1,
      usage: [{ ...u, deltaUploadBytes: 0 }],
      figuresInto: (id, out, slot) => m.figuresInto(id, 1, out, slot),
      maxPayload: 65536,
      prefixes,
    });
    const body = decode(parts[0]!.payload(1, 0)) as Record<string, unknown>;
    assert.is(rows(body)[0]!['up'], v);
    assert.is(
      parts[0]!.payload(1, 0).length - zero[0]!.payload(1, 0).length,
      width(v) - 1,
      `${v} in ${width(v)} bytes`,
    );
  }
  // The allotment (2^60) is reported as 2^53 - 1, a uint64.
  const body = decode(
    usageParts('msgpack', {
      router: 'r',
      at: 1,
      usage: [report(m, A, a.id, 0)],
      figuresInto: (id, out, slot) => m.figuresInto(id, 1, out, slot),
      maxPayload: 65536,
    })[0]!.payload(1, 0),
  ) as Record<string, unknown>;
  assert.is(rows(body)[0]!['allotment'], Number.MAX_SAFE_INTEGER);
  await m.close();
});

test.run();
