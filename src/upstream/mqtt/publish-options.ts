/**
 * What each publish goes out with: QoS, retain, and under MQTT 5 the payload's content type and a usage report's
 * expiry (docs/mqtt.md). A usage report already past `mqtt.usage_expiry` is not sent at all: the broker would drop it.
 */
import type { IClientPublishOptions } from 'mqtt';
import type { MqttConfig } from '../../config/index.ts';
import type { OutboxRecord } from '../outbox.ts';
import { contentType, RECORD_TYPE } from './messages.ts';

type Settings = Pick<MqttConfig, 'format' | 'qos' | 'usageExpiryMs'>;

/** The retained status (and the Last-Will that says offline): QoS 1, retained. */
export function statusOptions(cfg: Pick<MqttConfig, 'format'>, protocolVersion: 4 | 5): IClientPublishOptions {
  return { qos: 1, retain: true, ...properties(cfg, protocolVersion) };
}

/** A command's reply: QoS 1, never retained. */
export function replyOptions(cfg: Pick<MqttConfig, 'format'>, protocolVersion: 4 | 5): IClientPublishOptions {
  return { qos: 1, ...properties(cfg, protocolVersion) };
}

/** A record of the outbox at `now` (clock ms), or 'expired' for a usage report older than `mqtt.usage_expiry`. */
export function recordOptions(
  cfg: Settings,
  protocolVersion: 4 | 5,
  r: OutboxRecord,
  now: number,
): IClientPublishOptions | 'expired' {
  const options: IClientPublishOptions = { qos: cfg.qos };
  if (r.type === RECORD_TYPE.usage && cfg.usageExpiryMs > 0) {
    const left = cfg.usageExpiryMs - (now - r.at);
    if (left <= 0) return 'expired';
    if (protocolVersion === 5)
      options.properties = { contentType: contentType(cfg.format), messageExpiryInterval: Math.ceil(left / 1000) };
    return options;
  }
  return { ...options, ...properties(cfg, protocolVersion) };
}

function properties(cfg: Pick<MqttConfig, 'format'>, protocolVersion: 4 | 5): IClientPublishOptions {
  return protocolVersion === 5 ? { properties: { contentType: contentType(cfg.format) } } : {};
}
