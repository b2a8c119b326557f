/** What a collector is started with, and what it tells of itself (collector.ts). */
import type { IClientOptions } from 'mqtt';
import type { Log } from '../../log.ts';
import type { Db } from '../db/index.ts';

export interface CollectorOptions {
  db: Db;
  /** mqtt://host:port (mqtts:// for TLS). */
  url: string;
  /** mqtt.topic_prefix of the routers (default sluice). */
  prefix?: string;
  /** The shared subscription's group (default sluice-fleet): collectors of one group split the stream. */
  group?: string;
  /** This collector's client id (each connection adds -<n>); fixed, so the broker keeps its session. */
  clientId?: string;
  /** 5 (default; shared subscriptions) or 4 (MQTT 3.1.1: plain subscriptions). */
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string;
  /** Connections in the group (default 32): messages in flight at once, so usage reports per transaction. */
  connections?: number;
  /** Transactions of usage reports in flight at once (default 4). */
  writers?: number;
  /**
   * Session messages and statuses read and not yet stored, all routers together (default 1024: the first
   * connection's Receive Maximum), and per router (default 64), beyond which a router's are kept aside (intake.ts).
   */
  readAhead?: number;
  waitingPerRouter?: number;
  /** How long the broker keeps this collector's session while it is away (default 7 days). */
  sessionExpiryS?: number;
  /** MQTT keepalive, seconds (default 30). */
  keepaliveS?: number;
  /** Extra connection options (TLS files…). */
  mqtt?: Partial<IClientOptions>;
  /** Rows of the ledger received longer ago than this are pruned (retention.ts); null: kept for good. Default 35 d. */
  retentionMs?: number | null;
  /** How often the ledger's spans are brought up to date and pruned (default 60 s; 0: never). */
  retentionEveryMs?: number;
  log: Log;
  now?: () => number;
}

export interface CollectorStats {
  received: number;
  stored: number;
  duplicates: number;
  rejected: number;
  /** Refused messages by reason. */
  reasons: Record<string, number>;
  /** Attempts that failed on the database (each retried). */
  dbErrors: number;
  /** Waits dropped because their connection closed (the broker sends those messages again). */
  dropped: number;
  /** Messages kept aside (a router beyond its share of the queue), each stored later in its router's turn. */
  deferred: number;
  connected: number;
}

export interface Collector {
  stats(): CollectorStats;
  /** Resolves once every connection has subscribed (the first time). */
  ready: Promise<void>;
  stop(): Promise<void>;
}
