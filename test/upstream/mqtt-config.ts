/**
 * The MQTT sink's config for the tests, apart from mqtt-rig.ts so that a test which must not load mqtt.js (the rig's
 * subscriber imports it) can take it.
 */
import type { MqttConfig } from '../../src/config/mqtt.ts';

/** A sink on `url` with every other option at its default and a client id of its own; `overrides` on top. */
export function mqttConfig(url: string, overrides: Partial<MqttConfig> = {}): MqttConfig {
  return {
    enabled: true,
    url,
    username: '',
    password: '',
    clientId: `sluice-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    keepaliveMs: 60_000,
    protocol: 'auto',
    caFile: '',
    certFile: '',
    keyFile: '',
    topicPrefix: 'sluice',
    qos: 1,
    format: 'msgpack',
    maxPayload: 65536,
    maxInflight: 100,
    queueDir: '',
    queueMax: 1 << 20,
    usageExpiryMs: 3_600_000,
    statusIntervalMs: 60_000,
    commands: false,
    commandSecret: '',
    commandWindowMs: 300_000,
    ...overrides,
  };
}
