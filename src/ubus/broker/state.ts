/** The broker's records, mirroring ubusd's structs (ubusd.h / ubusd_obj.h). */
import type { UbusMessage } from '../codec/index.ts';

export interface BrokerClient {
  id: number;
  /** Account names put into forwarded INVOKEs as USER/GROUP. */
  user: string;
  group: string;
  /** Newest first, like ubusd's list_add. */
  objects: BrokerObject[];
  /** Set when this client called monitor `add`. */
  monitorSeq: number | null;
  closed: boolean;
}

export interface ObjectType {
  id: number;
  refcount: number;
  /** Each method's blobmsg element exactly as registered (unpadded). */
  methods: Uint8Array[];
}

export interface Subscription {
  subscriber: BrokerObject;
  target: BrokerObject;
}

export interface BrokerObject {
  id: number;
  /** null for the system objects inside the broker. */
  client: BrokerClient | null;
  path: string | null;
  type: ObjectType | null;
  /** Newest first (ubusd list_add). */
  subscribers: Subscription[];
  /** Subscriptions where this object is the subscriber; newest first. */
  targets: Subscription[];
  /** Per-object counter for broker-originated NOTIFY/UNSUBSCRIBE seq. */
  invokeSeq: number;
  /** Event round in which this object last got an event: at most one delivery per object per event. */
  eventSeen: number;
  /** System objects answer invokes themselves. */
  recv?: (client: BrokerClient, request: UbusMessage, frame: Buffer, method: string) => number;
}

/** What the object and event registries call back on the broker (core.ts's BrokerCore, which holds both). */
export interface BrokerHost {
  sendMsg(client: BrokerClient, msg: UbusMessage): void;
  readonly objects: { get(id: number): BrokerObject | undefined };
  readonly events: { sendObjectEvent(obj: BrokerObject, added: boolean): void; removeObject(obj: BrokerObject): void };
}
