/**
 * Objects, object types, paths and subscriptions (ubusd_obj.c, and the object handlers of ubusd_proto.c).
 */
import { BlobWriter, MsgType, Status, UbusCodecError, decodeBlobmsgNodes, readBlobAttrs } from '../codec/index.ts';
import type { UbusAttrs, UbusMessage } from '../codec/index.ts';
import { IdTable } from './ids.ts';
import type { RandomU32 } from './ids.ts';
import type { BrokerClient, BrokerHost, BrokerObject, ObjectType, Subscription } from './state.ts';

/** ubusd keeps paths in an AVL tree ordered by strcmp, i.e. by UTF-8 bytes. */
function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class ObjectRegistry {
  private readonly objects: IdTable<BrokerObject>;
  private readonly types: IdTable<ObjectType>;
  private readonly paths = new Map<string, BrokerObject>();
  private sortedPaths: string[] | null = [];

  constructor(
    private readonly core: BrokerHost,
    random: RandomU32,
  ) {
    this.objects = new IdTable(random);
    this.types = new IdTable(random);
  }

  get(id: number): BrokerObject | undefined {
    return this.objects.get(id);
  }

  get count(): number {
    return this.objects.size;
  }

  addSystemObject(id: number, recv: NonNullable<BrokerObject['recv']>): void {
    const obj = this.newObject(null, null);
    obj.id = id;
    obj.recv = recv;
    this.objects.reserve(id, obj);
  }

  private newObject(client: BrokerClient | null, type: ObjectType | null): BrokerObject {
    return { id: 0, client, path: null, type, subscribers: [], targets: [], invokeSeq: 0, eventSeen: 0 };
  }

  /** Objects with a path, in strcmp order. */
  private pathOrder(): string[] {
    this.sortedPaths ??= [...this.paths.keys()].sort(comparePaths);
    return this.sortedPaths;
  }

  /**
   * A new type from a SIGNATURE body. Every entry must be a valid named blobmsg element; if one is not, ubusd
   * creates the object without a type (it then never shows in LOOKUP), so this returns null.
   */
  private createType(signature: Uint8Array): ObjectType | null {
    const methods: Uint8Array[] = [];
    try {
      for (const a of readBlobAttrs(signature, 0, signature.length)) {
        const element = signature.subarray(a.start, a.start + a.len);
        const [node] = decodeBlobmsgNodes(element);
        if (!node || node.name === '') return null;
        methods.push(Buffer.from(element));
      }
    } catch (err) {
      if (err instanceof UbusCodecError) return null;
      throw err;
    }
    const type: ObjectType = { id: 0, refcount: 1, methods };
    type.id = this.types.alloc(type);
    return type;
  }

  private unrefType(type: ObjectType): void {
    if (--type.refcount > 0) return;
    this.types.delete(type.id);
  }

  /** ADD_OBJECT → DATA{OBJID[, OBJTYPE]} then STATUS 0; a duplicate path gives INVALID_ARGUMENT. */
  add(client: BrokerClient, msg: UbusMessage): number {
    const a = msg.attrs;
    let type: ObjectType | null = null;
    if (a.objtype !== undefined) {
      type = this.types.get(a.objtype) ?? null;
      if (type) type.refcount++;
    } else if (a.signatureRaw !== undefined) {
      type = this.createType(a.signatureRaw);
    }
    if (a.objpath !== undefined && this.paths.has(a.objpath)) {
      if (type) this.unrefType(type);
      return Status.INVALID_ARGUMENT;
    }
    const obj = this.newObject(null, type);
    obj.id = this.objects.alloc(obj);
    if (a.objpath !== undefined) {
      obj.path = a.objpath;
      this.paths.set(a.objpath, obj);
      this.sortedPaths = null;
      // Sent before the object has an owner, so even the registering client's own listeners hear it.
      this.core.events.sendObjectEvent(obj, true);
    }
    obj.client = client;
    client.objects.unshift(obj);

    const reply: UbusAttrs = { objid: obj.id };
    // ubusd only reports the type when a SIGNATURE came with the request, not when OBJTYPE reused one.
    if (a.signatureRaw !== undefined && obj.type) reply.objtype = obj.type.id;
    this.core.sendMsg(client, { type: MsgType.DATA, seq: msg.seq, peer: msg.peer, attrs: reply });
    return Status.OK;
  }

  /** REMOVE_OBJECT: own objects only → DATA{OBJID[, OBJTYPE when the type goes too]} then STATUS 0. */
  remove(client: BrokerClient, msg: UbusMessage): number {
    const { objid } = msg.attrs;
    if (objid === undefined) return Status.INVALID_ARGUMENT;
    const obj = this.objects.get(objid);
    if (!obj) return Status.NOT_FOUND;
    if (obj.client !== client) return Status.PERMISSION_DENIED;
    const reply: UbusAttrs = { objid: obj.id };
    if (obj.type && obj.type.refcount === 1) reply.objtype = obj.type.id;
    this.core.sendMsg(client, { type: MsgType.DATA, seq: msg.seq, peer: msg.peer, attrs: reply });
    this.free(obj);
    return Status.OK;
  }

  /** ubusd_free_object: drop its subscriptions both ways, its event patterns, its path (with the event), its id. */
  free(obj: BrokerObject): void {
    for (const s of [...obj.targets]) this.unsubscribeOne(s);
    for (const s of [...obj.subscribers]) {
      const sub = s.subscriber;
      if (sub.client) {
        sub.invokeSeq = (sub.invokeSeq + 1) & 0xffff;
        this.core.sendMsg(sub.client, {
          type: MsgType.UNSUBSCRIBE,
          seq: sub.invokeSeq,
          peer: 0,
          attrs: { objid: sub.id, target: obj.id },
        });
      }
      this.unsubscribeOne(s);
    }
    this.core.events.removeObject(obj);
    if (obj.path !== null) {
      this.core.events.sendObjectEvent(obj, false);
      this.paths.delete(obj.path);
      this.sortedPaths = null;
    }
    if (obj.client) {
      const list = obj.client.objects;
      const i = list.indexOf(obj);
      if (i >= 0) list.splice(i, 1);
    }
    this.objects.delete(obj.id);
    if (obj.type) this.unrefType(obj.type);
  }

  /** LOOKUP: all objects, one exact path, or a `prefix*`; one DATA per object with a type. */
  lookup(client: BrokerClient, msg: UbusMessage): number {
    const path = msg.attrs.objpath;
    if (path === undefined) {
      for (const p of this.pathOrder()) this.sendObject(client, msg, this.paths.get(p)!);
      return Status.OK;
    }
    if (path.length === 0) return Status.INVALID_ARGUMENT;
    if (!path.endsWith('*')) {
      const obj = this.paths.get(path);
      if (!obj) return Status.NOT_FOUND;
      this.sendObject(client, msg, obj);
      return Status.OK;
    }
    const prefix = Buffer.from(path.slice(0, -1), 'utf8');
    let found = false;
    for (const p of this.pathOrder()) {
      const b = Buffer.from(p, 'utf8');
      if (b.length < prefix.length || prefix.compare(b, 0, prefix.length) !== 0) continue;
      found = true; // a matching object without a type still counts as found, as in ubusd
      this.sendObject(client, msg, this.paths.get(p)!);
    }
    return found ? Status.OK : Status.NOT_FOUND;
  }

  private sendObject(client: BrokerClient, req: UbusMessage, obj: BrokerObject): void {
    if (!obj.type || obj.path === null) return;
    const w = BlobWriter.reusing();
    for (const m of obj.type.methods) {
      w.bytes(m);
      w.align();
    }
    this.core.sendMsg(client, {
      type: MsgType.DATA,
      seq: req.seq,
      peer: req.peer,
      attrs: { objpath: obj.path, objid: obj.id, objtype: obj.type.id, signatureRaw: w.finish() },
    });
  }

  /** SUBSCRIBE {OBJID=own subscriber object, TARGET=someone else's object}. */
  subscribe(client: BrokerClient, a: UbusAttrs): number {
    if (a.objid === undefined || a.target === undefined) return Status.INVALID_ARGUMENT;
    const obj = this.objects.get(a.objid);
    if (!obj) return Status.NOT_FOUND;
    if (obj.client !== client) return Status.INVALID_ARGUMENT;
    const target = this.objects.get(a.target);
    if (!target || !target.client) return Status.NOT_FOUND;
    if (target.client === client) return Status.INVALID_ARGUMENT;
    // ubusd lets anyone subscribe to an anonymous object of the same user or group; every client here shares
    // the broker's identity, so that check always passes.
    if (target.path === null && target.client.user !== client.user && target.client.group !== client.group)
      return Status.NOT_FOUND;
    const first = target.subscribers.length === 0;
    const s: Subscription = { subscriber: obj, target };
    target.subscribers.unshift(s);
    obj.targets.unshift(s);
    if (first) this.notifyActive(target);
    return Status.OK;
  }

  unsubscribe(client: BrokerClient, a: UbusAttrs): number {
    if (a.objid === undefined || a.target === undefined) return Status.INVALID_ARGUMENT;
    const obj = this.objects.get(a.objid);
    if (!obj) return Status.NOT_FOUND;
    if (obj.client !== client) return Status.INVALID_ARGUMENT;
    const s = obj.targets.find((x) => x.target.id === a.target);
    if (!s) return Status.NOT_FOUND;
    this.unsubscribeOne(s);
    return Status.OK;
  }

  private unsubscribeOne(s: Subscription): void {
    const drop = (list: Subscription[]): void => {
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1);
    };
    drop(s.target.subscribers);
    drop(s.subscriber.targets);
    if (s.target.subscribers.length === 0) this.notifyActive(s.target);
  }

  /** NOTIFY{OBJID, ACTIVE} to the owner when the subscriber set becomes non-empty or empty. */
  private notifyActive(target: BrokerObject): void {
    if (!target.client) return;
    target.invokeSeq = (target.invokeSeq + 1) & 0xffff;
    this.core.sendMsg(target.client, {
      type: MsgType.NOTIFY,
      seq: target.invokeSeq,
      peer: 0,
      attrs: { objid: target.id, active: target.subscribers.length > 0 },
    });
  }
}
