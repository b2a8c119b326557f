/** Shared setup for the fleet's tests: a real PostgreSQL 15 and mosquitto, a migrated database, routers to fake. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import { startCollector, type Collector, type CollectorOptions } from '../../src/fleet/collector/index.ts';
import { encode, loadMsgpack } from '../../src/upstream/mqtt/messages.ts';
import type { Log } from '../../src/log.ts';
import { Postgres } from '../peers/postgres.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { LogTail } from '../helpers/log-tails.ts';
import { until } from '../helpers/until.ts';

await loadMsgpack();

let databases = 0;

/** A fresh database on `pg`, migrated. */
export async function freshDb(pg: Postgres): Promise<Db> {
  const name = `fleet_${process.pid}_${++databases}`;
  const admin = await openPostgres({ url: pg.url(), max: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  await admin.close();
  const db = await openPostgres({ url: pg.url(name) });
  await migrate(db, FLEET_MIGRATIONS);
  return db;
}

/**
 * A Log that keeps its lines in `lines`; `tail`: also the last of them under that name, printed by a wait that times
 * out.
 */
export function recordingLog(lines: string[], tail?: string): Log {
  const last = tail === undefined ? undefined : new LogTail(tail);
  const put = (level: string) => (msg: string, fields?: object) => {
    const line = `${level} ${msg} ${JSON.stringify(fields ?? {})}`;
    lines.push(line);
    last?.push(`${line}\n`);
  };
  return { debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

export async function collector(
  db: Db,
  url: string,
  lines: string[],
  o: Partial<CollectorOptions> = {},
): Promise<Collector> {
  const c = await startCollector({ db, url, log: recordingLog(lines), connections: 2, keepaliveS: 5, ...o });
  await c.ready;
  return c;
}

/** A router that publishes hand-made messages (the same maps sluice's builders make: src/upstream/mqtt/messages.ts). */
export class FakeRouter {
  seq = 0;
  /** The seq of its last session message (what the next message's prev_session_seq says); null: say nothing. */
  lastSession: number | null = 0;
  private constructor(
    readonly name: string,
    readonly client: MqttClient,
  ) {}

  static async connect(name: string, url: string, options: IClientOptions = {}): Promise<FakeRouter> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200, ...options });
    return new FakeRouter(name, client);
  }

  async publish(kind: string, body: Record<string, unknown>, format: 'msgpack' | 'json' = 'msgpack'): Promise<void> {
    await this.client.publishAsync(`sluice/${this.name}/${kind}`, encode(format, body), { qos: 1 });
  }

  /** What each message numbered so far said as prev_session_seq: a redelivery says the same. */
  private readonly prevOf = new Map<number, number | null>();

  envelope(type: string, seq = ++this.seq, at = Date.now()) {
    const env = { v: 1, router: this.name, seq, type, at };
    if (type === 'status') return env;
    const prev = this.prevOf.has(seq) ? this.prevOf.get(seq)! : seq === this.seq ? this.lastSession : null;
    this.prevOf.set(seq, prev);
    if (type === 'session' && seq === this.seq && this.lastSession !== null) this.lastSession = seq;
    return prev === null ? env : { ...env, prev_session_seq: prev };
  }

  session(id: string, extra: Record<string, unknown> = {}) {
    return {
      id,
      mac: '02:00:00:00:00:01',
      ip: '10.0.0.2',
      user: null,
      plan: 'data',
      metric: 'bytes',
      state: 'ACTIVE',
      cause: null,
      allotment: 10_485_760,
      used: 0,
      bytes: 0,
      remaining: 10_485_760,
      started_at: Date.now(),
      expires_at: null,
      ended_at: null,
      at: Date.now(),
      rate_down: null,
      rate_up: null,
      ...extra,
    };
  }

  async started(id: string, amount: string, reference = `ref-${id}`, seq?: number): Promise<number> {
    const env = this.envelope('session', seq);
    await this.publish('session', {
      ...env,
      event: 'started',
      session: this.session(id),
      payment: { method: 'x402', reference, amount, asset: 'usdc', at: env.at },
    });
    return env.seq;
  }

  async usage(rows: Array<[string, number, number, number]>, seq?: number): Promise<number> {
    const env = this.envelope('usage', seq);
    await this.publish('usage', {
      ...env,
      part: 0,
      parts: 1,
      fields: ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'],
      sessions: rows.map(([id, up, down, used]) => [
        id,
        '02:00:00:00:00:01',
        null,
        'bytes',
        up,
        down,
        used,
        used,
        10_485_760,
        10_485_760 - used,
        'ACTIVE',
      ]),
    });
    return env.seq;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

export const waitFor = (cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> =>
  until(cond, timeoutMs, `waiting for ${what}`, 50);

export { Postgres };

/** What a test opened and its rig stops after the file's tests, last first (a collector stops, a router closes). */
export type Opened = { close?: () => Promise<void>; stop?: () => Promise<void> };

/**
 * A real PostgreSQL and mosquitto (persistent sessions) for one test file: started before its tests, stopped after
 * them, once what the tests put in `open` is stopped.
 */
export function fleetPeers(test: { before(fn: () => Promise<void>): void; after(fn: () => Promise<void>): void }): {
  pg: Postgres;
  broker: Mosquitto;
  open: Opened[];
} {
  const peers = { open: [] as Opened[] } as { pg: Postgres; broker: Mosquitto; open: Opened[] };
  test.before(async () => {
    [peers.pg, peers.broker] = await Promise.all([Postgres.create(), Mosquitto.create({ persistence: true })]);
  });
  test.after(async () => {
    for (const x of peers.open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
    await peers.broker?.close();
    await peers.pg?.close();
  });
  return peers;
}

/**
 * docs/fleet.md's broker configuration, read from the page (the code block after each file's name), with accounts:
 * the routers' (name → password) and the fleet's `fleet` account. The routers' listener is the broker's `url`, the
 * fleet's its `secondUrl`.
 */
export async function documentedBroker(routers: Record<string, string>, fleetPassword: string): Promise<Mosquitto> {
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const doc = readFileSync(fileURLToPath(new URL('../../docs/fleet.md', import.meta.url)), 'utf8');
  const block = (name: string): string => {
    const text = new RegExp(`\`${name.replaceAll('.', '\\.')}\`[^\\n]*\\n+\`\`\`\\n([\\s\\S]*?)\`\`\``).exec(doc)?.[1];
    if (text === undefined) throw new Error(`docs/fleet.md has no ${name}`);
    return text;
  };
  return Mosquitto.create({
    persistence: true,
    conf: {
      text: block('/etc/mosquitto/conf.d/sluice.conf'),
      files: {
        '/etc/mosquitto/sluice-routers.acl': block('/etc/mosquitto/sluice-routers.acl'),
        '/etc/mosquitto/sluice-fleet.acl': block('/etc/mosquitto/sluice-fleet.acl'),
      },
      passwords: {
        '/etc/mosquitto/sluice-routers.passwd': routers,
        '/etc/mosquitto/sluice-fleet.passwd': { fleet: fleetPassword },
      },
    },
  });
}
