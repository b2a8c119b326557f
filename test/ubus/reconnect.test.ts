// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Status, UbusClient } from '../../src/ubus/index.ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';
import { busKinds, rejects, startBus, waitFor } from './client-bus.ts';

for (const kind of busKinds('reconnect.test.ts')) {
  test(`${kind}: after the broker restarts, objects, listeners and subscriptions are registered again`, async () => {
    const bus = await startBus(kind);
    const reconnect = { minDelayMs: 10, maxDelayMs: 80 };
    const svc = await UbusClient.connect({ socketPath: bus.socketPath, reconnect, timeoutMs: 30_000 });
    const pub = await UbusClient.connect({ socketPath: bus.socketPath, reconnect });
    const caller = await UbusClient.connect({ socketPath: bus.socketPath });
    const clients = [svc, pub, caller];
    try {
      let hanging = 0;
      const states: string[] = [];
      svc.on('state', (s: string) => states.push(s));
      const obj = await svc.addObject({
        path: 'rc.svc',
        methods: {
          who: { handler: () => ({ data: { client: svc.clientId } }) },
          hang: {
            handler: () => {
              hanging++;
              return new Promise<void>(() => undefined);
            },
          },
        },
      });
      const published = await pub.addObject({ path: 'rc.pub', methods: {} });
      const events: [string, BlobmsgTable][] = [];
      await svc.listen('rc.*', (type, data) => events.push([type, data]));
      const notes: [string, BlobmsgTable][] = [];
      await svc.subscribe('rc.pub', (type, data) => notes.push([type, data]));

      const firstClient = svc.clientId;
      const firstObjectId = obj.id;
      assert.equal(await caller.call('rc.svc', 'who'), { client: firstClient });

      // Requests in flight when the socket drops fail with ERR_UBUS_DISCONNECTED (timeouts are 30 s: no waiting).
      const inFlight = rejects(svc.call('rc.svc', 'hang'), (e) => e.code === 'ERR_UBUS_DISCONNECTED');
      const callerInFlight = rejects(caller.call('rc.svc', 'hang'), (e) => e.code === 'ERR_UBUS_DISCONNECTED');
      await waitFor(() => hanging === 2, 'both calls reached the handler');
      await bus.stop();
      await inFlight;
      await callerInFlight;
      await waitFor(() => svc.state === 'reconnecting', 'reconnecting');
      // While disconnected, new calls fail fast too.
      await rejects(svc.call('rc.svc', 'who'), (e) => e.code === 'ERR_UBUS_DISCONNECTED');
      await rejects(svc.ping(), (e) => e.code === 'ERR_UBUS_DISCONNECTED');
      // Without `reconnect` the client just ends.
      await waitFor(() => caller.state === 'closed', 'caller closed');
      await rejects(caller.ping(), (e) => e.code === 'ERR_UBUS_DISCONNECTED');

      await bus.start();
      await waitFor(() => svc.state === 'ready' && pub.state === 'ready', 'both ready again');
      assert.equal(states.slice(0, 2), ['reconnecting', 'ready']);
      assert.is.not(svc.clientId, firstClient);

      const caller2 = await UbusClient.connect({ socketPath: bus.socketPath });
      clients.push(caller2);
      const [info] = await caller2.lookup('rc.svc');
      assert.is(info!.id, obj.id, 'the handle follows the new object id');
      assert.ok(obj.id !== firstObjectId || kind === 'embedded');
      assert.equal(await caller2.call('rc.svc', 'who'), { client: svc.clientId });
      // The cached id from before the restart is stale: call() looks the path up again.
      assert.equal(await svc.call('rc.svc', 'who'), { client: svc.clientId });

      await caller2.send('rc.ping', { n: 1 });
      await waitFor(() => events.length === 1, 'event after reconnect');
      assert.equal(events, [['rc.ping', { n: 1 }]]);

      // The subscription comes back whichever of svc and pub re-registered first.
      await waitFor(() => published.subscriberCount > 0, 'subscriber re-attached');
      await published.notify('tick', { n: 2 });
      await waitFor(() => notes.length === 1, 'notification after reconnect');
      assert.equal(notes, [['tick', { n: 2 }]]);
    } finally {
      for (const c of clients) c.destroy();
      await bus.cleanup();
    }
  });

  test(`${kind}: a subscription waits for its object to come back`, async () => {
    const bus = await startBus(kind);
    const owner = await UbusClient.connect({ socketPath: bus.socketPath });
    const sub = await UbusClient.connect({ socketPath: bus.socketPath });
    try {
      await rejects(
        sub.subscribe('rs.obj', () => undefined),
        (e) => e.status === Status.NOT_FOUND,
      );
      let obj = await owner.addObject({ path: 'rs.obj', methods: {} });
      const notes: string[] = [];
      const lifecycle: string[] = [];
      sub.on('unsubscribed', (p: string) => lifecycle.push(`unsubscribed ${p}`));
      sub.on('resubscribed', (p: string) => lifecycle.push(`resubscribed ${p}`));
      await sub.subscribe('rs.obj', (type) => notes.push(type));
      await obj.remove();
      await waitFor(() => lifecycle.length === 1, 'unsubscribed');
      obj = await owner.addObject({ path: 'rs.obj', methods: {} });
      await waitFor(() => lifecycle.length === 2, 'resubscribed');
      assert.equal(lifecycle, ['unsubscribed rs.obj', 'resubscribed rs.obj']);
      await owner.ping();
      await obj.notify('again');
      await waitFor(() => notes.length === 1, 'notification');
      assert.equal(notes, ['again']);
    } finally {
      owner.destroy();
      sub.destroy();
      await bus.cleanup();
    }
  });

  test(`${kind}: the first connect fails fast with ERR_UBUS_CONNECT`, async () => {
    const bus = await startBus(kind);
    const path = bus.socketPath;
    await bus.cleanup();
    await rejects(UbusClient.connect({ socketPath: path, reconnect: true }), (e) => e.code === 'ERR_UBUS_CONNECT');
  });
}

test.run();
