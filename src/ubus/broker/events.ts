/**
 * System object 1 (ubusd_event.c): `register` {object, pattern} and `send` {id, data}, and delivery of events as
 * INVOKE peer 0 to matching listener objects.
 */
import {
  BlobmsgType,
  MsgType,
  Status,
  UBUS_SYSTEM_OBJECT_MAX,
  encodeBlobmsgNodes,
  encodeBlobmsgTable,
  tryDecodeBlobmsgNodes,
} from '../codec/index.ts';
import type { BlobmsgNode, UbusMessage } from '../codec/index.ts';
import type { BrokerClient, BrokerHost, BrokerObject } from './state.ts';

interface EventPattern {
  /** The pattern without its trailing `*`. */
  key: string;
  keyBytes: Buffer;
  partial: boolean;
  obj: BrokerObject;
}

/**
 * blobmsg_parse with a policy: the last element with a policy name counts, and only when its type matches. A
 * missing or unparsable body behaves as if every field were missing.
 */
function parsePolicy<K extends string>(
  body: Uint8Array | undefined,
  policy: Record<K, number>,
): Partial<Record<K, BlobmsgNode>> {
  const out: Partial<Record<K, BlobmsgNode>> = {};
  const nodes = body === undefined ? undefined : tryDecodeBlobmsgNodes(body);
  for (const n of nodes ?? []) {
    if (Object.hasOwn(policy, n.name) && policy[n.name as K] === n.type) out[n.name as K] = n;
  }
  return out;
}

export class EventRegistry {
  /** Kept sorted by key bytes (ubusd's AVL tree), duplicates in insertion order. */
  private patterns: EventPattern[] = [];
  /** ubusd's global event counter: the seq of delivered events. */
  private eventSeq = 0;
  /** Increments per event so each object gets one copy even when several of its patterns match. */
  private round = 1;

  constructor(private readonly core: BrokerHost) {}

  get patternCount(): number {
    return this.patterns.length;
  }

  recv(client: BrokerClient, req: UbusMessage, method: string): number {
    if (method === 'register') return this.register(client, req.attrs.dataRaw);
    if (method === 'send') return this.send(client, req.attrs.dataRaw);
    return Status.INVALID_COMMAND;
  }

  private register(client: BrokerClient, data: Uint8Array | undefined): number {
    const { object: objectNode, pattern: patternNode } = parsePolicy(data, {
      object: BlobmsgType.INT32,
      pattern: BlobmsgType.STRING,
    });
    if (!objectNode || !patternNode) return Status.INVALID_ARGUMENT;
    const id = (objectNode.value as number) >>> 0;
    if (id < UBUS_SYSTEM_OBJECT_MAX) return Status.PERMISSION_DENIED;
    const obj = this.core.objects.get(id);
    if (!obj) return Status.NOT_FOUND;
    if (obj.client !== client) return Status.PERMISSION_DENIED;
    let key = patternNode.value as string;
    if (key.length === 0) return Status.PERMISSION_DENIED;
    const partial = key.endsWith('*');
    if (partial) key = key.slice(0, -1);
    const p: EventPattern = { key, keyBytes: Buffer.from(key, 'utf8'), partial, obj };
    let at = this.patterns.length;
    while (at > 0 && Buffer.compare(this.patterns[at - 1]!.keyBytes, p.keyBytes) > 0) at--;
    this.patterns.splice(at, 0, p);
    return Status.OK;
  }

  private send(client: BrokerClient, data: Uint8Array | undefined): number {
    const { id: idNode, data: dataNode } = parsePolicy(data, { id: BlobmsgType.STRING, data: BlobmsgType.TABLE });
    if (!idNode || !dataNode) return Status.INVALID_ARGUMENT;
    const id = idNode.value as string;
    if (id.startsWith('ubus.')) return Status.PERMISSION_DENIED;
    // Lossless nodes keep leaf payloads verbatim, so re-encoding the children reproduces the sent table body.
    this.deliver(client, id, encodeBlobmsgNodes(dataNode.children ?? []));
    return Status.OK;
  }

  /** `ubus.object.add` / `ubus.object.remove` {id, path}; from the broker itself, so nobody is skipped. */
  sendObjectEvent(obj: BrokerObject, add: boolean): void {
    const body = encodeBlobmsgTable({ id: obj.id, path: obj.path ?? '' }, { id: BlobmsgType.INT32 });
    this.deliver(null, add ? 'ubus.object.add' : 'ubus.object.remove', body);
  }

  /** Each matching object once, never back to the sending client. */
  private deliver(sender: BrokerClient | null, id: string, body: Uint8Array): void {
    this.round++;
    const idBytes = Buffer.from(id, 'utf8');
    for (const p of [...this.patterns]) {
      const matches = p.partial
        ? idBytes.length >= p.keyBytes.length && p.keyBytes.compare(idBytes, 0, p.keyBytes.length) === 0
        : p.key === id;
      if (!matches) continue;
      const obj = p.obj;
      if (obj.client === sender || !obj.client) continue;
      if (obj.eventSeen === this.round) continue;
      obj.eventSeen = this.round;
      this.eventSeq = (this.eventSeq + 1) & 0xffff;
      this.core.sendMsg(obj.client, {
        type: MsgType.INVOKE,
        seq: this.eventSeq,
        peer: 0,
        attrs: { objid: obj.id, method: id, dataRaw: body },
      });
    }
  }

  removeObject(obj: BrokerObject): void {
    this.patterns = this.patterns.filter((p) => p.obj !== obj);
  }
}
