// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Attr, BlobmsgType, MsgType, Status, decodeMonitor, encodeBlobmsgTable } from '../../src/ubus/codec/index.ts';
import type { UbusMessage } from '../../src/ubus/codec/index.ts';
import { RawClient, startBroker } from './broker-helpers.ts';
import type { TestBroker } from './broker-helpers.ts';

let tb: TestBroker;
const open: RawClient[] = [];
async function client(): Promise<RawClient> {
  const c = await RawClient.connect(tb.path);
  open.push(c);
  return c;
}
test.before.each(async () => {
  tb = await startBroker();
});
test.after.each(async () => {
  for (const c of open.splice(0)) c.close();
  await tb.stop();
});

const ids = (m: UbusMessage): number[] => (m.rawAttrs ?? []).map((a) => a.id);

async function addObject(
  c: RawClient,
  path?: string,
  signature: Record<string, Record<string, number>> = { hello: { name: BlobmsgType.STRING } },
) {
  const r = await c.request(MsgType.ADD_OBJECT, path === undefined ? {} : { objpath: path, signature });
  assert.is(r.status.attrs.status, Status.OK, `add ${path ?? '(anonymous)'}`);
  return r.data[0]!.attrs;
}

async function listen(c: RawClient, pattern: string, obj?: number): Promise<number> {
  const id = obj ?? (await addObject(c)).objid!;
  const r = await c.request(
    MsgType.INVOKE,
    {
      objid: 1,
      method: 'register',
      dataRaw: encodeBlobmsgTable({ object: id, pattern }, { object: BlobmsgType.INT32 }),
    },
    1,
  );
  assert.is(r.status.attrs.status, Status.OK, `register ${pattern}`);
  return id;
}

async function sendEvent(c: RawClient, id: string, data: Record<string, string | number>): Promise<number> {
  const r = await c.request(MsgType.INVOKE, { objid: 1, method: 'send', data: { id, data } }, 1);
  return r.status.attrs.status!;
}

test('HELLO gives a random client id >= 1024, distinct per connection', async () => {
  const a = await client();
  const b = await client();
  assert.ok(a.id >= 1024 && b.id >= 1024);
  assert.is.not(a.id, b.id);
});

test('PING is echoed as DATA, then STATUS 0', async () => {
  const c = await client();
  const r = await c.request(MsgType.PING, { data: { x: 1 } });
  assert.is(r.data.length, 1);
  assert.equal(r.data[0]!.attrs.data, { x: 1 });
  assert.is(r.status.attrs.status, 0);
});

test('unknown, HELLO and MONITOR message types → STATUS INVALID_COMMAND with the request seq and peer', async () => {
  const c = await client();
  for (const type of [MsgType.HELLO, MsgType.MONITOR, 12, 200]) {
    const r = await c.request(type, {}, 77);
    assert.is(r.status.attrs.status, Status.INVALID_COMMAND, `type ${type}`);
    assert.is(r.status.peer, 77);
  }
});

test('ADD_OBJECT / LOOKUP: path order, exact, prefix, all, errors, duplicates, OBJTYPE reuse', async () => {
  const c = await client();
  const b = await addObject(c, 'b.two');
  const a = await addObject(c, 'a.one');
  await addObject(c, 'b.one');
  assert.ok(a.objid! >= 1024 && a.objtype! >= 1024 && a.objtype !== b.objtype);
  const all = await c.request(MsgType.LOOKUP, {});
  assert.equal(
    all.data.map((d) => d.attrs.objpath),
    ['a.one', 'b.one', 'b.two'],
  );
  assert.equal(ids(all.data[0]!), [Attr.OBJPATH, Attr.OBJID, Attr.OBJTYPE, Attr.SIGNATURE]);
  assert.equal(all.data[0]!.attrs.signature, { hello: { name: BlobmsgType.STRING } });
  assert.equal(
    (await c.request(MsgType.LOOKUP, { objpath: 'b.*' })).data.map((d) => d.attrs.objpath),
    ['b.one', 'b.two'],
  );
  assert.equal((await c.request(MsgType.LOOKUP, { objpath: '*' })).data.length, 3);
  const exact = await c.request(MsgType.LOOKUP, { objpath: 'a.one' });
  assert.equal([exact.data.length, exact.data[0]!.attrs.objid, exact.status.attrs.status], [1, a.objid, 0]);
  assert.is((await c.request(MsgType.LOOKUP, { objpath: 'nope' })).status.attrs.status, Status.NOT_FOUND);
  assert.is((await c.request(MsgType.LOOKUP, { objpath: 'c.*' })).status.attrs.status, Status.NOT_FOUND);
  assert.is((await c.request(MsgType.LOOKUP, { objpath: '' })).status.attrs.status, Status.INVALID_ARGUMENT);
  assert.is(
    (await c.request(MsgType.ADD_OBJECT, { objpath: 'a.one', signature: {} })).status.attrs.status,
    Status.INVALID_ARGUMENT,
  );
  // Reusing a type: the reply has no OBJTYPE (ubusd reports it only for a SIGNATURE), lookup shows the shared type.
  const reuse = await c.request(MsgType.ADD_OBJECT, { objpath: 'a.two', objtype: a.objtype! });
  assert.equal(ids(reuse.data[0]!), [Attr.OBJID]);
  assert.is((await c.request(MsgType.LOOKUP, { objpath: 'a.two' })).data[0]!.attrs.objtype, a.objtype);
});

test('an object with a bad signature is created without a type: invisible to LOOKUP, still invokable', async () => {
  const server = await client();
  const caller = await client();
  // A method entry that is not a named blobmsg element (plain attr).
  const r = await server.request(MsgType.ADD_OBJECT, {
    objpath: 'weird',
    signatureRaw: Buffer.from('0100000800000000', 'hex'),
  });
  assert.is(r.status.attrs.status, 0);
  assert.equal(ids(r.data[0]!), [Attr.OBJID]);
  const lk = await caller.request(MsgType.LOOKUP, { objpath: 'weird' });
  assert.equal([lk.data.length, lk.status.attrs.status], [0, 0]);
  caller.send(MsgType.INVOKE, { objid: r.data[0]!.attrs.objid!, method: 'x', data: {} }, r.data[0]!.attrs.objid!);
  assert.is((await server.next()).type, MsgType.INVOKE);
});

test('INVOKE is forwarded with the caller id as peer; replies come back with peer = object id', async () => {
  const server = await client();
  const caller = await client();
  const { objid } = await addObject(server, 'demo');
  const seq = caller.send(MsgType.INVOKE, { objid: objid!, method: 'hello', data: { name: 'x' } }, objid!);
  const fwd = await server.next();
  assert.equal([fwd.type, fwd.seq, fwd.peer], [MsgType.INVOKE, seq, caller.id]);
  assert.equal(ids(fwd), [Attr.OBJID, Attr.METHOD, Attr.USER, Attr.GROUP, Attr.DATA]);
  assert.equal([fwd.attrs.objid, fwd.attrs.method, fwd.attrs.user, fwd.attrs.group], [objid, 'hello', 'root', 'root']);
  assert.equal(fwd.attrs.data, { name: 'x' });
  // Dropped by the broker: DATA without DATA attr, a reply for an object the sender does not own, STATUS without
  // STATUS.
  server.send(MsgType.DATA, { objid: objid! }, caller.id, seq);
  server.send(MsgType.DATA, { objid: 12345, data: { bad: 1 } }, caller.id, seq);
  server.send(MsgType.STATUS, { objid: objid! }, caller.id, seq);
  server.send(MsgType.DATA, { objid: objid!, data: { a: 1 } }, caller.id, seq);
  server.send(MsgType.DATA, { objid: objid!, data: { a: 2 } }, caller.id, seq);
  server.send(MsgType.STATUS, { status: 0, objid: objid! }, caller.id, seq);
  const got = [await caller.next(), await caller.next(), await caller.next()];
  assert.equal(
    got.map((m) => [m.type, m.seq, m.peer]),
    [
      [MsgType.DATA, seq, objid],
      [MsgType.DATA, seq, objid],
      [MsgType.STATUS, seq, objid],
    ],
  );
  assert.equal(
    got.map((m) => m.attrs.data ?? m.attrs.status),
    [{ a: 1 }, { a: 2 }, 0],
  );
  assert.equal(ids(got[2]!), [Attr.STATUS, Attr.OBJID]);
});

test('INVOKE errors: unknown object → 4, missing METHOD → 2, unknown system method → 1', async () => {
  const c = await client();
  assert.is(
    (await c.request(MsgType.INVOKE, { objid: 99999, method: 'x', data: {} }, 99999)).status.attrs.status,
    Status.NOT_FOUND,
  );
  assert.is(
    (await c.request(MsgType.INVOKE, { objid: 99999, data: {} }, 99999)).status.attrs.status,
    Status.INVALID_ARGUMENT,
  );
  assert.is(
    (await c.request(MsgType.INVOKE, { objid: 1, method: 'nope', data: {} }, 1)).status.attrs.status,
    Status.INVALID_COMMAND,
  );
});

test('REMOVE_OBJECT: own objects only; reply carries OBJTYPE when the type goes too', async () => {
  const owner = await client();
  const other = await client();
  const a = await addObject(owner, 'x.a');
  await owner.request(MsgType.ADD_OBJECT, { objpath: 'x.b', objtype: a.objtype! });
  assert.is(
    (await other.request(MsgType.REMOVE_OBJECT, { objid: a.objid! })).status.attrs.status,
    Status.PERMISSION_DENIED,
  );
  assert.is((await other.request(MsgType.REMOVE_OBJECT, { objid: 4242 })).status.attrs.status, Status.NOT_FOUND);
  assert.is((await other.request(MsgType.REMOVE_OBJECT, {})).status.attrs.status, Status.INVALID_ARGUMENT);
  const r1 = await owner.request(MsgType.REMOVE_OBJECT, { objid: a.objid! });
  assert.equal(ids(r1.data[0]!), [Attr.OBJID], 'type still used by x.b');
  const b = (await owner.request(MsgType.LOOKUP, { objpath: 'x.b' })).data[0]!.attrs;
  const r2 = await owner.request(MsgType.REMOVE_OBJECT, { objid: b.objid! });
  assert.equal([r2.data[0]!.attrs.objid, r2.data[0]!.attrs.objtype], [b.objid, a.objtype]);
  assert.is((await owner.request(MsgType.LOOKUP, { objpath: 'x.*' })).status.attrs.status, Status.NOT_FOUND);
});

test(
  'events: exact, prefix and * patterns; once per ' + 'object; never to the sender; seq is a global counter',
  async () => {
    const l1 = await client();
    const l2 = await client();
    const sender = await client();
    const exact = await listen(l1, 'demo.event');
    await listen(l1, 'demo.*', exact); // second matching pattern on the same object: still one delivery
    const prefix = await listen(l1, 'demo.*');
    const all = await listen(l2, '*');
    const senderObj = await listen(sender, 'demo.*');
    assert.is(await sendEvent(sender, 'demo.event', { a: 1 }), 0);
    const got1 = [await l1.next(), await l1.next()];
    const got2 = await l2.next();
    assert.equal(new Set(got1.map((m) => m.attrs.objid)), new Set([exact, prefix]));
    assert.is(got2.attrs.objid, all);
    for (const m of [...got1, got2]) {
      assert.equal([m.type, m.peer, m.attrs.method], [MsgType.INVOKE, 0, 'demo.event']);
      assert.equal(ids(m), [Attr.OBJID, Attr.METHOD, Attr.DATA]);
      assert.equal(m.attrs.data, { a: 1 });
    }
    assert.equal([...got1, got2].map((m) => m.seq).sort(), [1, 2, 3]);
    assert.is(await sendEvent(sender, 'demo', { b: 2 }), 0); // "demo" does not match "demo.*" nor "demo.event"
    assert.is((await l2.next()).attrs.method, 'demo');
    assert.is(await sendEvent(l2, 'other', {}), 0); // only l2 listens to it, and l2 sent it
    await l1.request(MsgType.PING, {});
    await l2.request(MsgType.PING, {});
    assert.equal([l1.pending, l2.pending, sender.pending], [0, 0, 0]);
    assert.ok(senderObj >= 1024);
  },
);

test('event register/send errors', async () => {
  const c = await client();
  const other = await client();
  const { objid } = await addObject(c);
  const otherObj = (await addObject(other)).objid!;
  const reg = async (
    data: Record<string, string | number>,
    policy: Record<string, number> = { object: BlobmsgType.INT32 },
  ) =>
    (await c.request(MsgType.INVOKE, { objid: 1, method: 'register', dataRaw: encodeBlobmsgTable(data, policy) }, 1))
      .status.attrs.status;
  assert.is(await reg({ pattern: 'x' }), Status.INVALID_ARGUMENT);
  assert.is(
    await reg({ object: objid!, pattern: 'x' }, { object: BlobmsgType.INT64 }),
    Status.INVALID_ARGUMENT,
    'INT64 object id is refused like ubusd',
  );
  assert.is(await reg({ object: 5, pattern: 'x' }), Status.PERMISSION_DENIED);
  assert.is(await reg({ object: 99999, pattern: 'x' }), Status.NOT_FOUND);
  assert.is(await reg({ object: otherObj, pattern: 'x' }), Status.PERMISSION_DENIED);
  assert.is(await reg({ object: objid!, pattern: '' }), Status.PERMISSION_DENIED);
  assert.is(
    (await c.request(MsgType.INVOKE, { objid: 1, method: 'register' }, 1)).status.attrs.status,
    Status.INVALID_ARGUMENT,
  );
  assert.is(await sendEvent(c, 'ubus.object.add', {}), Status.PERMISSION_DENIED);
  const bad = await c.request(MsgType.INVOKE, { objid: 1, method: 'send', data: { id: 'x', data: 'not a table' } }, 1);
  assert.is(bad.status.attrs.status, Status.INVALID_ARGUMENT);
});

test('ubus.object.add / ubus.object.remove events, including on disconnect', async () => {
  const l = await client();
  await listen(l, 'ubus.object.*');
  const owner = await client();
  const { objid } = await addObject(owner, 'svc');
  const add = await l.next();
  assert.equal([add.attrs.method, add.attrs.data], ['ubus.object.add', { id: objid! | 0, path: 'svc' }]);
  owner.close();
  const rm = await l.next();
  assert.equal([rm.attrs.method, rm.attrs.data], ['ubus.object.remove', { id: objid! | 0, path: 'svc' }]);
  assert.is((await l.request(MsgType.LOOKUP, { objpath: 'svc' })).status.attrs.status, Status.NOT_FOUND);
});

test(
  'subscribe/notify: ACTIVE to the owner, SUBSCRIBERS in ' + 'the STATUS, INVOKE to subscribers, replies to the owner',
  async () => {
    const owner = await client();
    const sub = await client();
    const { objid: target } = await addObject(owner, 'notifier');
    const { objid: s } = await addObject(sub);
    assert.is((await sub.request(MsgType.SUBSCRIBE, { objid: s!, target: target! })).status.attrs.status, 0);
    const active = await owner.next();
    assert.equal(
      [active.type, active.peer, active.attrs.objid, active.attrs.active],
      [MsgType.NOTIFY, 0, target, true],
    );
    assert.equal(ids(active), [Attr.OBJID, Attr.ACTIVE]);

    const seq = owner.send(MsgType.NOTIFY, { objid: target!, method: 'fired', data: { n: 1 } }, target!);
    const st = await owner.next();
    assert.equal(
      [st.type, st.seq, st.peer, st.attrs.subscribers, st.attrs.status],
      [MsgType.STATUS, seq, target, [s], 0],
    );
    assert.equal(ids(st), [Attr.OBJID, Attr.SUBSCRIBERS, Attr.STATUS]);
    const inv = await sub.next();
    assert.equal(
      [inv.type, inv.seq, inv.peer, inv.attrs.objid, inv.attrs.method],
      [MsgType.INVOKE, seq, owner.id, s, 'fired'],
    );
    assert.equal(ids(inv), [Attr.OBJID, Attr.METHOD, Attr.USER, Attr.GROUP, Attr.DATA]);
    sub.send(MsgType.STATUS, { status: 0, objid: s! }, owner.id, seq);
    const back = await owner.next();
    assert.equal([back.type, back.seq, back.peer, back.attrs.objid], [MsgType.STATUS, seq, s, s]);

    // NO_REPLY: no STATUS for the owner, and the forwarded INVOKE starts with NO_REPLY.
    owner.send(MsgType.NOTIFY, { objid: target!, method: 'quiet', noReply: true, data: {} }, target!);
    const q = await sub.next();
    assert.equal(ids(q), [Attr.NO_REPLY, Attr.OBJID, Attr.METHOD, Attr.USER, Attr.GROUP, Attr.DATA]);
    assert.is(q.attrs.noReply, true);
    await owner.request(MsgType.PING, {});
    assert.is(owner.pending, 0);

    assert.is((await sub.request(MsgType.UNSUBSCRIBE, { objid: s!, target: target! })).status.attrs.status, 0);
    const inactive = await owner.next();
    assert.equal([inactive.type, inactive.attrs.active], [MsgType.NOTIFY, false]);
    assert.is(
      (await sub.request(MsgType.UNSUBSCRIBE, { objid: s!, target: target! })).status.attrs.status,
      Status.NOT_FOUND,
    );
  },
);

test('subscribe errors and NOTIFY permission', async () => {
  const owner = await client();
  const other = await client();
  const { objid: target } = await addObject(owner, 'n');
  const { objid: own } = await addObject(owner);
  const { objid: s } = await addObject(other);
  assert.is(
    (await owner.request(MsgType.SUBSCRIBE, { objid: own!, target: target! })).status.attrs.status,
    Status.INVALID_ARGUMENT,
    'own target',
  );
  assert.is(
    (await other.request(MsgType.SUBSCRIBE, { objid: s!, target: 777777 })).status.attrs.status,
    Status.NOT_FOUND,
  );
  assert.is(
    (await other.request(MsgType.SUBSCRIBE, { objid: own!, target: target! })).status.attrs.status,
    Status.INVALID_ARGUMENT,
    'not my subscriber',
  );
  assert.is((await other.request(MsgType.SUBSCRIBE, { objid: s! })).status.attrs.status, Status.INVALID_ARGUMENT);
  assert.is(
    (await other.request(MsgType.NOTIFY, { objid: target!, method: 'x' }, target!)).status.attrs.status,
    Status.PERMISSION_DENIED,
  );
});

test('removing a subscribed object sends UNSUBSCRIBE to each subscriber', async () => {
  const owner = await client();
  const sub = await client();
  const { objid: target } = await addObject(owner, 'going');
  const { objid: s } = await addObject(sub);
  await sub.request(MsgType.SUBSCRIBE, { objid: s!, target: target! });
  await owner.next(); // ACTIVE
  await owner.request(MsgType.REMOVE_OBJECT, { objid: target! });
  const u = await sub.next();
  assert.equal([u.type, u.peer, u.attrs.objid, u.attrs.target], [MsgType.UNSUBSCRIBE, 0, s, target]);
  assert.equal(ids(u), [Attr.OBJID, Attr.TARGET]);
});

test('a header claiming 2 MiB disconnects that client only', async () => {
  const bad = await client();
  const good = await client();
  bad.sendRaw(Buffer.from('000300010000000000200004', 'hex'));
  await bad.waitClosed();
  assert.is((await good.request(MsgType.PING, {})).status.attrs.status, 0);
  assert.is(tb.broker.clientCount, 1);
});

test('a blob length below 4 and plain garbage bytes disconnect the client', async () => {
  const a = await client();
  a.sendRaw(Buffer.from('000300010000000000000002', 'hex'));
  await a.waitClosed();
  const b = await client();
  b.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await b.waitClosed();
  assert.is((await (await client()).request(MsgType.PING, {})).status.attrs.status, 0);
});

test('well-framed messages with malformed attrs get INVALID_ARGUMENT and the client stays', async () => {
  const c = await client();
  // LOOKUP whose OBJPATH lacks its NUL terminator.
  const frame = Buffer.from('00040009000000000000000c0200000861626364', 'hex');
  c.sendRaw(frame);
  const st = await c.next();
  assert.equal([st.type, st.seq, st.attrs.status], [MsgType.STATUS, 9, Status.INVALID_ARGUMENT]);
  assert.is((await c.request(MsgType.PING, {})).status.attrs.status, 0);
});

test('a client that half-closes after its request still gets the replies', async () => {
  const c = await client();
  for (let i = 0; i < 5; i++) await addObject(c, `obj.${i}`);
  const seq = c.send(MsgType.LOOKUP, {});
  c.socket.end();
  const got: UbusMessage[] = [];
  for (let i = 0; i < 6; i++) got.push(await c.next());
  assert.equal(
    got.map((m) => [m.type, m.seq]),
    [...Array(5).fill([MsgType.DATA, seq]), [MsgType.STATUS, seq]],
  );
  await c.waitClosed();
});

test('a client that disconnects mid-call: the late reply is dropped, nothing breaks', async () => {
  const server = await client();
  const caller = await client();
  const { objid } = await addObject(server, 'slow');
  caller.send(MsgType.INVOKE, { objid: objid!, method: 'hello', data: {} }, objid!);
  const inv = await server.next();
  caller.close();
  await new Promise((r) => setTimeout(r, 20));
  server.send(MsgType.STATUS, { status: 0, objid: objid! }, inv.peer, inv.seq);
  assert.is((await server.request(MsgType.PING, {})).status.attrs.status, 0);
});

test('1000 random frames from several clients do not crash the broker', async () => {
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const clients = [await client(), await client(), await client()];
  const { objid } = await addObject(clients[0]!, 'target');
  for (let i = 0; i < 1000; i++) {
    const body = Buffer.from(Array.from({ length: Math.floor(rnd() * 40) * 4 }, () => Math.floor(rnd() * 256)));
    // a plausible first attr
    if (rnd() < 0.5 && body.length >= 8) body.writeUInt32BE(((Math.floor(rnd() * 14) << 24) | 8) >>> 0, 0);
    const hdr = Buffer.alloc(12);
    hdr[1] = Math.floor(rnd() * 14);
    hdr.writeUInt16BE(Math.floor(rnd() * 65536), 2);
    hdr.writeUInt32BE(rnd() < 0.3 ? objid! : rnd() < 0.5 ? 1 : Math.floor(rnd() * 2 ** 32), 4);
    hdr.writeUInt32BE(4 + body.length, 8);
    const c = clients[i % clients.length]!;
    if (!c.ended) c.sendRaw(Buffer.concat([hdr, body]));
  }
  const probe = await client();
  assert.is((await probe.request(MsgType.PING, {})).status.attrs.status, 0);
  assert.ok((await probe.request(MsgType.LOOKUP, {})).status.attrs.status === 0);
});

test('monitor: copies of received and sent frames to a monitor client', async () => {
  const mon = await client();
  const r = await mon.request(MsgType.INVOKE, { objid: 3, method: 'add', data: {} }, 3);
  assert.is(r.status.attrs.status, 0);
  const c = await client();
  await c.request(MsgType.PING, {});
  await mon.request(MsgType.INVOKE, { objid: 3, method: 'remove', data: {} }, 3);
  const records = [];
  while (mon.pending > 0) {
    const m = await mon.next();
    if (m.type === MsgType.MONITOR) records.push({ ...decodeMonitor(m), frameSeq: m.seq });
  }
  assert.equal(
    records.map((x) => x.frameSeq),
    records.map((_, i) => i + 1),
    'per-monitor counter',
  );
  const aboutC = records.filter((x) => x.client === c.id).map((x) => [x.type, x.send]);
  assert.equal(aboutC, [
    [MsgType.HELLO, true],
    [MsgType.PING, false],
    [MsgType.DATA, true],
    [MsgType.STATUS, true],
  ]);
  const removeSeen = records.filter((x) => x.client === mon.id && !x.send).length;
  assert.is(removeSeen, 1, 'the remove request itself is still copied, nothing after it');
});

test('monitor is refused when not allowed (ubusd: root only)', async () => {
  await tb.stop();
  tb = await startBroker({ allowMonitor: false });
  const c = await client();
  assert.is(
    (await c.request(MsgType.INVOKE, { objid: 3, method: 'add', data: {} }, 3)).status.attrs.status,
    Status.PERMISSION_DENIED,
  );
});

test.run();
