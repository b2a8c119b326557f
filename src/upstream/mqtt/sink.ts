/**
 * The MQTT upstream: usage reports and session events go through the outbox (flash) and leave it only when the
 * broker acknowledged them (the delivery loop, delivery.ts, paused while no connection is up and restarted from the
 * oldest unacknowledged record on each new one); the retained status (with a Last-Will saying offline) and command
 * replies go straight to the broker (direct.ts, command-channel.ts). One mqtt.js client per connection, its own
 * reconnect off (connection.ts): a fresh client never resends a stale in-memory queue, so what is sent again after a
 * reconnect is exactly what the outbox still holds, in order. docs/mqtt.md describes topics, payloads and guarantees.
 */
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { Backoff } from '../../backoff.ts';
import type { Config, MqttConfig } from '../../config/index.ts';
import { toSluiceError } from '../../errors.ts';
import { backgroundTimers, systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../../time.ts';
import { DeliveryLoop, deliveryTimers } from '../delivery.ts';
import { Outbox, type OutboxRecord } from '../outbox.ts';
import type { SinkEvent, SinkStats, UpstreamSink } from '../sink.ts';
import { CommandChannel } from './command-channel.ts';
import { CommandVerifier } from './commands.ts';
import {
  clientOptions,
  describeConnectError,
  endClient,
  firstProtocol,
  reconnectFor,
  refusesVersion5,
  sayOffline,
} from './connection.ts';
import { recordOptions, replyOptions, statusOptions } from './publish-options.ts';
import { lazyPart } from '../../lazy.ts';
import { DirectPublishes } from './direct.ts';
import { loadMsgpack, RECORD_TYPE, replyMessage, statusMessage, venueMessage } from './messages.ts';
import type { MqttSinkDeps } from './sink-deps.ts';
export type { MqttSinkDeps } from './sink-deps.ts';
import { MQTT_CONSUMER as CONSUMER, MqttReports } from './reports.ts';

type MqttJs = (typeof import('mqtt'))['default'];
/**
 * mqtt.js is loaded by the first start or reload that connects, not with the daemon: a router with mqtt off never
 * loads it (about 5 MB of resident memory; docs/performance.md, "Idle memory").
 */
let mqttJs: MqttJs | undefined;
// In the package mqtt.js is a file of its own (dist/mqtt.mjs, scripts/build.mjs): one that cannot be loaded is
// ERR_MODULE_LOAD.
const importMqttJs = lazyPart('mqtt.js (the MQTT upstream)', () => import('mqtt'));
async function loadMqttJs(): Promise<MqttJs> {
  return (mqttJs ??= (await importMqttJs()).default);
}

type State = 'idle' | 'disabled' | 'connecting' | 'ready' | 'waiting' | 'closing' | 'closed';

export class MqttSink implements UpstreamSink {
  readonly name = 'mqtt';
  private config: MqttConfig;
  private routerId: string;
  private outbox: Outbox | undefined;
  private queueDir = '';
  private client: MqttClient | null = null;
  /** Bumped per connection: callbacks of an older client are ignored. */
  private generation = 0;
  private state: State = 'idle';
  /** 5 or 4 (3.1.1); `auto` starts at 5 and falls back once the broker refuses it. */
  private protocolVersion: 4 | 5;
  private fallbackPending = false;
  /** Sends the outbox's records while a connection is up. */
  private delivery: DeliveryLoop | undefined;
  /** The status and command replies, counted under mqtt.max_inflight with the records. */
  private readonly direct: DirectPublishes;
  private readonly reconnectBackoff: Backoff;
  private retryTimer: TimerHandle | null = null;
  private statusTimer: TimerHandle | null = null;
  /** A backlog (from an outage) is being sent: its cursor is saved once it drains. */
  private backlog = false;
  private readonly clock: Clock;
  private readonly timers: Timers;
  /** For close()'s waits. */
  private readonly waitTimers: Timers;
  private readonly startedAt: number;
  private readonly verifier: CommandVerifier;
  private readonly commands: CommandChannel;
  private lastError: string | null = null;
  private connectedAt: number | null = null;
  /** Session events and usage reports into the outbox. */
  private readonly reports: MqttReports;
  private readonly counters = { published: 0, acknowledged: 0, expired: 0, connects: 0, disconnects: 0 };

  constructor(
    config: MqttConfig,
    private readonly deps: MqttSinkDeps,
  ) {
    this.config = config;
    this.routerId = deps.routerId;
    this.clock = deps.clock ?? systemClock;
    this.timers = deps.timers ?? backgroundTimers;
    this.waitTimers = deps.timers ?? systemTimers;
    this.startedAt = this.clock.now();
    this.protocolVersion = firstProtocol(config);
    this.reconnectBackoff = this.newBackoff();
    this.verifier = new CommandVerifier(config.commandSecret, config.commandWindowMs, this.clock);
    this.reports = new MqttReports({
      log: deps.log,
      clock: this.clock,
      settings: () => ({ format: this.config.format, routerId: this.routerId, maxPayload: this.config.maxPayload }),
      ...(deps.recovered && { recovered: deps.recovered }),
      ...(deps.session && { session: deps.session }),
      ...(deps.moved && { moved: deps.moved }),
    });
    this.commands = new CommandChannel({
      verifier: this.verifier,
      log: deps.log,
      ...(deps.command && { command: deps.command }),
    });
    this.direct = new DirectPublishes({
      room: () => this.config.maxInflight - this.inflight,
      client: () => (this.state === 'ready' ? this.client : null),
      topic: (suffix) => this.topic(suffix),
      status: () => ({ body: this.statusPayload(true), options: statusOptions(this.config, this.protocolVersion) }),
      replyOptions: () => replyOptions(this.config, this.protocolVersion),
      freed: () => this.delivery?.kick(),
    });
  }

  private newBackoff(): Backoff {
    return new Backoff({
      minMs: this.deps.backoff?.minMs ?? 1000,
      maxMs: this.deps.backoff?.maxMs ?? 60_000,
      jitter: 0.2,
    });
  }

  /** Every publish awaiting its acknowledgement: the queue's records, the status, command replies. */
  private get inflight(): number {
    return (this.delivery?.inFlightCount ?? 0) + this.direct.inflight;
  }

  private topic(suffix: string): string {
    return `${this.config.topicPrefix}/${this.routerId}/${suffix}`;
  }

  // ---- lifecycle ----

  async start(options: { atStart?: boolean } = {}): Promise<void> {
    if (!this.config.enabled) {
      this.state = 'disabled';
      return;
    }
    await this.openQueue(options.atStart === true);
    await loadMqttJs();
    this.connect();
  }

  private async openQueue(atStart = false): Promise<void> {
    if (this.outbox) return;
    await loadMsgpack();
    this.queueDir = this.config.queueDir || join(this.deps.stateDir, 'mqtt-outbox');
    this.outbox = await Outbox.open({
      dir: this.queueDir,
      maxBytes: this.config.queueMax,
      consumers: [CONSUMER],
      // Usage reports in RAM, not on flash every tick (docs/mqtt.md "Flash writes"); session events on file.
      droppableInRam: true,
      atStart,
      clock: this.clock,
      timers: this.timers,
      onWarning: (w) => this.deps.log.warn('mqtt queue', { code: w.code, reason: w.message }),
    });
    this.delivery = new DeliveryLoop({
      source: this.outbox,
      consumer: CONSUMER,
      send: (r) => this.publishRecord(r),
      backoff: this.newBackoff(),
      timers: deliveryTimers(this.clock, this.timers),
      maxInFlight: () => this.config.maxInflight,
      busy: () => this.direct.inflight,
      beforeRound: () => this.direct.flushDue(),
      onDelivered: () => this.delivered(),
      // The record stays in the outbox: retried after the pause, or sent again on the next connection.
      onFailure: (err) => this.fail(`publish failed: ${toSluiceError(err).message}`),
    });
    this.reports.open(this.outbox, this.queueDir);
    await this.commands.open(this.queueDir, { atStart });
  }

  async reload(config: Config): Promise<void> {
    const next = config.mqtt;
    const prev = this.config;
    const routerChanged = config.main.routerId !== this.routerId;
    this.config = next;
    this.routerId = config.main.routerId;
    this.verifier.configure(next.commandSecret, next.commandWindowMs);
    if (!next.enabled) {
      if (this.state !== 'disabled' && this.state !== 'idle') {
        this.deps.log.info('mqtt disabled by reload');
        await this.disconnect('disabled');
      }
      this.state = 'disabled';
      return;
    }
    if (this.outbox) {
      this.outbox.setMaxBytes(next.queueMax);
      const dir = next.queueDir || join(this.deps.stateDir, 'mqtt-outbox');
      if (dir !== this.queueDir) {
        this.deps.log.warn('mqtt.queue_dir changes at the next restart; the queue stays where it is until then', {
          queue_dir: this.queueDir,
        });
      }
    } else {
      await this.openQueue();
    }
    const changed = reconnectFor(prev, next, routerChanged);
    if (this.state === 'disabled' || this.state === 'idle') {
      this.protocolVersion = firstProtocol(next);
      await loadMqttJs();
      this.connect();
    } else if (changed.length > 0) {
      this.deps.log.info('mqtt settings changed: reconnecting; queued messages are kept', {
        changed: changed.join(','),
      });
      await this.disconnect('reload');
      this.protocolVersion = firstProtocol(next);
      this.reconnectBackoff.reset();
      this.connect();
    } else if (prev.statusIntervalMs !== next.statusIntervalMs && this.state === 'ready') {
      this.startStatusTimer();
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    await this.disconnect('stopped');
    this.state = 'closing';
    await this.delivery?.close(0);
    if (this.config.commands) await this.commands.saveNonces();
    await this.outbox?.close();
    this.reports.close();
    this.state = 'closed';
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimers();
    this.generation++;
    this.delivery?.destroy();
    this.client?.end(true);
    this.client = null;
    this.outbox?.close().catch(() => undefined);
    this.reports.abandon();
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.statusTimer !== null) this.timers.clearTimeout(this.statusTimer);
    this.retryTimer = this.statusTimer = null;
  }

  /**
   * Ends the connection cleanly: waits (bounded) for in-flight acknowledgements so they are not sent twice, says
   * offline in the retained status, then DISCONNECTs (the broker does not publish the Last-Will after a clean one).
   */
  private async disconnect(reason: string): Promise<void> {
    this.clearTimers();
    const client = this.client;
    const wasReady = this.state === 'ready';
    this.state = 'waiting';
    this.delivery?.pause();
    if (!client) return;
    const waits = {
      clock: this.clock,
      timers: this.waitTimers,
      deadline: this.clock.now() + (this.deps.drainMs ?? 2000),
    };
    if (wasReady) {
      await sayOffline(
        client,
        waits,
        () => this.inflight,
        () => ({
          topic: this.topic('status'),
          payload: this.statusPayload(false, reason),
          options: statusOptions(this.config, this.protocolVersion),
        }),
      );
    }
    this.generation++;
    this.client = null;
    this.direct.reset();
    await endClient(client, waits);
  }

  // ---- connection ----

  private connect(): void {
    if (this.state === 'closing' || this.state === 'closed' || (this.state === 'disabled' && !this.config.enabled))
      return;
    const cfg = this.config;
    const gen = ++this.generation;
    let client: MqttClient;
    try {
      if (mqttJs === undefined) throw new Error('mqtt.js is not loaded');
      client = mqttJs.connect(
        cfg.url,
        clientOptions(cfg, this.protocolVersion, {
          topic: this.topic('status'),
          payload: this.statusPayload(false, 'lost'),
        }),
      );
    } catch (err) {
      // A TLS file that cannot be read names its option; anything else mqtt.js refuses is about the URL.
      const e = toSluiceError(err);
      this.fail(e.code === 'ERR_CONFIG_INVALID' ? e.message : `mqtt.url: ${e.message}`);
      this.scheduleReconnect();
      return;
    }
    this.state = 'connecting';
    this.fallbackPending = false;
    this.client = client;
    client.on('connect', () => {
      if (gen === this.generation) this.onConnected(client);
    });
    client.on('error', (err: Error & { code?: unknown }) => {
      if (gen !== this.generation) return;
      this.onError(err);
    });
    client.on('close', () => {
      if (gen === this.generation) this.onClosed(client);
    });
    client.on('message', (topic, payload) => {
      if (gen === this.generation) void this.onMessage(client, topic, payload);
    });
  }

  private onError(err: Error & { code?: unknown }): void {
    if (this.config.protocol === 'auto' && this.protocolVersion === 5 && refusesVersion5(err)) {
      this.fallbackPending = true;
      return;
    }
    this.fail(describeConnectError(err));
  }

  private fail(message: string): void {
    if (message !== this.lastError) this.deps.log.warn('mqtt', { reason: message });
    this.lastError = message;
  }

  private onConnected(client: MqttClient): void {
    this.state = 'ready';
    this.connectedAt = this.clock.now();
    this.counters.connects++;
    this.reconnectBackoff.reset();
    this.lastError = null;
    this.backlog = (this.outbox?.stats().consumers[CONSUMER]?.pending ?? 0) > 0;
    this.deps.log.info('mqtt connected', {
      url: this.config.url,
      protocol: this.protocolVersion === 5 ? '5' : '3.1.1',
    });
    // What the last connection had in flight is sent again, the oldest unacknowledged record first (in a later turn:
    // the status goes out before it).
    this.delivery?.resume();
    this.direct.reset();
    this.direct.status();
    this.startStatusTimer();
    if (this.config.commands) {
      client.subscribe(this.topic('cmd'), { qos: 1 }, (err) => {
        if (err) this.fail(`cannot subscribe to ${this.topic('cmd')}: ${err.message}`);
      });
    }
  }

  private onClosed(client: MqttClient): void {
    if (this.state === 'ready') {
      this.counters.disconnects++;
      // Once per outage: what was acknowledged so far is not sent twice if the router crashes before it reconnects.
      this.outbox
        ?.saveCursors()
        .catch((e: unknown) => this.fail(`cannot save the queue cursor: ${toSluiceError(e).message}`));
      this.deps.log.warn('mqtt connection lost; queueing', {
        pending: this.outbox?.stats().consumers[CONSUMER]?.pending ?? 0,
      });
    }
    this.generation++;
    this.delivery?.pause();
    client.end(true);
    this.client = null;
    this.direct.reset();
    if (this.statusTimer !== null) this.timers.clearTimeout(this.statusTimer);
    this.statusTimer = null;
    if (this.state === 'closing' || this.state === 'closed' || this.state === 'disabled') return;
    this.state = 'waiting';
    if (this.fallbackPending) {
      this.deps.log.info('mqtt broker refused MQTT 5: using 3.1.1');
      this.protocolVersion = 4;
      this.connect();
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.retryTimer !== null || this.state === 'closing' || this.state === 'closed') return;
    this.state = 'waiting';
    const delay = this.reconnectBackoff.next();
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  // ---- sending ----

  onEvent(event: SinkEvent): void {
    const accepting =
      this.outbox !== undefined && this.state !== 'disabled' && this.state !== 'closing' && this.state !== 'closed';
    this.reports.onEvent(event, accepting);
  }

  /** One record to the broker (the delivery loop's send): resolves on its PUBACK, 'skip' when it expired unsent. */
  private publishRecord(r: OutboxRecord): Promise<void> | 'skip' {
    const client = this.client;
    if (!client) return Promise.reject(new Error('not connected'));
    const options = recordOptions(this.config, this.protocolVersion, r, this.clock.now());
    if (options === 'expired') {
      // It would expire at the broker anyway: count it and move on.
      this.counters.expired++;
      return 'skip';
    }
    this.counters.published++;
    const gen = this.generation;
    return new Promise((resolve, reject) => {
      client.publish(this.topicOf(r), toBuffer(r.payload), options, (err) => {
        // A connection that is gone: its answers mean nothing, the next one sends the record again.
        if (gen !== this.generation) return;
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private delivered(): void {
    this.counters.acknowledged++;
    const box = this.outbox;
    if (box && this.backlog && this.inflight === 0 && box.pendingCount(CONSUMER) === 0) {
      // Caught up after an outage: one cursor write now spares the whole backlog being sent twice after a crash.
      this.backlog = false;
      box.saveCursors().catch((e: unknown) => this.fail(`cannot save the queue cursor: ${toSluiceError(e).message}`));
    }
  }

  private topicOf(r: OutboxRecord): string {
    return this.topic(r.type === RECORD_TYPE.usage ? 'usage' : 'session');
  }

  // ---- status ----

  private statusPayload(online: boolean, reason?: string): Buffer {
    const at = this.clock.now();
    const q = this.outbox?.stats();
    const info = online ? (this.deps.status?.() ?? null) : null;
    const head = { format: this.config.format, router: this.routerId, at };
    return statusMessage(head, (this.outbox?.nextSeq ?? 1) - 1, {
      online,
      ...(reason !== undefined && { reason }),
      ...(info ?? { uptime_s: Math.floor((at - this.startedAt) / 1000) }),
      queue: q
        ? {
            pending: q.consumers[CONSUMER]?.pending ?? 0,
            bytes: q.bytes,
            dropped: q.dropped,
            expired: this.counters.expired,
          }
        : null,
    });
  }

  private startStatusTimer(): void {
    if (this.statusTimer !== null) this.timers.clearTimeout(this.statusTimer);
    // A timeout re-armed on each beat (Timers has timeouts only), armed before the status goes out as an interval's
    // would be.
    const everyMs = this.config.statusIntervalMs;
    const beat = (): void => {
      this.statusTimer = this.timers.setTimeout(beat, everyMs);
      this.direct.status();
    };
    this.statusTimer = this.timers.setTimeout(beat, everyMs);
  }

  // ---- commands ----

  private async onMessage(client: MqttClient, topic: string, payload: Buffer): Promise<void> {
    if (topic !== this.topic('cmd') || !this.config.commands) return;
    const reply = await this.commands.answer(payload);
    if (this.client !== client) return;
    this.direct.reply(
      replyMessage(
        { format: this.config.format, router: this.routerId, at: this.clock.now() },
        (this.outbox?.nextSeq ?? 1) - 1,
        reply,
      ),
    );
  }

  /**
   * A venue claim (roaming.md) on `<prefix>/<router>/venue`, straight to the broker like a command reply (never
   * queued: a claim is only worth its answer now). False when no connection is up.
   */
  publishVenue(body: Record<string, unknown>): boolean {
    if (this.state !== 'ready' || !this.config.enabled) return false;
    const head = { format: this.config.format, router: this.routerId, at: this.clock.now() };
    return this.direct.other('venue', venueMessage(head, (this.outbox?.nextSeq ?? 1) - 1, body));
  }

  /** The status now (the venue lease's renewal round), its next beat a whole interval later. */
  statusNow(): void {
    if (this.state === 'ready') (this.direct.status(), this.startStatusTimer());
  }

  // ---- stats ----

  stats(): SinkStats {
    const q = this.outbox?.stats();
    return {
      state: this.state,
      url: this.config.url,
      protocol: this.protocolVersion === 5 ? '5' : '3.1.1',
      connected_since: this.connectedAt,
      inflight: this.inflight,
      last_error: this.lastError,
      ...this.reports.counters,
      ...this.counters,
      ...this.direct.counters,
      ...this.commands.counters,
      queue: q
        ? {
            pending: q.consumers[CONSUMER]?.pending ?? 0,
            bytes: q.bytes,
            max_bytes: q.maxBytes,
            over_limit_bytes: q.overLimitBytes,
            dropped: q.dropped,
            next_seq: q.nextSeq,
            fsyncs: q.fsyncs,
            writes: q.writes,
          }
        : null,
    };
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
