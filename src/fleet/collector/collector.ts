/**
 * The collector: MQTT subscriber(s) that write what routers report into the fleet database and acknowledge each
 * message to the broker only once it is committed (mqtt.js `customHandleAcks`: the PUBACK waits for the callback).
 * A persistent session (a fixed client id, clean false, a session expiry) makes the broker keep and resend what was
 * not acknowledged while the collector was down; the (router, seq) ledger makes a resent message a no-op.
 *
 * Usage reports come through an MQTT 5 shared subscription (`$share/<group>/…`): several collectors in one group
 * split the bulk of the stream with no coordinator of their own. Session messages and statuses are subscribed by
 * every collector, unshared, on its first connection (topicsOf below says why; store.ts: each applies the same
 * statuses in the same order). With MQTT 3.1.1 (a broker without shared subscriptions, the demo's) the
 * subscriptions are plain, on one connection: run one collector.
 *
 * mqtt.js hands a connection's messages over one at a time (the next after the previous one's acknowledgement), so a
 * collector opens `connections` members of the group to have that many messages in flight at once, and writes the
 * usage reports in flight together, many per transaction (group-commit.ts, usage-batch.ts): one commit for the lot,
 * then each one's acknowledgement. A transaction per message was what held one collector below 1,000 routers' rate.
 *
 * Session messages and statuses come on the first connection, read ahead of what is stored and stored fair between
 * routers (intake.ts, held-acks.ts): one router's flood waits behind itself (kept aside in the database beyond its
 * share), never ahead of another router's payment.
 *
 * What it stores and how it refuses is writes.ts. A database that cannot be reached holds the message (and so the
 * stream) and is retried, with a pause doubling to 5 s; a transaction rolled back for a conflict is run again (a few
 * times); any other failure to store a message — the database refusing it for any reason, a throw in sluice's own
 * code — is counted as refused and acknowledged, so one message never stops the stream (db/errors.ts decides which is
 * which). A connection that closes while its message waits drops the wait: the broker sends the message again on
 * the next connection, and acknowledging it on the new connection could acknowledge another message that took its
 * packet id.
 */
import type { MqttClient } from 'mqtt';
import { errorName } from '../db/index.ts';
import type { Collector, CollectorOptions, CollectorStats } from './options.ts';
import { deferredOf, routersDeferred } from './deferred.ts';
import { holdAcks } from './held-acks.ts';
import { Intake } from './intake.ts';
import { RouterIds } from './store.ts';
import { DEFAULT_RETENTION_DAYS, keepLedgerShort } from './retention.ts';
import { MessageWriter } from './writes.ts';
import { GIVE_UP, writeLoop } from './write-loop.ts';

export type { Collector, CollectorOptions, CollectorStats } from './options.ts';

export async function startCollector(o: CollectorOptions): Promise<Collector> {
  const mqtt = (await import('mqtt')).default;
  const prefix = o.prefix ?? 'sluice';
  const group = o.group ?? 'sluice-fleet';
  const protocolVersion = o.protocolVersion ?? 5;
  const now = o.now ?? Date.now;
  const ids = new RouterIds();
  const baseId = o.clientId ?? `sluice-fleet-${process.pid}`;
  const stats: CollectorStats = {
    received: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    reasons: {},
    dbErrors: 0,
    dropped: 0,
    deferred: 0,
    connected: 0,
  };
  const logged = new Set<string>();
  /** Logs a line once per key for the life of the collector (a flood of one bad message is one line). */
  const once = (key: string, line: () => void): void => {
    if (logged.has(key)) return;
    logged.add(key);
    line();
  };
  let stopped = false;

  const shared = (t: string) => (protocolVersion === 5 ? `$share/${group}/${t}` : t);
  /**
   * Usage reports, the bulk, are shared by every connection of every collector of the group. Session messages (the
   * money) and statuses come to the first connection of each collector, unshared: a broker keeps a plain
   * subscription of a persistent session over its restart and queues what comes meanwhile, while mosquitto 2.0.11
   * (Debian 12's) does not write shared subscriptions into its persistence file, so after its restart a message
   * published before the collectors subscribe again reaches no one (its PUBACK says "no matching subscribers", and
   * the router forgets it). A lost usage report is a gap of kind `usage` (droppable); a lost session message would
   * be money. Each collector writes every session message; the (router, seq) ledger keeps the second a no-op.
   */
  const topicsOf = (connection: number) =>
    connection > 0
      ? [shared(`${prefix}/+/usage`)]
      : n > 1
        ? [`${prefix}/+/session`, `${prefix}/+/status`]
        : [shared(`${prefix}/+/usage`), `${prefix}/+/session`, `${prefix}/+/status`];

  const untilWritten = writeLoop({
    db: o.db,
    log: o.log,
    once,
    onDbError: () => void stats.dbErrors++,
    stopped: () => stopped,
  });

  const writer = new MessageWriter({
    db: o.db,
    log: o.log,
    ids,
    stats,
    prefix,
    writers: o.writers ?? 4,
    now,
    once,
    untilWritten,
    stopped: () => stopped,
  });

  const intake = new Intake({
    concurrency: 3,
    maxBatch: 64,
    perTurn: 16,
    waiting: Math.max(1, o.waitingPerRouter ?? 64),
    store: (ms) => writer.storeTaken(ms),
    putAside: (ms) => writer.putAside(ms),
    next: async (router, limit) => {
      const out = await untilWritten(
        () => deferredOf(o.db, router, limit),
        () => !stopped,
      );
      return out === GIVE_UP ? [] : out;
    },
    onError: (router, err) =>
      once(`aside ${errorName(err)}`, () =>
        o.log.error('fleet: messages kept aside could not be read back', { router, error: (err as Error).message }),
      ),
  });
  /** The router a topic is under (`<prefix>/<router>/<kind>`): whose turn its message waits for. */
  const routerOf = (topic: string): string => topic.slice(prefix.length + 1).split('/', 1)[0] ?? '';

  const clients: MqttClient[] = [];
  const readies: Promise<void>[] = [];
  // Without shared subscriptions (MQTT 3.1.1) every connection would get every message: one is enough.
  const n = protocolVersion === 5 ? Math.max(1, o.connections ?? 32) : 1;
  intake.resume(await routersDeferred(o.db));
  for (let i = 0; i < n; i++) {
    let generation = 0;
    let subscribed: () => void;
    readies.push(new Promise<void>((r) => (subscribed = r)));
    // The first connection (session messages, statuses) reads ahead: up to readAhead unacknowledged at once.
    const readAhead = i === 0 && protocolVersion === 5;
    const properties = {
      sessionExpiryInterval: o.sessionExpiryS ?? 7 * 86400,
      ...(readAhead && { receiveMaximum: Math.min(65_535, Math.max(1, o.readAhead ?? 1024)) }),
    };
    const client = mqtt.connect(o.url, {
      protocolVersion,
      clientId: `${baseId}-${i}`,
      clean: false,
      // mqtt.js's own resubscribe remembers what was subscribed and then leaves it out of a later subscribe() call
      // (and sends nothing when the broker says it kept the session): with it, the subscription below never reached
      // a broker that had lost it, and after a mosquitto 2.0.11 restart the usage reports went nowhere.
      resubscribe: false,
      keepalive: o.keepaliveS ?? 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...(protocolVersion === 5 && { properties }),
      ...(o.username !== undefined && { username: o.username }),
      ...(o.password !== undefined && { password: o.password }),
      ...o.mqtt,
      customHandleAcks(topic, payload, packet, done) {
        const mine = generation;
        const alive = () => !stopped && generation === mine;
        const id = packet.messageId;
        if (readAhead && packet.qos === 1 && id !== undefined) {
          // Its PUBACK held until stored, mqtt.js reads the next message at once (held-acks.ts).
          acks.hold(id);
          const m = { router: routerOf(topic), topic, payload: payload as Buffer, retained: packet.retain === true };
          const stored = topic.endsWith('/usage')
            ? writer.handle({ ...m, alive })
            : intake.take({ ...m, receivedAt: now(), alive });
          void stored.then((ack) => {
            if (ack && alive()) acks.release(id);
          });
          done(0);
          return;
        }
        void writer
          .handle({ topic, payload: payload as Buffer, retained: packet.retain === true, alive })
          .then((ack) => {
            if (ack && alive()) done(0);
          });
      },
    });
    client.on('connect', () => {
      stats.connected++;
      // Every time, on the wire (resubscribe off): a broker that lost its sessions or its shared subscriptions (a
      // restart) has forgotten them; one that kept them takes the same subscription again as a no-op.
      // The first connection of a collector that has others takes no usage report (a session kept from a version that
      // subscribed it there loses it): its messages are the money, read ahead and stored fair between routers.
      if (i === 0 && n > 1) client.unsubscribe(shared(`${prefix}/+/usage`));
      client.subscribe(topicsOf(i), { qos: 1 }, (err) => {
        if (err) o.log.error('fleet: subscribe refused', { error: err.message });
        else {
          o.log.info('fleet: subscribed', { client: `${baseId}-${i}` });
          subscribed();
        }
      });
    });
    const acks = holdAcks(client);
    client.on('close', () => {
      generation++;
      acks.forget();
    });
    // A QoS 0 delivery (a router with mqtt.qos 0, or a broker that downgrades) has no acknowledgement to hold: mqtt.js
    // gives it only to 'message' handlers. On MQTT 3.1.1 mqtt.js ignores customHandleAcks and acknowledges every
    // delivery on receipt, so there every message comes here: a collector killed before its commit leaves a gap the
    // dashboard shows (exactly once needs MQTT 5, the default; 3.1.1 is for the demo's embedded broker).
    client.on('message', (topic, payload, packet) => {
      if (packet.qos !== 0 && protocolVersion === 5) return;
      const mine = generation;
      void writer.handle({ topic, payload, retained: packet.retain, alive: () => !stopped && generation === mine });
    });
    client.on('error', (err) =>
      once(`mqtt ${err.message}`, () => o.log.warn('fleet: broker connection', { error: err.message })),
    );
    clients.push(client);
  }
  o.log.info('fleet: collector started', { url: o.url, prefix, group, connections: n });
  const retention = keepLedgerShort(
    o.db,
    o.log,
    {
      everyMs: o.retentionEveryMs ?? 60_000,
      retentionMs: o.retentionMs === undefined ? DEFAULT_RETENTION_DAYS * 86_400_000 : o.retentionMs,
    },
    () => stopped,
  );
  return {
    stats: () => ({ ...stats, reasons: { ...stats.reasons } }),
    ready: Promise.all(readies).then(() => undefined),
    async stop() {
      stopped = true;
      intake.stop();
      await retention.stop();
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    },
  };
}
