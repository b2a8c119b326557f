// tier: peers; needs freeradius mosquitto
/**
 * The UpstreamSink suite (sink-suite.ts) against each sink and its real peer: the hook against
 * test/peers/hook-receiver.ts (behind a switch that refuses connections for the outage), MQTT against a real
 * mosquitto (persistence on; a subscriber with a kept session counts what arrived; SIGSTOP holds a publish), RADIUS
 * accounting against a real FreeRADIUS (its detail file counts what arrived; stopped, it answers nothing).
 */
import type { ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createLogger } from '../../src/log.ts';
import { RadiusClient } from '../../src/radius/client.ts';
import { HookSink } from '../../src/upstream/hook/sink.ts';
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { RadiusAccounting } from '../../src/upstream/radius/accounting.ts';
import { FreeRadius } from '../peers/freeradius.ts';
import { HookReceiver } from '../peers/hook-receiver.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { mqttConfig } from './mqtt-config.ts';
import { Subscriber } from './mqtt-rig.ts';
import type { UpstreamSink } from '../../src/upstream/sink.ts';
import { upstreamSinkSuite } from './sink-suite.ts';

const log = createLogger({ level: 'error' });

/** A TCP switch in front of a peer: while off, every connection is refused by a reset (the peer is down). */
async function tcpSwitch(targetPort: () => number): Promise<{ port: number; on: boolean; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { on: true };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (!state.on) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort() });
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    get on() {
      return state.on;
    },
    set on(v: boolean) {
      state.on = v;
      if (!v) for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

upstreamSinkSuite('hook', async () => {
  const receiver = await HookReceiver.listen('ok');
  const port = Number(new URL(receiver.url).port);
  const gate = await tcpSwitch(() => port);
  const acked = (id: string, event: string) =>
    receiver.posts.filter((p) => p.mode === 'ok' && p.body.event === event && p.body.session?.id === id).length;
  return {
    open: (stateDir, sessions) =>
      new HookSink(
        {
          enabled: true,
          url: `http://127.0.0.1:${gate.port}/hook`,
          secret: 'hook-suite-secret-0123456789',
          timeoutMs: 2000,
          backoffMaxMs: 200,
          queueMax: 1 << 20,
        },
        { log, routerId: 'r1', stateDir, backoffMinMs: 20, session: (id) => sessions.get(id) },
      ),
    down: async () => {
      gate.on = false;
    },
    up: async () => {
      gate.on = true;
    },
    received: (id) => ({ started: acked(id, 'started'), ended: acked(id, 'ended') }),
    hold: async () => {
      receiver.mode = 'silent';
    },
    release: async () => {
      receiver.mode = 'ok';
    },
    endlessAnswer: () => {
      receiver.mode = 'stream';
      const from = receiver.posts.length;
      const cut = (async () => {
        while (receiver.posts.length <= from) await new Promise((r) => setTimeout(r, 25));
        const r = await receiver.posts[from]!.closed;
        receiver.mode = 'ok';
        return r.cutByClient;
      })();
      return { cut };
    },
    close: async () => {
      await gate.close();
      await receiver.close();
    },
  };
});

upstreamSinkSuite('mqtt', async () => {
  const broker = await Mosquitto.create({ persistence: true });
  // A kept session (clean: false, one client id): what is published while the subscriber is away waits for it.
  // MQTT 5 ends a session at the disconnect unless it names an expiry.
  const sub = await Subscriber.connect(broker.url, {
    clean: false,
    clientId: `sink-suite-${process.pid}`,
    properties: { sessionExpiryInterval: 3600 },
  });
  const child = (): ChildProcess | undefined => (broker as unknown as { child?: ChildProcess }).child;
  const count = (id: string, event: string) =>
    sub.on('session').filter((m) => m.body.event === event && (m.body.session as { id?: string })?.id === id).length;
  let held = false;
  return {
    open: (stateDir, sessions) =>
      new MqttSink(mqttConfig(broker.url), {
        log,
        routerId: 'r1',
        stateDir,
        backoff: { minMs: 100, maxMs: 400 },
        session: (id) => sessions.get(id),
      }),
    down: () => broker.stop('SIGTERM'),
    up: () => broker.start(),
    received: (id) => ({ started: count(id, 'started'), ended: count(id, 'ended') }),
    // A stopped broker keeps the connection open and answers nothing: the publish stays in flight.
    hold: async () => {
      held = child()?.kill('SIGSTOP') ?? false;
    },
    release: async () => {
      if (held) child()?.kill('SIGCONT');
      held = false;
    },
    close: async () => {
      if (held) child()?.kill('SIGCONT');
      await sub.close();
      await broker.close();
    },
  };
});

upstreamSinkSuite('radius', async () => {
  const radius = await FreeRadius.start();
  const count = (id: string, kind: string) =>
    radius.detail().filter((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === kind).length;
  return {
    open: (stateDir, sessions): UpstreamSink => {
      const client = new RadiusClient({
        servers: [{ host: '127.0.0.1', port: radius.acctPort, secret: radius.secret }],
        timeoutMs: 200,
        retries: 0,
      });
      const acct = new RadiusAccounting({
        dir: stateDir,
        maxBytes: 1 << 20,
        client: () => client,
        nas: () => ({ identifier: 'router-test', ip: '127.0.0.1', calledStationId: 'router-test' }),
        interimMs: () => 3_600_000,
        maxInFlight: 8,
        maxBackoffMs: 500,
        log,
        session: (id) => sessions.get(id),
        recovered: () => ({ active: [], ended: [] }),
        syncIntervalMs: 50,
      });
      // The client's UDP socket is the caller's (the daemon's RadiusUpstream closes it after the accounting).
      return {
        name: 'radius',
        start: () => acct.start(),
        onEvent: (e) => acct.onEvent(e),
        stats: () => acct.stats(),
        close: async () => {
          await acct.close();
          await client.close();
        },
        destroy: () => {
          acct.destroy();
          void client.close();
        },
      };
    },
    down: () => radius.stop(),
    up: () => radius.start(),
    received: (id) => ({ started: count(id, 'Start'), ended: count(id, 'Stop') }),
    // UDP: a stopped server leaves the request unanswered, retried until stop.
    hold: () => radius.stop(),
    release: () => radius.start(),
    close: () => radius.close(),
  };
});
