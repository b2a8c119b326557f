/**
 * The lease service's broker connection: a persistent session, so what routers send while the service is away (a
 * reconnect under load, a broker or fleet restart) waits at the broker instead of being lost (a sale lost would
 * register no lease), subscribed again on every connect, and the operator told once per outage.
 */
import type { MqttClient } from 'mqtt';
import type { Log } from '../../log.ts';

/** The broker keeps what routers send while the service is away this long: a reconnect's or a restart's gap. */
export const VENUE_SESSION_EXPIRY_S = 300;

export interface VenueBrokerOptions {
  url: string;
  clientId?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  topics: string[];
  log: Log;
}

export async function connectVenueBroker(o: VenueBrokerOptions): Promise<{ client: MqttClient; ready: Promise<void> }> {
  const mqtt = (await import('mqtt')).default;
  const client: MqttClient = mqtt.connect(o.url, {
    protocolVersion: 5,
    clientId: o.clientId ?? `sluice-fleet-venue-${process.pid}`,
    clean: false,
    // mqtt.js's own resubscribe skips topics it thinks the broker kept.
    resubscribe: false,
    properties: { sessionExpiryInterval: VENUE_SESSION_EXPIRY_S },
    reconnectPeriod: 1000,
    ...(o.username !== undefined && { username: o.username }),
    ...(o.password !== undefined && { password: o.password }),
  });
  client.on('error', (err) => o.log.warn('fleet venue: mqtt', { reason: err.message }));
  let away = false;
  client.on('offline', () => {
    if (away) return;
    away = true;
    o.log.warn("fleet venue: broker connection lost; the routers' messages wait at the broker", {
      held_for_s: VENUE_SESSION_EXPIRY_S,
    });
  });
  const ready = new Promise<void>((resolve) => {
    client.on('connect', (ack) => {
      if (away) {
        away = false;
        o.log.info('fleet venue: broker connection back', { session_present: ack.sessionPresent });
      }
      client.subscribe(o.topics, { qos: 1 }, () => resolve());
    });
  });
  return { client, ready };
}
