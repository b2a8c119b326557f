// tier: fast
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobmsgType, encodeBlobmsgTable, Status, UbusClient, UbusStatusError } from '../../src/ubus/index.ts';
import type { BlobmsgTable, UbusObjectHandle } from '../../src/ubus/index.ts';
import { busKinds, rejects, startBus, waitFor } from './client-bus.ts';
import type { TestBus } from './client-bus.ts';

const T = BlobmsgType;
const ALL_TYPES_POLICY = {
  str: T.STRING,
  uni: T.STRING,
  empty: T.STRING,
  i32: T.INT32,
  neg: T.INT32,
  i64: T.INT64,
  huge: T.INT64,
  hugeneg: T.INT64,
  dbl: T.DOUBLE,
  yes: T.BOOL,
  no: T.BOOL,
  nil: T.UNSPEC,
  list: T.ARRAY,
  tbl: T.TABLE,
  emptyList: T.ARRAY,
  emptyTbl: T.TABLE,
};
const ALL_TYPES: BlobmsgTable = {
  str: 'hello',
  uni: 'hé ☃ 😀 "q" \\ \n\t\u0001',
  empty: '',
  i32: 2147483647,
  neg: -2147483648,
  i64: 9007199254740991,
  huge: 9223372036854775807n,
  hugeneg: -9223372036854775808n,
  dbl: 1.5,
  yes: true,
  no: false,
  nil: null,
  list: [1, 'two', [3.25], { four: 4 }, null, true],
  tbl: { a: { b: { c: 'deep' } }, n: -1 },
  emptyList: [],
  emptyTbl: {},
};

for (const kind of busKinds('client.test.ts')) {
  const t = suite(`ubus client (${kind} broker)`);
  let bus: TestBus;
  let server: UbusClient;
  let caller: UbusClient;
  let obj: UbusObjectHandle;
  const seen: { args: BlobmsgTable; user?: string | undefined; callerId: number }[] = [];
  const warnings: Error[] = [];
  let release: (() => void) | undefined;
  let gate: Promise<void> = Promise.resolve();

  t.before(async () => {
    bus = await startBus(kind);
    server = await UbusClient.connect({ socketPath: bus.socketPath, timeoutMs: 2000 });
    server.on('warning', (e: Error) => warnings.push(e));
    caller = await UbusClient.connect({ socketPath: bus.socketPath, timeoutMs: 2000 });
    obj = await server.addObject({
      path: 'test.client',
      methods: {
        echo: {
          policy: ALL_TYPES_POLICY,
          handler: (args, ctx) => {
            seen.push({ args, user: ctx.user, callerId: ctx.callerId });
            return { data: args };
          },
        },
        strict: { policy: { mac: T.STRING, n: T.INT32 }, handler: (args) => ({ data: { got: args } }) },
        nopolicy: { handler: (args) => ({ data: args }) },
        denied: {
          handler: () => {
            throw Object.assign(new Error('no'), { ubusStatus: Status.PERMISSION_DENIED });
          },
        },
        boom: {
          handler: () => {
            throw new Error('handler bug');
          },
        },
        refuse: {
          handler: () => ({ status: Status.INVALID_ARGUMENT, data: { error: { code: 'ERR_X', message: 'bad mac' } } }),
        },
        nothing: { handler: () => undefined },
        // The bytes win over the table: a handler that encoded its reply already has it sent as it is.
        preencoded: { handler: () => ({ data: { n: 1 }, encoded: encodeBlobmsgTable({ n: 2, sent: 'as encoded' }) }) },
        multi: {
          handler: () => ({
            data: [
              { a: 1, same: 'first' },
              { b: 2, same: 'second' },
            ],
          }),
        },
        hang: { handler: () => new Promise<void>(() => undefined) },
        gated: {
          policy: { n: T.INT32 },
          handler: async (args) => {
            await gate;
            return { data: { n: args.n ?? null } };
          },
        },
        open: {
          handler: () => {
            release?.();
            return { data: { opened: true } };
          },
        },
        delay: {
          policy: { n: T.INT32, ms: T.INT32 },
          handler: async (args) => {
            await new Promise((r) => setTimeout(r, Number(args.ms ?? 0)));
            return { data: { n: args.n ?? null } };
          },
        },
      },
    });
  });

  t.after(async () => {
    await caller.close();
    await server.close();
    await bus.cleanup();
  });

  t('HELLO gives each connection its own client id', () => {
    assert.ok(server.clientId >= 1024);
    assert.ok(caller.clientId >= 1024);
    assert.is.not(server.clientId, caller.clientId);
    assert.is(caller.state, 'ready');
  });

  t('call round-trips every blobmsg value type', async () => {
    const reply = await caller.call('test.client', 'echo', ALL_TYPES);
    assert.equal(reply, ALL_TYPES);
    const last = seen.at(-1)!;
    assert.is(last.callerId, caller.clientId);
    // ubusd adds the caller's account names; so does the embedded broker.
    assert.type(last.user, 'string');
  });

  t('lookup returns path, id, type id and the signature built from the policies', async () => {
    const [info] = await caller.lookup('test.client');
    assert.is(info!.path, 'test.client');
    assert.is(info!.id, obj.id);
    assert.ok(info!.typeId >= 1024);
    assert.equal(info!.signature.strict, { mac: T.STRING, n: T.INT32 });
    assert.equal(info!.signature.echo, ALL_TYPES_POLICY);
    assert.equal(info!.signature.nopolicy, {});
    assert.equal(
      (await caller.lookup('test.*')).map((o) => o.path),
      ['test.client'],
    );
    assert.ok((await caller.lookup()).some((o) => o.path === 'test.client'));
  });

  t('unknown arguments are dropped, type mismatches are not', async () => {
    const reply = await caller.call('test.client', 'strict', {
      mac: 42,
      n: 'seven',
      ubus_rpc_session: 'abc',
      extra: true,
    });
    assert.equal(reply, { got: { mac: 42, n: 'seven' } });
    const all = await caller.call('test.client', 'nopolicy', { ubus_rpc_session: 'abc', x: 1 });
    assert.equal(all, { ubus_rpc_session: 'abc', x: 1 });
  });

  t('errors carry the ubus status', async () => {
    const expectStatus = async (p: Promise<unknown>, status: number): Promise<UbusStatusError> => {
      try {
        await p;
      } catch (err) {
        assert.instance(err, UbusStatusError);
        const e = err as UbusStatusError;
        assert.is(e.code, 'ERR_UBUS_STATUS');
        assert.is(e.status, status);
        return e;
      }
      throw new Error(`expected status ${status}`);
    };
    await expectStatus(caller.call('test.client', 'denied'), Status.PERMISSION_DENIED);
    const before = warnings.length;
    await expectStatus(caller.call('test.client', 'boom'), Status.UNKNOWN_ERROR);
    assert.is(warnings.length, before + 1, 'a handler that throws is reported as a warning');
    await expectStatus(caller.call('test.client', 'no_such_method'), Status.METHOD_NOT_FOUND);
    await expectStatus(caller.call('no.such.object', 'x'), Status.NOT_FOUND);
    await expectStatus(caller.call(0x7fff_fff0, 'x'), Status.NOT_FOUND);
    const refused = await expectStatus(caller.call('test.client', 'refuse'), Status.INVALID_ARGUMENT);
    assert.equal(refused.replies, [{ error: { code: 'ERR_X', message: 'bad mac' } }]);
  });

  t('no DATA → undefined; several DATA → callAll gives each, call merges them', async () => {
    assert.is(await caller.call('test.client', 'nothing'), undefined);
    assert.equal(await caller.callAll('test.client', 'multi'), [
      { a: 1, same: 'first' },
      { b: 2, same: 'second' },
    ]);
    assert.equal(await caller.call('test.client', 'multi'), { a: 1, same: 'second', b: 2 });
  });

  t("a reply's encoded body is sent as it is, not encoded again from its table", async () => {
    assert.equal(await caller.callAll('test.client', 'preencoded'), [{ n: 2, sent: 'as encoded' }]);
  });

  t('a call whose handler never answers times out; the late reply is ignored', async () => {
    let opened!: () => void;
    gate = new Promise<void>((r) => (opened = r));
    try {
      await caller.call('test.client', 'gated', { n: 1 }, { timeoutMs: 50 });
      assert.unreachable('should time out');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_UBUS_TIMEOUT');
      assert.is((err as { status?: number }).status, Status.TIMEOUT);
    }
    opened(); // the handler now answers the timed-out call
    await caller.ping();
    assert.equal(await caller.call('test.client', 'gated', { n: 2 }), { n: 2 });
    await rejects(
      caller.call('test.client', 'hang', {}, { timeoutMs: 30 }),
      (e: { code?: string }) => e.code === 'ERR_UBUS_TIMEOUT',
    );
    gate = Promise.resolve();
  });

  t('deferred replies: a pending handler does not block other calls', async () => {
    const opened = new Promise<void>((r) => (release = r));
    let gateOpen!: () => void;
    gate = new Promise<void>((r) => (gateOpen = r));
    void opened.then(() => gateOpen());
    const waiting = caller.call('test.client', 'gated', { n: 7 });
    // Served while 'gated' is still pending on the same server connection.
    assert.equal(await caller.call('test.client', 'open'), { opened: true });
    assert.equal(await waiting, { n: 7 });
    gate = Promise.resolve();
  });

  t('many concurrent calls, to two objects, are matched to their own replies', async () => {
    const other = await server.addObject({
      path: 'test.other',
      methods: { id: { policy: { n: T.INT32 }, handler: (a) => ({ data: { from: 'other', n: a.n ?? null } }) } },
    });
    const calls: Promise<unknown>[] = [];
    const expected: unknown[] = [];
    for (let n = 0; n < 300; n++) {
      if (n % 3 === 0) {
        calls.push(caller.call('test.other', 'id', { n }));
        expected.push({ from: 'other', n });
      } else {
        calls.push(caller.call('test.client', 'delay', { n, ms: (n * 7) % 13 }));
        expected.push({ n });
      }
    }
    assert.equal(await Promise.all(calls), expected);
    await other.remove();
    await rejects(caller.call('test.other', 'id', {}), (e: { status?: number }) => e.status === Status.NOT_FOUND);
  });

  t('events: patterns match exactly or by prefix; remove() stops delivery', async () => {
    const got: [string, BlobmsgTable][] = [];
    const sub = await server.listen(['ev.a.*', 'ev.exact'], (type, data) => got.push([type, data]));
    await caller.send('ev.a.one', { n: 1 });
    await caller.send('ev.exact', { n: 2 });
    await caller.send('ev.exactly', { n: 3 });
    await caller.send('ev.b', { n: 4 });
    await caller.send('ev.a.two');
    await waitFor(() => got.length >= 3, 'events');
    await caller.ping();
    assert.equal(got, [
      ['ev.a.one', { n: 1 }],
      ['ev.exact', { n: 2 }],
      ['ev.a.two', {}],
    ]);
    await sub.remove();
    await caller.send('ev.a.three', { n: 5 });
    await caller.ping();
    await server.ping();
    assert.is(got.length, 3);
    await rejects(caller.send('ubus.reserved'), (e: { status?: number }) => e.status === Status.PERMISSION_DENIED);
  });

  t('subscribe/notify: the owner hears about subscribers, subscribers get notifications', async () => {
    const active: boolean[] = [];
    obj.on('subscribers', (a) => active.push(a));
    const got: [string, BlobmsgTable][] = [];
    const sub = await caller.subscribe('test.client', (type, data) => got.push([type, data]));
    await waitFor(() => active.length === 1, 'subscribers event');
    assert.equal(active, [true]);
    assert.ok(obj.subscriberCount >= 1);
    await obj.notify('tick', { n: 1 });
    assert.is(obj.subscriberCount, 1);
    await obj.notify('tock', { n: 2 }, { noReply: true });
    await waitFor(() => got.length === 2, 'notifications');
    assert.equal(got, [
      ['tick', { n: 1 }],
      ['tock', { n: 2 }],
    ]);
    await sub.remove();
    await waitFor(() => active.length === 2, 'subscribers gone');
    assert.equal(active, [true, false]);
    assert.is(obj.subscriberCount, 0);
  });

  t('a message over 1 MiB is refused locally and the connection stays usable', async () => {
    await rejects(
      caller.call('test.client', 'nopolicy', { blob: 'x'.repeat(1_100_000) }),
      (e: { code?: string; status?: number }) =>
        e.code === 'ERR_UBUS_MSG_TOO_LARGE' && e.status === Status.INVALID_ARGUMENT,
    );
    const big = 'y'.repeat(900_000);
    assert.equal(await caller.call('test.client', 'nopolicy', { big }), { big });
  });

  t('close() drains pending calls; destroy() aborts them; both idempotent', async () => {
    const c1 = await UbusClient.connect({ socketPath: bus.socketPath });
    const states: string[] = [];
    c1.on('state', (s: string) => states.push(s));
    const pending = c1.call('test.client', 'delay', { n: 9, ms: 50 });
    const closed = c1.close();
    await rejects(c1.ping(), (e: { code?: string }) => e.code === 'ERR_UBUS_CLOSED');
    assert.equal(await pending, { n: 9 });
    await closed;
    await c1.close();
    assert.is(c1.state, 'closed');
    assert.equal(states, ['closing', 'closed']);

    const c2 = await UbusClient.connect({ socketPath: bus.socketPath });
    const hanging = c2.call('test.client', 'hang');
    c2.destroy();
    c2.destroy();
    await rejects(hanging, (e: { code?: string }) => e.code === 'ERR_UBUS_CLOSED');
    assert.is(c2.state, 'closed');
  });

  t('a serving client that closes still sends the replies of its running handlers', async () => {
    const srv = await UbusClient.connect({ socketPath: bus.socketPath });
    let started!: () => void;
    const inHandler = new Promise<void>((r) => (started = r));
    await srv.addObject({
      path: 'test.closing',
      methods: {
        slow: {
          handler: async () => {
            started();
            await new Promise((r) => setTimeout(r, 30));
            return { data: { done: true } };
          },
        },
      },
    });
    const reply = caller.call('test.closing', 'slow');
    await inHandler;
    await srv.close();
    assert.equal(await reply, { done: true });
  });

  t.run();
}
