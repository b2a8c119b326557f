// tier: fast
/**
 * Replays the client side of a real ubusd session (capture-full.jsonl) against the embedded broker, connection by
 * connection in capture order, and checks every reply the real ubusd sent has a twin from ours: same type, seq,
 * attrs in the same order with the same values, with the random ids (client, object, type) mapped one to one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Attr,
  BlobmsgType,
  MsgType,
  UBUS_SYSTEM_OBJECT_MAX,
  UbusCodecError,
  decodeBlobmsgNodes,
  decodeMessage,
  decodeMonitor,
  encodeBlobmsgNodes,
  encodeMessage,
  readBlobAttrs,
} from '../../src/ubus/codec/index.ts';
import type { BlobmsgNode, UbusRawAttr } from '../../src/ubus/codec/index.ts';
import { loadCapture } from './codec-fixtures.ts';
import { RawClient, startBroker } from './broker-helpers.ts';

const ID_ATTRS: ReadonlySet<number> = new Set([Attr.OBJID, Attr.OBJTYPE, Attr.TARGET]);
/** blobmsg fields that carry ids in the captured traffic (event register `object`, ubus.object.* `id`). */
const ID_FIELDS: ReadonlySet<string> = new Set(['object', 'id']);

class IdMap {
  private readonly fwd = new Map<number, number>();
  private readonly back = new Map<number, number>();

  /** Captured id → ours; ids below 1024 are fixed (system objects, 0). */
  map(captured: number): number {
    if (captured < UBUS_SYSTEM_OBJECT_MAX) return captured;
    const v = this.fwd.get(captured);
    if (v === undefined) throw new Error(`captured id ${captured.toString(16)} has no counterpart yet`);
    return v;
  }

  /** Checks (or learns, on first sight) that our `actual` corresponds to the captured id. */
  match(captured: number, actual: number, where: string): void {
    if (captured < UBUS_SYSTEM_OBJECT_MAX) {
      assert.is(actual, captured, where);
      return;
    }
    const known = this.fwd.get(captured);
    if (known !== undefined) {
      assert.is(actual.toString(16), known.toString(16), where);
      return;
    }
    assert.ok(actual >= UBUS_SYSTEM_OBJECT_MAX, `${where}: our id ${actual} is below 1024`);
    assert.not.ok(
      this.back.has(actual),
      `${where}: our id ${actual.toString(16)} already stands for another captured id`,
    );
    this.fwd.set(captured, actual);
    this.back.set(actual, captured);
  }
}

function tryNodes(body: Uint8Array): BlobmsgNode[] | undefined {
  try {
    return decodeBlobmsgNodes(body);
  } catch (e) {
    if (e instanceof UbusCodecError) return undefined;
    throw e;
  }
}

function u32(b: Uint8Array): number {
  return Buffer.from(b).readUInt32BE(0);
}

function mapNodes(nodes: BlobmsgNode[], ids: IdMap): BlobmsgNode[] {
  return nodes.map((n) => {
    if (n.children) return { ...n, children: mapNodes(n.children, ids) };
    if (n.type === BlobmsgType.INT32 && ID_FIELDS.has(n.name) && n.payload) {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(ids.map(u32(n.payload)));
      return { ...n, payload: p, value: p.readInt32BE(0) };
    }
    return n;
  });
}

/** A captured client frame with our ids substituted. */
function substitute(hex: string, ids: IdMap): Buffer {
  const m = decodeMessage(Buffer.from(hex, 'hex'));
  const rawAttrs: UbusRawAttr[] = (m.rawAttrs ?? []).map((a) => {
    if (ID_ATTRS.has(a.id) && a.payload.length === 4) {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(ids.map(u32(a.payload)));
      return { ...a, payload: p };
    }
    if (a.id === Attr.DATA) {
      const nodes = tryNodes(a.payload);
      if (nodes) return { ...a, payload: encodeBlobmsgNodes(mapNodes(nodes, ids)) };
    }
    return a;
  });
  return encodeMessage({
    type: m.type,
    seq: m.seq,
    peer: ids.map(m.peer),
    version: m.version ?? 0,
    attrs: {},
    rawAttrs,
  });
}

function compareNodes(want: BlobmsgNode[], got: BlobmsgNode[], ids: IdMap, where: string): void {
  assert.equal(
    got.map((n) => `${n.name}:${n.type}`),
    want.map((n) => `${n.name}:${n.type}`),
    `${where}: blobmsg shape`,
  );
  want.forEach((w, i) => {
    const g = got[i]!;
    if (w.children) compareNodes(w.children, g.children ?? [], ids, `${where}.${w.name}`);
    else if (w.type === BlobmsgType.INT32 && ID_FIELDS.has(w.name))
      ids.match(u32(w.payload!), u32(g.payload!), `${where}.${w.name}`);
    else
      assert.is(Buffer.from(g.payload!).toString('hex'), Buffer.from(w.payload!).toString('hex'), `${where}.${w.name}`);
  });
}

function compareAttrs(want: UbusRawAttr[], got: UbusRawAttr[], ids: IdMap, where: string): void {
  assert.equal(
    got.map((a) => a.id),
    want.map((a) => a.id),
    `${where}: attr ids in order`,
  );
  want.forEach((w, i) => {
    const g = got[i]!;
    const at = `${where} attr ${w.id}`;
    if (ID_ATTRS.has(w.id)) ids.match(u32(w.payload), u32(g.payload), at);
    else if (w.id === Attr.SUBSCRIBERS) {
      const list = (b: Uint8Array): number[] =>
        readBlobAttrs(b, 0, b.length).map((x) => u32(b.subarray(x.payloadStart)));
      const wl = list(w.payload);
      const gl = list(g.payload);
      assert.is(gl.length, wl.length, at);
      wl.forEach((id, k) => ids.match(id, gl[k]!, at));
    } else if (w.id === Attr.DATA && tryNodes(w.payload))
      compareNodes(tryNodes(w.payload)!, tryNodes(g.payload) ?? [], ids, at);
    else assert.is(Buffer.from(g.payload).toString('hex'), Buffer.from(w.payload).toString('hex'), at);
  });
}

function compareFrames(wantHex: string, got: Buffer, ids: IdMap, where: string): void {
  const want = decodeMessage(Buffer.from(wantHex, 'hex'));
  const g = decodeMessage(got);
  assert.is(g.type, want.type, `${where}: type`);
  assert.is(g.seq, want.seq, `${where}: seq`);
  ids.match(want.peer, g.peer, `${where}: peer`);
  if (want.type !== MsgType.MONITOR) {
    compareAttrs(want.rawAttrs ?? [], g.rawAttrs ?? [], ids, where);
    return;
  }
  const w = decodeMonitor(want);
  const m = decodeMonitor(g);
  ids.match(w.client, m.client, `${where}: monitor client`);
  ids.match(w.peer, m.peer, `${where}: monitor peer`);
  assert.equal([m.seq, m.type, m.send], [w.seq, w.type, w.send], `${where}: monitor seq/type/send`);
  const attrsOf = (b: Uint8Array): UbusRawAttr[] =>
    readBlobAttrs(b, 0, b.length).map((x) => ({ id: x.id, payload: b.subarray(x.payloadStart, x.payloadEnd) }));
  compareAttrs(attrsOf(w.data), attrsOf(m.data), ids, `${where}: monitored`);
}

test('the captured ubusd session replays against the embedded broker with the same replies', async () => {
  const tb = await startBroker();
  const conns = new Map<number, RawClient>();
  const ids = new IdMap();
  let checked = 0;
  try {
    let line = 0;
    for (const entry of loadCapture()) {
      line++;
      if ('mark' in entry) {
        // After "done" the capture only holds traffic of a client that bypassed the recording proxy.
        if (entry.mark === 'done') break;
        continue;
      }
      const where = `capture line ${line} (conn ${entry.conn})`;
      if ('event' in entry) {
        if (entry.event === 'connect') conns.set(entry.conn, RawClient.open(tb.path));
        else if (entry.event === 'eof') conns.get(entry.conn)!.socket.end();
        continue;
      }
      const c = conns.get(entry.conn)!;
      if (entry.direction === 'client->ubusd') c.sendRaw(substitute(entry.hex, ids));
      else {
        compareFrames(entry.hex, await c.nextFrame(), ids, where);
        checked++;
      }
    }
    assert.ok(checked > 90, `checked ${checked} broker frames`);
    // Nothing extra: a PING round trip on a fresh client, then no connection holds an unexpected frame.
    const probe = await RawClient.connect(tb.path);
    await probe.request(MsgType.PING, {});
    for (const [n, c] of conns) assert.is(c.pending, 0, `unexpected extra frame on conn ${n}`);
    probe.close();
  } finally {
    for (const c of conns.values()) c.close();
    await tb.stop();
  }
});

test.run();
