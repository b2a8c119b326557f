/** The dashboard's MQTT connection for actions: publishes signed commands, hears `<prefix>/+/cmd/reply`. */
import type { CommandBus } from './actions.ts';

export interface MqttBusOptions {
  url: string;
  prefix: string;
  username?: string | undefined;
  password?: string | undefined;
  clientId?: string | undefined;
}

export async function connectMqttBus(o: MqttBusOptions): Promise<CommandBus & { close(): Promise<void> }> {
  const mqtt = (await import('mqtt')).default;
  const client = mqtt.connect(o.url, {
    clientId: o.clientId ?? `sluice-fleet-dashboard-${process.pid}`,
    clean: true,
    reconnectPeriod: 2000,
    ...(o.username !== undefined && { username: o.username }),
    ...(o.password !== undefined && { password: o.password }),
  });
  const handlers: Array<(topic: string, payload: Buffer) => void> = [];
  const replies = `${o.prefix}/+/cmd/reply`;
  client.on('connect', () => void client.subscribeAsync(replies, { qos: 1 }).catch(() => undefined));
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/cmd/reply')) for (const h of handlers) h(topic, payload);
  });
  client.on('error', () => undefined);
  return {
    async publish(topic, payload) {
      if (!client.connected) throw new Error(`not connected to the broker ${o.url}`);
      await client.publishAsync(topic, payload, { qos: 1 });
    },
    onReply(handler) {
      handlers.push(handler);
    },
    close: () => client.endAsync(),
  };
}
