/**
 * The `mqtt` section: broker, credentials and TLS files, topics and payload format, the durable queue, and the
 * optional signed command channel. Validated only when enabled, like every upstream section; problems name
 * `mqtt.<option>`. docs/configuration.md and docs/mqtt.md document every option.
 */
import { posix } from 'node:path';
import type { SectionReader } from './reader.ts';
import {
  isAbsolutePath,
  parseBool,
  parseInteger,
  parseQuantity,
  parseSecondsToMs,
  parseUrl,
  type Parsed,
} from './values.ts';

export type MqttFormat = 'msgpack' | 'json';
/** `auto` tries MQTT 5 and falls back to 3.1.1 when the broker refuses it. */
export type MqttProtocol = 'auto' | '5' | '3.1.1';

export interface MqttConfig {
  enabled: boolean;
  /** `mqtt://` `mqtts://` `ws://` `wss://` with a host (port optional). */
  url: string;
  username: string;
  password: string;
  /** Default `sluice-<router_id>`. */
  clientId: string;
  keepaliveMs: number;
  protocol: MqttProtocol;
  /** PEM files; `caFile` set (or an mqtts/wss URL) means TLS. */
  caFile: string;
  certFile: string;
  keyFile: string;
  topicPrefix: string;
  qos: 0 | 1 | 2;
  format: MqttFormat;
  /** A usage report larger than this is split into several messages. */
  maxPayload: number;
  /** Publishes awaiting their acknowledgement at once (mqtt.js hangs past 65,535 QoS 1 in flight). */
  maxInflight: number;
  /** Where queued messages wait on flash; empty = `<main.state_dir>/mqtt-outbox`. */
  queueDir: string;
  /** Bytes the queue may hold before the oldest usage reports are dropped. */
  queueMax: number;
  /** MQTT 5 message expiry of usage reports (0 = none). */
  usageExpiryMs: number;
  /** The retained status message is refreshed this often. */
  statusIntervalMs: number;
  commands: boolean;
  commandSecret: string;
  /** A command's timestamp must be within this of the router's clock. */
  commandWindowMs: number;
}

export const MQTT_DEFAULTS = {
  topic_prefix: 'sluice',
  qos: 1,
  format: 'msgpack',
  protocol: 'auto',
  keepalive: 60,
  max_payload: 65536,
  max_inflight: 100,
  queue_max: 1 << 20,
  usage_expiry: 3600,
  status_interval: 60,
  command_window: 300,
} as const;

const MIN_COMMAND_SECRET = 16;

/**
 * The kernel's virtual file systems hold no queue: nothing written there reaches flash, and creating a directory under
 * /proc made Node's mkdir spin for ever (a start that never finished, a meter that never ticked).
 */
function virtualFs(dir: string): string | undefined {
  return /^\/(proc|sys|dev)(\/|$)/.test(posix.normalize(dir))
    ? 'must be on flash or a disk, not under /proc, /sys or /dev'
    : undefined;
}

export function readMqttSection(r: SectionReader, enabled: boolean, routerId: string): MqttConfig {
  const d = MQTT_DEFAULTS;
  const int =
    (min: number, max: number) =>
    (v: string): Parsed<number> =>
      parseInteger(v, min, max);
  const seconds =
    (min: number, max: number) =>
    (v: string): Parsed<number> =>
      parseSecondsToMs(v, min, max);
  const bytes =
    (min: number, max: number) =>
    (v: string): Parsed<number> => {
      const p = parseQuantity(v, 'bytes');
      if (!p.ok) return p;
      return p.value >= BigInt(min) && p.value <= BigInt(max)
        ? { ok: true, value: Number(p.value) }
        : { ok: false, reason: `must be from ${min} to ${max} bytes (units like KiB, MiB allowed)` };
    };
  const path = (v: string): string | undefined => (isAbsolutePath(v) ? undefined : 'must be an absolute path');
  const qos = r.parsed('qos', d.qos, int(0, 2));
  const commands = r.parsed('commands', false, parseBool);
  const config: MqttConfig = {
    enabled,
    url: r.required('url', '', (v) => parseUrl(v, ['mqtt:', 'mqtts:', 'ws:', 'wss:'])),
    username: r.string('username', ''),
    password: r.string('password', ''),
    clientId: r.string('client_id', `sluice-${routerId}`, (v) =>
      /^[\x21-\x7e]{1,128}$/.test(v) ? undefined : 'must be 1 to 128 printable ASCII characters without spaces',
    ),
    keepaliveMs: r.parsed('keepalive', d.keepalive * 1000, seconds(5, 3600)),
    protocol: r.oneOf('protocol', ['auto', '5', '3.1.1'] as const, d.protocol),
    caFile: r.string('ca_file', '', path),
    certFile: r.string('cert_file', '', path),
    keyFile: r.string('key_file', '', path),
    topicPrefix: r.string('topic_prefix', d.topic_prefix, (v) =>
      v !== '' && !/[+#\0]/.test(v) && !v.startsWith('/') && !v.endsWith('/') && v.length <= 200
        ? undefined
        : 'must be an MQTT topic without + # or a leading/trailing /',
    ),
    qos: qos === 0 || qos === 2 ? qos : 1,
    format: r.oneOf('format', ['msgpack', 'json'] as const, d.format),
    maxPayload: r.parsed('max_payload', d.max_payload, bytes(1024, 256 * 1024 * 1024)),
    maxInflight: r.parsed('max_inflight', d.max_inflight, int(1, 65535)),
    queueDir: r.string('queue_dir', '', (v) => path(v) ?? virtualFs(v)),
    queueMax: r.parsed('queue_max', d.queue_max, bytes(64 * 1024, 1024 * 1024 * 1024)),
    usageExpiryMs: r.parsed('usage_expiry', d.usage_expiry * 1000, seconds(0, 30 * 86400)),
    statusIntervalMs: r.parsed('status_interval', d.status_interval * 1000, seconds(5, 86400)),
    commands,
    commandSecret: r.string('command_secret', ''),
    commandWindowMs: r.parsed('command_window', d.command_window * 1000, seconds(5, 3600)),
  };
  if ((config.certFile === '') !== (config.keyFile === '')) {
    r.report(
      config.certFile === '' ? 'cert_file' : 'key_file',
      'is required with cert_file/key_file (a client certificate needs both)',
    );
  }
  if (commands && config.commandSecret.length < MIN_COMMAND_SECRET) {
    r.report('command_secret', `is required while commands is on: at least ${MIN_COMMAND_SECRET} characters`);
  }
  if (config.maxPayload > config.queueMax)
    r.report('max_payload', `must be at most queue_max (${config.queueMax})`, String(config.maxPayload));
  return config;
}
