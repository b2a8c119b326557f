/**
 * The protocol engine of the embedded broker: ubusd's behaviour (ubusd_proto.c, ubusd_obj.c, ubusd_event.c,
 * ubusd_monitor.c) as a pure state machine. It receives whole frames and emits frames through `send`; sockets,
 * queues and timers live in broker.ts.
 */
import {
  MsgType,
  Status,
  UBUS_MSG_LAST,
  UBUS_SYSTEM_OBJECT_ACL,
  UBUS_SYSTEM_OBJECT_EVENT,
  UBUS_SYSTEM_OBJECT_MONITOR,
  UbusCodecError,
  decodeMessage,
  encodeMessage,
  encodeMonitorAttrs,
} from '../codec/index.ts';
import type { UbusAttrs, UbusMessage } from '../codec/index.ts';
import { EventRegistry } from './events.ts';
import { IdTable, cryptoRandomU32 } from './ids.ts';
import type { RandomU32 } from './ids.ts';
import { ObjectRegistry } from './objects.ts';
import type { BrokerClient, BrokerObject } from './state.ts';

export interface BrokerCoreOptions {
  /** Delivers one encoded frame to a client; the transport applies queue limits. */
  send: (clientId: number, frame: Buffer) => void;
  user: string;
  group: string;
  /** ubusd allows `ubus monitor` only for uid 0 and gid 0. */
  allowMonitor: boolean;
  random?: RandomU32;
}

/** A handler's result: a status to answer with, or NO_REPLY when the request was forwarded or answered already. */
export const NO_REPLY = -1;

export class BrokerCore {
  readonly clients: IdTable<BrokerClient>;
  readonly objects: ObjectRegistry;
  readonly events: EventRegistry;
  private readonly monitors: BrokerClient[] = [];

  constructor(private readonly opts: BrokerCoreOptions) {
    const random = opts.random ?? cryptoRandomU32;
    this.clients = new IdTable(random);
    this.objects = new ObjectRegistry(this, random);
    this.events = new EventRegistry(this);
    this.objects.addSystemObject(UBUS_SYSTEM_OBJECT_EVENT, (cl, req, _f, method) => this.events.recv(cl, req, method));
    this.objects.addSystemObject(UBUS_SYSTEM_OBJECT_ACL, (cl, req, _f, method) => this.aclRecv(cl, req, method));
    this.objects.addSystemObject(UBUS_SYSTEM_OBJECT_MONITOR, (cl, _r, _f, method) => this.monitorRecv(cl, method));
  }

  /** A new connection: allocates its id, tells the transport (`register`), then sends HELLO. */
  connect(register?: (clientId: number) => void): number {
    const client: BrokerClient = {
      id: 0,
      user: this.opts.user,
      group: this.opts.group,
      objects: [],
      monitorSeq: null,
      closed: false,
    };
    client.id = this.clients.alloc(client);
    register?.(client.id);
    this.sendMsg(client, { type: MsgType.HELLO, seq: 0, peer: client.id, attrs: {} });
    return client.id;
  }

  /** The connection is gone: its objects go (with their events and unsubscribes), as in ubusd_proto_free_client. */
  disconnect(clientId: number): void {
    const client = this.clients.get(clientId);
    if (!client) return;
    client.closed = true;
    this.monitorStop(client);
    for (const obj of [...client.objects]) this.objects.free(obj);
    this.clients.delete(clientId);
  }

  /** One complete frame (header already validated by the frame reader). Never throws on bad input. */
  receive(clientId: number, frame: Buffer): void {
    const client = this.clients.get(clientId);
    if (!client || client.closed) return;
    this.monitorCopy(client, frame, false);
    const type = frame[1]!;
    const seq = frame.readUInt16BE(2);
    const peer = frame.readUInt32BE(4);
    let msg: UbusMessage;
    try {
      // DATA and SIGNATURE stay bytes: the broker forwards DATA verbatim and checks signatures in createType.
      msg = decodeMessage(frame, { blobmsg: false });
    } catch (err) {
      if (!(err instanceof UbusCodecError)) throw err;
      // ubusd parses attrs leniently and a request with unusable attrs ends in INVALID_ARGUMENT; replies are dropped.
      if (type !== MsgType.DATA && type !== MsgType.STATUS)
        this.sendStatus(client, seq, peer, type < UBUS_MSG_LAST ? Status.INVALID_ARGUMENT : Status.INVALID_COMMAND);
      return;
    }
    const ret = this.dispatch(client, msg, frame);
    if (ret !== NO_REPLY) this.sendStatus(client, seq, peer, ret);
  }

  private dispatch(client: BrokerClient, msg: UbusMessage, frame: Buffer): number {
    switch (msg.type) {
      case MsgType.PING: {
        // The request itself comes back retyped as DATA.
        const pong = Buffer.from(frame);
        pong[1] = MsgType.DATA;
        this.sendFrame(client, pong);
        return Status.OK;
      }
      case MsgType.LOOKUP:
        return this.objects.lookup(client, msg);
      case MsgType.ADD_OBJECT:
        return this.objects.add(client, msg);
      case MsgType.REMOVE_OBJECT:
        return this.objects.remove(client, msg);
      case MsgType.INVOKE:
        return this.invoke(client, msg, frame);
      case MsgType.DATA:
      case MsgType.STATUS:
        return this.response(client, msg, frame);
      case MsgType.SUBSCRIBE:
        return this.objects.subscribe(client, msg.attrs);
      case MsgType.UNSUBSCRIBE:
        return this.objects.unsubscribe(client, msg.attrs);
      case MsgType.NOTIFY:
        return this.notify(client, msg);
      default:
        return Status.INVALID_COMMAND;
    }
  }

  private invoke(client: BrokerClient, msg: UbusMessage, frame: Buffer): number {
    const { objid, method } = msg.attrs;
    if (method === undefined || objid === undefined) return Status.INVALID_ARGUMENT;
    const obj = this.objects.get(objid);
    if (!obj) return Status.NOT_FOUND;
    if (!obj.client) return obj.recv ? obj.recv(client, msg, frame, method) : Status.INVALID_COMMAND;
    this.forwardInvoke(client, obj, method, msg.seq, msg.attrs.dataRaw, false);
    return NO_REPLY;
  }

  /** ubusd_forward_invoke: same seq, peer = the caller's client id, attrs OBJID METHOD USER GROUP DATA. */
  forwardInvoke(
    caller: BrokerClient,
    obj: BrokerObject,
    method: string,
    seq: number,
    data: Uint8Array | undefined,
    noReply: boolean,
  ): void {
    if (!obj.client) return;
    const attrs: UbusAttrs = { objid: obj.id, method, user: caller.user, group: caller.group };
    if (noReply) attrs.noReply = true;
    if (data !== undefined) attrs.dataRaw = data;
    this.sendMsg(obj.client, { type: MsgType.INVOKE, seq, peer: caller.id, attrs });
  }

  /**
   * An object owner's DATA/STATUS for a forwarded call: OBJID must be the sender's, DATA needs a DATA attr and
   * STATUS a STATUS attr; it goes to the client named by the header peer, with peer rewritten to OBJID.
   */
  private response(client: BrokerClient, msg: UbusMessage, frame: Buffer): number {
    const { objid } = msg.attrs;
    if (objid === undefined) return NO_REPLY;
    if (msg.type === MsgType.STATUS && msg.attrs.status === undefined) return NO_REPLY;
    if (msg.type === MsgType.DATA && msg.attrs.dataRaw === undefined) return NO_REPLY;
    const obj = this.objects.get(objid);
    if (!obj || obj.client !== client) return NO_REPLY;
    const caller = this.clients.get(msg.peer);
    if (!caller) return NO_REPLY;
    const out = Buffer.from(frame);
    out.writeUInt32BE(objid, 4);
    this.sendFrame(caller, out);
    return NO_REPLY;
  }

  private notify(client: BrokerClient, msg: UbusMessage): number {
    const { objid, method } = msg.attrs;
    if (method === undefined || objid === undefined) return Status.INVALID_ARGUMENT;
    const noReply = msg.attrs.noReply === true;
    const obj = this.objects.get(objid);
    if (!obj) return Status.NOT_FOUND;
    if (obj.client !== client) return Status.PERMISSION_DENIED;
    if (!noReply) {
      this.sendMsg(client, {
        type: MsgType.STATUS,
        seq: msg.seq,
        peer: msg.peer,
        attrs: { objid: obj.id, subscribers: obj.subscribers.map((s) => s.subscriber.id), status: Status.OK },
      });
    }
    for (const s of [...obj.subscribers])
      this.forwardInvoke(client, s.subscriber, method, msg.seq, msg.attrs.dataRaw, noReply);
    return NO_REPLY;
  }

  /** Object 2 `query`: no ACL files here, so the list is empty; libubus servers only need the reply shape. */
  private aclRecv(client: BrokerClient, req: UbusMessage, method: string): number {
    if (method !== 'query') return Status.INVALID_COMMAND;
    this.sendMsg(client, {
      type: MsgType.DATA,
      seq: req.seq,
      peer: req.peer,
      attrs: { objid: UBUS_SYSTEM_OBJECT_ACL, data: { seq: 0, acl: [] } },
    });
    return Status.OK;
  }

  private monitorRecv(client: BrokerClient, method: string): number {
    if (!this.opts.allowMonitor) return Status.PERMISSION_DENIED;
    if (method === 'add') {
      this.monitorStop(client);
      client.monitorSeq = 0;
      this.monitors.push(client);
      return Status.OK;
    }
    if (method === 'remove') {
      this.monitorStop(client);
      return Status.OK;
    }
    return Status.METHOD_NOT_FOUND;
  }

  private monitorStop(client: BrokerClient): void {
    const i = this.monitors.indexOf(client);
    if (i >= 0) this.monitors.splice(i, 1);
    client.monitorSeq = null;
  }

  /** ubusd_monitor_message: a copy of every frame received or sent (MONITOR frames excepted) to each monitor. */
  private monitorCopy(client: BrokerClient, frame: Buffer, send: boolean): void {
    if (this.monitors.length === 0) return;
    const rawAttrs = encodeMonitorAttrs({
      client: client.id,
      peer: frame.readUInt32BE(4),
      seq: frame.readUInt16BE(2),
      type: frame[1]!,
      send,
      data: frame.subarray(12),
    });
    for (const m of [...this.monitors]) {
      m.monitorSeq = ((m.monitorSeq ?? 0) + 1) >>> 0;
      this.sendFrame(
        m,
        encodeMessage({ type: MsgType.MONITOR, seq: m.monitorSeq & 0xffff, peer: 0, attrs: {}, rawAttrs }),
      );
    }
  }

  sendStatus(client: BrokerClient, seq: number, peer: number, status: number): void {
    this.sendMsg(client, { type: MsgType.STATUS, seq, peer, attrs: { status: status >>> 0 } });
  }

  sendMsg(client: BrokerClient, msg: UbusMessage): void {
    this.sendFrame(client, encodeMessage(msg));
  }

  sendFrame(client: BrokerClient, frame: Buffer): void {
    if (frame[1] !== MsgType.MONITOR) this.monitorCopy(client, frame, true);
    if (client.closed) return;
    this.opts.send(client.id, frame);
  }
}
