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
 * A database that cannot be reached holds the message (and so the stream) and is retried, with a pause doubling to
 * 5 s; a transaction rolled back for a conflict is run again (a few times); any other failure to store a message —
 * the database refusing it for any reason, a throw in sluice's own code — is counted as refused and acknowledged,
 * so one message never stops the stream (db/errors.ts decides which is which). A connection that closes while its
 * message waits drops the wait: the broker sends the message again on the next connection, and acknowledging it on the
 * new connection could acknowledge another message that took its packet id.
 */
import type { MqttClient } from 'mqtt';
import { errorName } from '../db/index.ts';
import type { Collector, CollectorOptions, CollectorStats } from './options.ts';
import { deferMessages, deferredOf, dropDeferred, routersDeferred } from './deferred.ts';
import { GroupCommit } from './group-commit.ts';
import { holdAcks } from './held-acks.ts';
import { Intake, type Taken } from './intake.ts';
import { isReject, parseMessage, type Inbound, type Reject } from './parse.ts';
import { RouterIds, storeMessage, storeReject } from './store.ts';
import { DEFAULT_RETENTION_DAYS, keepLedgerShort } from './retention.ts';
import { OVER_NEW_SESSIONS } from './bounds.ts';
import { digestOf, sampleOf } from './reject-sample.ts';
import { storeSessionBatch, type SessionItem } from './session-batch.ts';
import { storeUsageBatch, type UsageMessage } from './usage-batch.ts';
import { GIVE_UP, writeLoop } from './write-loop.ts';

export type { Collector, CollectorOptions, CollectorStats } from './options.ts';

/** A message as the broker delivered it; alive: its connection is still the one it came on (and not stopping). */
interface Delivery {
  topic: string;
  payload: Buffer;
  retained: boolean;
  alive: () => boolean;
}

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

  /**
   * Counts a refused message in `rejects` (once for every copy of it: store.ts storeReject), waiting for a database
   * away as any write does; false: not counted because its connection closed (the broker brings it again).
   */
  async function countRefused(m: Delivery, reason: string, router: string | null, seq: number | null) {
    stats.rejected++;
    stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
    try {
      const out = await untilWritten(
        () => storeReject(o.db, m.topic, reason, router, seq, sampleOf(m.payload), digestOf(m.topic, m.payload)),
        m.alive,
      );
      return out !== GIVE_UP;
    } catch (err) {
      // The count itself refused (it never should be): the message is still let go, and the log says so.
      once(`reject count ${errorName(err)}`, () =>
        o.log.error('fleet: a refused message could not be counted', { error: (err as Error).message }),
      );
      return true;
    }
  }

  /** A message that could not be stored for a reason of its own (db/errors.ts): counted, acknowledged, let go. */
  async function refusedByDb(m: Delivery, router: string | null, seq: number | null, err: unknown) {
    const name = errorName(err);
    const reason =
      typeof (err as { code?: unknown }).code === 'string' ? `database refused (${name})` : `not stored (${name})`;
    once(`db ${m.topic} ${name}`, () =>
      o.log.warn('fleet: message could not be stored: refused', {
        topic: m.topic,
        reason,
        error: (err as Error).message,
      }),
    );
    return countRefused(m, reason, router, seq);
  }

  /** A usage report whose new sessions would pass its router's bound for the day: refused, counted, let go. */
  function overSessions(m: Delivery, router: string, seq: number | null): Promise<boolean> {
    once(`reject ${router} ${OVER_NEW_SESSIONS}`, () =>
      o.log.warn('fleet: message refused', { topic: m.topic, reason: OVER_NEW_SESSIONS, seq }),
    );
    return countRefused(m, OVER_NEW_SESSIONS, router, seq);
  }

  /** A session event of a newer router's kind: stored as its seq only, said once per kind. */
  function noteUnknownEvent(parsed: Inbound): void {
    if (parsed.kind === 'session' && parsed.session === null && !parsed.escrow) {
      once(`event ${parsed.event}`, () =>
        o.log.warn('fleet: session event of a kind this collector does not know: only its seq is stored', {
          router: parsed.router,
          event: parsed.event,
        }),
      );
    }
  }

  /** Writes one message in its own transaction; false: not written (connection closed or stopping). */
  async function storeOne(m: Delivery, parsed: Inbound | Reject): Promise<boolean> {
    if (isReject(parsed)) {
      once(`reject ${parsed.router} ${parsed.reject}`, () =>
        o.log.warn('fleet: message refused', { topic: m.topic, reason: parsed.reject, seq: parsed.seq }),
      );
      const counted = await countRefused(m, parsed.reject, parsed.router, parsed.seq);
      if (!counted) stats.dropped++;
      return counted;
    }
    noteUnknownEvent(parsed);
    try {
      const out = await untilWritten(() => storeMessage(o.db, ids, parsed, { retained: m.retained }), m.alive);
      if (out === GIVE_UP) {
        stats.dropped++;
        return false;
      }
      if (out === 'over') return overSessions(m, parsed.router, 'seq' in parsed ? parsed.seq : null);
      if (out === 'stored') stats.stored++;
      else stats.duplicates++;
      return true;
    } catch (err) {
      if (!m.alive()) return false;
      const seq = 'seq' in parsed ? parsed.seq : null;
      return refusedByDb(m, parsed.router, parsed.kind === 'status' ? null : seq, err);
    }
  }

  /**
   * Writes usage reports that arrived together in one transaction (usage-batch.ts), retried as a whole while the
   * database is away; a batch the database refuses for its values is written again one message at a time, so only
   * the bad one is refused. true: committed, acknowledge it.
   */
  async function storeUsage(batch: Array<Delivery & { parsed: UsageMessage }>): Promise<boolean[]> {
    const done = new Map<Delivery, boolean>();
    try {
      const out = await untilWritten(
        async () => {
          const live = batch.filter((m) => m.alive());
          const outcomes = await storeUsageBatch(
            o.db,
            ids,
            live.map((m) => m.parsed),
          );
          return { live, outcomes };
        },
        () => batch.some((m) => m.alive()),
      );
      if (out !== GIVE_UP)
        for (const [i, m] of out.live.entries()) {
          if (out.outcomes[i] === 'over') done.set(m, await overSessions(m, m.parsed.router, m.parsed.seq));
          else {
            if (out.outcomes[i] === 'stored') stats.stored++;
            else stats.duplicates++;
            done.set(m, true);
          }
        }
    } catch (err) {
      once('batch refused', () =>
        o.log.warn('fleet: a batch refused by the database: its messages stored one by one', {
          code: String((err as { code?: unknown }).code),
        }),
      );
      for (const m of batch) done.set(m, await storeOne(m, m.parsed));
    }
    return batch.map((m) => {
      if (!done.has(m)) stats.dropped++;
      return done.get(m) ?? false;
    });
  }

  const usage = new GroupCommit(storeUsage, { maxInFlight: Math.max(1, o.writers ?? 4), maxBatch: 256 });

  /** A delivery received and checked (parse.ts), or refused. */
  function parseDelivery(m: Delivery, at: number): Inbound | Reject {
    stats.received++;
    try {
      return parseMessage(prefix, m.topic, m.payload, at);
    } catch (err) {
      // parse.ts refuses what it checks; a throw is sluice's own failure on this input: the message is refused.
      return { reject: `unreadable (${errorName(err)})`, router: null, seq: null };
    }
  }

  /** Writes one delivery (usage reports through the group commit); false: give up (connection closed, stopping). */
  function handle(m: Delivery, at = now()): Promise<boolean> {
    const parsed = parseDelivery(m, at);
    if (!isReject(parsed) && parsed.kind === 'usage') return usage.submit({ ...m, parsed });
    return storeOne(m, parsed);
  }

  /** Stores one message read ahead on its own; one kept aside then leaves the aside table. */
  async function storeTakenOne(m: Taken, parsed: Inbound | Reject): Promise<boolean> {
    const ack = await storeOne(m, parsed);
    if (ack && m.asideId !== undefined) {
      const id = m.asideId;
      await untilWritten(
        () => dropDeferred(o.db, id),
        () => !stopped,
      );
    }
    return ack;
  }

  /**
   * Session messages and statuses of several routers, read ahead (intake.ts), in one transaction (session-batch.ts),
   * retried as a whole while the database is away; a batch the database refuses (or sluice's own code throws on) is
   * written again one message at a time, so only the bad one is refused, counted and acknowledged. A message refused
   * at parse is counted on its own.
   */
  async function storeTaken(batch: Taken[]): Promise<boolean[]> {
    const done = new Map<Taken, boolean>();
    const items: Array<{ m: Taken } & SessionItem> = [];
    const apart: Array<[Taken, Inbound | Reject]> = [];
    for (const m of batch) {
      const parsed = parseDelivery(m, m.receivedAt);
      if (isReject(parsed) || parsed.kind === 'usage') apart.push([m, parsed]);
      else items.push({ m, parsed, retained: m.retained, ...(m.asideId !== undefined && { asideId: m.asideId }) });
    }
    try {
      const out = await untilWritten(
        async () => {
          const live = items.filter((item) => item.m.alive());
          return { live, outcomes: await storeSessionBatch(o.db, ids, live) };
        },
        () => items.some((item) => item.m.alive()),
      );
      if (out !== GIVE_UP)
        for (const [i, item] of out.live.entries()) {
          noteUnknownEvent(item.parsed);
          if (out.outcomes[i] === 'stored') stats.stored++;
          else stats.duplicates++;
          done.set(item.m, true);
        }
    } catch (err) {
      once(`session batch refused ${errorName(err)}`, () =>
        o.log.warn('fleet: a batch of session messages could not be stored: its messages stored one by one', {
          error: (err as Error).message,
        }),
      );
      for (const item of items) done.set(item.m, await storeTakenOne(item.m, item.parsed));
    }
    for (const [m, parsed] of apart) done.set(m, await storeTakenOne(m, parsed));
    return batch.map((m) => {
      if (!done.has(m)) stats.dropped++;
      return done.get(m) ?? false;
    });
  }

  /** Keeps `batch` aside in one statement; a batch the database refuses goes its own way, message by message. */
  async function putAside(batch: Taken[]): Promise<boolean[]> {
    try {
      const out = await untilWritten(
        async () => {
          const live = batch.filter((m) => m.alive());
          await deferMessages(o.db, live);
          return new Set(live);
        },
        () => batch.some((m) => m.alive()),
      );
      if (out === GIVE_UP) return batch.map(() => false);
      stats.deferred += out.size;
      return batch.map((m) => out.has(m));
    } catch {
      return Promise.all(batch.map((m) => handle(m, m.receivedAt)));
    }
  }

  const intake = new Intake({
    concurrency: 3,
    maxBatch: 64,
    perTurn: 16,
    waiting: Math.max(1, o.waitingPerRouter ?? 64),
    store: storeTaken,
    putAside,
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
            ? handle({ ...m, alive })
            : intake.take({ ...m, receivedAt: now(), alive });
          void stored.then((ack) => {
            if (ack && alive()) acks.release(id);
          });
          done(0);
          return;
        }
        void handle({ topic, payload: payload as Buffer, retained: packet.retain === true, alive }).then((ack) => {
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
      void handle({ topic, payload, retained: packet.retain, alive: () => !stopped && generation === mine });
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
