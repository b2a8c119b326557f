/**
 * How the MQTT sink connects and lets go: which settings a connection is made with (a change to one reconnects), the
 * mqtt.js client options (its own reconnect off, clean session, a retained Last-Will
 * saying offline, TLS files read at each connect so a reload or a renewed certificate takes effect), which setting
 * a connection error points at, so the log names what to fix, and the clean end of a connection, bounded in time.
 */
import { readFileSync } from 'node:fs';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import type { MqttConfig } from '../../config/index.ts';
import { SluiceError } from '../../errors.ts';
import type { Clock, Timers } from '../../time.ts';
import { contentType } from './messages.ts';

/** The settings whose change needs a new connection. */
export const CONNECTION_OPTIONS = [
  'url',
  'username',
  'password',
  'clientId',
  'keepaliveMs',
  'protocol',
  'caFile',
  'certFile',
  'keyFile',
  'topicPrefix',
  'commands',
  'format',
] as const satisfies ReadonlyArray<keyof MqttConfig>;

/** The settings a reload changed that need a new connection ('router_id' among them: it is in every topic). */
export function reconnectFor(prev: MqttConfig, next: MqttConfig, routerChanged: boolean): string[] {
  const changed: string[] = CONNECTION_OPTIONS.filter((k) => prev[k] !== next[k]);
  if (routerChanged) changed.push('router_id');
  return changed;
}

/** The protocol a connection starts with: `auto` starts at 5 and falls back to 3.1.1 once the broker refuses it. */
export function firstProtocol(cfg: Pick<MqttConfig, 'protocol'>): 4 | 5 {
  return cfg.protocol === '3.1.1' ? 4 : 5;
}

/**
 * The options of one connection attempt. Throws ERR_CONFIG_INVALID naming the setting when a TLS file cannot be read.
 * `will` is the retained status published by the broker if the connection is lost.
 */
export function clientOptions(
  cfg: MqttConfig,
  protocolVersion: 4 | 5,
  will: { topic: string; payload: Buffer },
): IClientOptions {
  const tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  for (const [option, key, file] of [
    ['ca_file', 'ca', cfg.caFile],
    ['cert_file', 'cert', cfg.certFile],
    ['key_file', 'key', cfg.keyFile],
  ] as const) {
    if (file === '') continue;
    try {
      tls[key] = readFileSync(file);
    } catch (err) {
      throw new SluiceError('ERR_CONFIG_INVALID', `mqtt.${option}: cannot read ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return {
    protocolVersion,
    clientId: cfg.clientId,
    keepalive: Math.round(cfg.keepaliveMs / 1000),
    clean: true,
    // A fresh client per connection never resends a stale in-memory queue: the outbox is the only queue.
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    queueQoSZero: false,
    resubscribe: false,
    will: {
      topic: will.topic,
      payload: will.payload,
      qos: 1,
      retain: true,
      ...(protocolVersion === 5 && { properties: { contentType: contentType(cfg.format) } }),
    },
    ...(cfg.username !== '' && { username: cfg.username }),
    ...(cfg.password !== '' && { password: cfg.password }),
    ...tls,
    rejectUnauthorized: true,
  };
}

/** The CONNACK codes of a broker that refuses MQTT 5: 1 (3.1.1) / 132 (5), unacceptable protocol version. */
export function refusesVersion5(err: Error & { code?: unknown }): boolean {
  return err.code === 1 || err.code === 132;
}

/** The TLS alerts a broker sends when it refuses our client certificate (or the lack of one). */
const TLS_ALERT = new RegExp(
  'alert (certificate required|bad certificate|unknown ca|certificate unknown|certificate expired|' +
    'certificate revoked|unsupported certificate)',
  'i',
);

/** `<setting>: <message>`: the setting a connection error most likely points at. */
export function describeConnectError(err: Error & { code?: unknown }): string {
  const code = typeof err.code === 'number' ? err.code : null;
  let hint = 'mqtt.url';
  if (code === 4 || code === 5 || code === 134 || code === 135) hint = 'mqtt.username/mqtt.password';
  else if (code === 2 || code === 133) hint = 'mqtt.client_id';
  // A TLS alert is the broker refusing us (no client certificate, or one it does not trust); anything else about
  // certificates is ours refusing the broker's.
  else if (TLS_ALERT.test(err.message)) hint = 'mqtt.cert_file/mqtt.key_file';
  else if (/certificate|self.signed|SSL|TLS|altnames/i.test(err.message)) hint = 'mqtt.ca_file';
  return `${hint}: ${err.message}`;
}

/** A clean end's waits: all bounded by one deadline (clock ms). */
export interface EndWaits {
  clock: Clock;
  timers: Timers;
  deadline: number;
}

/**
 * Waits (bounded) for the in-flight acknowledgements, so they are not sent twice, then says offline in the retained
 * status (built once the wait is over, so its queue figures are the last); the DISCONNECT that follows (endClient)
 * keeps the broker from publishing the Last-Will.
 */
export async function sayOffline(
  client: MqttClient,
  waits: EndWaits,
  inflight: () => number,
  offline: () => { topic: string; payload: Buffer; options: IClientPublishOptions },
): Promise<void> {
  const { clock, timers, deadline } = waits;
  while (inflight() > 0 && clock.now() < deadline) await new Promise<void>((resolve) => timers.setTimeout(resolve, 20));
  const status = offline();
  await new Promise<void>((resolve) => {
    const timer = timers.setTimeout(resolve, Math.max(100, deadline - clock.now()));
    client.publish(status.topic, status.payload, status.options, () => {
      timers.clearTimeout(timer);
      resolve();
    });
  });
}

/** DISCONNECTs, or drops the socket once the deadline passed (at least 100 ms from now). */
export async function endClient(client: MqttClient, waits: EndWaits): Promise<void> {
  const { clock, timers, deadline } = waits;
  await new Promise<void>((resolve) => {
    const timer = timers.setTimeout(
      () => {
        client.end(true);
        resolve();
      },
      Math.max(100, deadline - clock.now()),
    );
    client.end(false, {}, () => {
      timers.clearTimeout(timer);
      resolve();
    });
  });
}
