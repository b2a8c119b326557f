/**
 * Read ahead on one connection: mqtt.js hands a connection's messages over one at a time, the next only once the
 * previous one's PUBACK has gone, so a collector that acknowledged only what it had stored read one router's flood in
 * the order the broker queued it, and every other router's payment waited behind all of it. Held, a message's PUBACK
 * stays here (mqtt.js reads on) and leaves once the message is stored — or never, when its connection closes first:
 * the broker then sends it again on the next connection, as it does any message it has no PUBACK for. How many wait
 * unacknowledged at once is the broker's to bound: the connection's Receive Maximum (MQTT 5).
 *
 * mqtt.js has no API for this: its private `_sendPacket` is wrapped on this one client (checked against the mqtt.js
 * the lockfile pins by test/fleet/fair.test.ts, which fails if a held PUBACK leaves early or never).
 */
import type { MqttClient } from 'mqtt';

type Send = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

export interface HeldAcks {
  /** The next PUBACK for `messageId` is held (mqtt.js reads the next message at once). */
  hold(messageId: number): void;
  /** Sends the held PUBACK for `messageId` (the message is stored). */
  release(messageId: number): void;
  /** Forgets every held PUBACK (the connection closed: the broker sends those messages again). */
  forget(): void;
}

export function holdAcks(client: MqttClient): HeldAcks {
  const c = client as unknown as { _sendPacket: Send };
  const send: Send = c._sendPacket.bind(client);
  /** Message ids to hold → their PUBACK once mqtt.js has tried to send it (null: not yet). */
  const held = new Map<number, { cmd: string; messageId?: number } | null>();
  /** Released before mqtt.js tried to send it: send it as it comes. */
  const early = new Set<number>();
  c._sendPacket = (packet, cb, ...rest) => {
    const id = packet.messageId;
    if (packet.cmd !== 'puback' || id === undefined || !held.has(id)) return send(packet, cb, ...rest);
    if (early.delete(id)) {
      held.delete(id);
      return send(packet, cb, ...rest);
    }
    held.set(id, packet);
    // mqtt.js goes on to the next message now; the PUBACK leaves on release.
    cb?.();
  };
  return {
    hold(messageId) {
      held.set(messageId, null);
    },
    release(messageId) {
      if (!held.has(messageId)) return;
      const packet = held.get(messageId);
      if (packet === null || packet === undefined) {
        early.add(messageId);
        return;
      }
      held.delete(messageId);
      send(packet);
    },
    forget() {
      held.clear();
      early.clear();
    },
  };
}
