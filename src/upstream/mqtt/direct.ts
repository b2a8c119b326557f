/**
 * The MQTT publishes that do not go through the outbox: the retained status and the command replies. They count under
 * mqtt.max_inflight with the queue's records (the delivery loop sees them as busy room), so the bound holds for every
 * unacknowledged publish. At the cap a status waits for the next acknowledgement; replies wait in memory, like the
 * replies themselves, and past MAX_REPLIES_DUE the oldest waiting one is dropped (counted: replies_dropped).
 */
import type { IClientPublishOptions, MqttClient } from 'mqtt';

/** Command replies held while mqtt.max_inflight is full. */
const MAX_REPLIES_DUE = 256;

export interface DirectDeps {
  /** Room under mqtt.max_inflight that neither these publishes nor the queue's records hold. */
  room: () => number;
  /** The connected client, or null. */
  client: () => MqttClient | null;
  topic: (suffix: string) => string;
  /** The current online status message and its publish options. */
  status: () => { body: Buffer; options: IClientPublishOptions };
  replyOptions: () => IClientPublishOptions;
  /** A publish was acknowledged: its room is free for the queue. */
  freed: () => void;
}

export class DirectPublishes {
  /** Publishes sent on this connection and not yet acknowledged. */
  inflight = 0;
  private statusDue = false;
  private readonly repliesDue: Buffer[] = [];
  /** Bumped per connection: acknowledgements on an older one are ignored. */
  private generation = 0;
  readonly counters = { status_published: 0, replies_dropped: 0 };

  constructor(private readonly deps: DirectDeps) {}

  /** A new connection (or none): nothing of the old one is in flight any more. */
  reset(): void {
    this.generation++;
    this.inflight = 0;
  }

  /** Publishes the online status now, or as soon as there is room. */
  status(): void {
    const client = this.deps.client();
    if (!client) return;
    if (this.deps.room() <= 0) {
      this.statusDue = true;
      return;
    }
    this.statusDue = false;
    this.counters.status_published++;
    const { body, options } = this.deps.status();
    this.publish(client, this.deps.topic('status'), body, options);
  }

  /** Publishes a command reply now, or keeps it until there is room (after those already waiting). */
  reply(body: Buffer): void {
    const client = this.deps.client();
    if (!client) return;
    if (this.deps.room() > 0 && this.repliesDue.length === 0) {
      this.publishReply(client, body);
      return;
    }
    if (this.repliesDue.length >= MAX_REPLIES_DUE) {
      this.repliesDue.shift();
      this.counters.replies_dropped++;
    }
    this.repliesDue.push(body);
  }

  /** Publishes on another topic of the router's (a venue claim) now, if there is room: false when not sent. */
  other(suffix: string, body: Buffer): boolean {
    const client = this.deps.client();
    if (!client || this.deps.room() <= 0) return false;
    this.publish(client, this.deps.topic(suffix), body, this.deps.replyOptions());
    return true;
  }

  /** Sends what waits for room: the status first, then replies in order. */
  flushDue(): void {
    const client = this.deps.client();
    if (!client) return;
    if (this.statusDue) this.status();
    while (this.repliesDue.length > 0 && this.deps.room() > 0) this.publishReply(client, this.repliesDue.shift()!);
  }

  private publishReply(client: MqttClient, body: Buffer): void {
    this.publish(client, this.deps.topic('cmd/reply'), body, this.deps.replyOptions());
  }

  private publish(client: MqttClient, topic: string, body: Buffer, options: IClientPublishOptions): void {
    const generation = this.generation;
    this.inflight++;
    client.publish(topic, body, options, () => {
      if (generation !== this.generation) return;
      this.inflight--;
      this.deps.freed();
    });
  }
}
