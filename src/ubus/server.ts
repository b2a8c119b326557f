/**
 * Serving objects over a UbusConnection, the libubus + rpcd way: the ADD_OBJECT signature comes from each method's
 * policy, handlers see only the policy's keys, replies are DATA* then STATUS echoing (seq, peer), and a handler
 * may answer whenever its promise settles (a deferred request) without holding up other traffic.
 */
import { EventEmitter } from 'node:events';
import { MsgType, Status } from './codec/index.ts';
import type { BlobmsgTable, UbusAttrs, UbusMessage } from './codec/index.ts';
import type { RequestResult, UbusConnection } from './connection.ts';
import { SluiceError } from '../errors.ts';
import { UbusStatusError } from './errors.ts';

export interface UbusRequestContext {
  method: string;
  objectPath: string;
  /** The caller's ubus client id (header peer of the forwarded INVOKE). */
  callerId: number;
  /** The caller's account names, added by ubusd (absent when the broker does not send them). */
  user?: string;
  group?: string;
}

/** `data`: each table becomes one DATA frame, sent before the STATUS. `status` defaults to 0. */
export interface UbusReply {
  status?: number;
  data?: BlobmsgTable | BlobmsgTable[];
  /**
   * One table's body already encoded (encodeBlobmsgTable of `data`, which is then that one table): sent as it is, for
   * a handler that encoded it already (the API measures each reply against ubus's message limit).
   */
  encoded?: Uint8Array;
}

/** A DATA frame's body: a table, or its encoded bytes. */
type ReplyBody = BlobmsgTable | Uint8Array;

export interface UbusMethodDef {
  /** Argument name → BlobmsgType. Sent as the signature; arguments not named here never reach the handler. */
  policy?: Record<string, number>;
  handler(args: BlobmsgTable, ctx: UbusRequestContext): UbusReply | void | Promise<UbusReply | void>;
}

export interface UbusObjectDef {
  path: string;
  methods: Record<string, UbusMethodDef>;
}

export interface UbusObjectHandle {
  /** Current object id; it changes when the client re-registers the object after a reconnect. */
  readonly id: number;
  readonly path: string;
  /** Best known number of subscribers: from the last NOTIFY reply, at least 1 while ubusd reports any. */
  readonly subscriberCount: number;
  notify(type: string, data?: BlobmsgTable, opts?: { noReply?: boolean }): Promise<void>;
  on(event: 'subscribers', listener: (active: boolean) => void): this;
  off(event: 'subscribers', listener: (active: boolean) => void): this;
  remove(): Promise<void>;
}

/** What served objects need from the client: requests on the current connection. */
export interface ServerLink {
  request(type: number, peer: number, attrs: UbusAttrs, what: string): Promise<RequestResult>;
  post(msg: UbusMessage, what: string): void;
  warn(err: Error): void;
}

export function signatureOf(def: UbusObjectDef): Record<string, Record<string, number>> {
  const signature: Record<string, Record<string, number>> = {};
  for (const [name, method] of Object.entries(def.methods)) signature[name] = { ...(method.policy ?? {}) };
  return signature;
}

/**
 * Keeps only the policy's keys, like blobmsg_parse does, but never drops a key for its type: the API layer checks
 * types itself and must see a wrong type to report it. No policy at all means "pass everything".
 */
export function restrictToPolicy(args: BlobmsgTable, policy: Record<string, number> | undefined): BlobmsgTable {
  if (policy === undefined) return args;
  const out: BlobmsgTable = {};
  for (const key of Object.keys(policy)) {
    if (Object.prototype.hasOwnProperty.call(args, key)) out[key] = args[key]!;
  }
  return out;
}

/** A handler's error → ubus status: a numeric `ubusStatus` property wins, anything else is UNKNOWN_ERROR. */
function statusOfError(err: unknown): number {
  const status = (err as { ubusStatus?: unknown } | null)?.ubusStatus;
  return typeof status === 'number' && Number.isInteger(status) && status >= 0 && status <= 0xffffffff
    ? status
    : Status.UNKNOWN_ERROR;
}

export class ServedObject extends EventEmitter implements UbusObjectHandle {
  id = 0;
  subscriberCount = 0;

  /** `unregister`: no re-registration after a reconnect, and REMOVE_OBJECT if connected. */
  constructor(
    readonly def: UbusObjectDef,
    private readonly link: ServerLink,
    private readonly unregister: () => Promise<void>,
  ) {
    super();
  }

  get path(): string {
    return this.def.path;
  }

  /** With `noReply` the message is only written; otherwise this waits for ubusd's STATUS (not the subscribers'). */
  async notify(type: string, data: BlobmsgTable = {}, opts: { noReply?: boolean } = {}): Promise<void> {
    const attrs: UbusAttrs = { objid: this.id, method: type, data };
    if (opts.noReply === true) {
      this.link.post(
        { type: MsgType.NOTIFY, seq: 0, peer: this.id, attrs: { ...attrs, noReply: true } },
        `notify ${this.path} ${type}`,
      );
      return;
    }
    const { status, replies, final } = await this.link.request(
      MsgType.NOTIFY,
      this.id,
      attrs,
      `notify ${this.path} ${type}`,
    );
    if (final.attrs.subscribers !== undefined) this.subscriberCount = final.attrs.subscribers.length;
    if (status !== Status.OK) throw new UbusStatusError(status, `notify ${this.path} ${type}`, tablesOf(replies));
  }

  /** Called by the dispatcher for ubusd's STATUS reply to NOTIFY (SUBSCRIBERS list) and for NOTIFY{ACTIVE}. */
  setActive(active: boolean): void {
    const was = this.subscriberCount > 0;
    this.subscriberCount = active ? Math.max(1, this.subscriberCount) : 0;
    if (was !== active) this.emit('subscribers', active);
  }

  remove(): Promise<void> {
    return this.unregister();
  }
}

export type Served =
  | { kind: 'object'; object: ServedObject }
  | { kind: 'listener'; onEvent(type: string, data: BlobmsgTable, msg: UbusMessage): void }
  | {
      kind: 'subscriber';
      onNotify(type: string, data: BlobmsgTable, msg: UbusMessage): void;
      onUnsubscribe(target: number): void;
    };

export function tablesOf(replies: UbusMessage[]): BlobmsgTable[] {
  const out: BlobmsgTable[] = [];
  for (const r of replies) if (r.attrs.data !== undefined) out.push(r.attrs.data);
  return out;
}

/** Routes INVOKE/NOTIFY/UNSUBSCRIBE to the object named by OBJID. */
export class ObjectDispatcher {
  readonly byId = new Map<number, Served>();
  /** Async handlers still running (deferred requests). */
  private deferred = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly link: Pick<ServerLink, 'warn'>) {}

  /** Resolves once no deferred request is running, or after `maxWaitMs` (a handler may never settle). */
  idle(maxWaitMs: number): Promise<void> {
    if (this.deferred === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  dispatch(msg: UbusMessage, conn: UbusConnection): void {
    const objid = msg.attrs.objid;
    if (objid === undefined) return;
    const served = this.byId.get(objid);
    switch (msg.type) {
      case MsgType.INVOKE:
        return this.invoke(msg, objid, served, conn);
      case MsgType.NOTIFY:
        if (served?.kind === 'object' && msg.attrs.active !== undefined) served.object.setActive(msg.attrs.active);
        return;
      case MsgType.UNSUBSCRIBE:
        if (served?.kind === 'subscriber' && msg.attrs.target !== undefined) served.onUnsubscribe(msg.attrs.target);
        return;
    }
  }

  private invoke(msg: UbusMessage, objid: number, served: Served | undefined, conn: UbusConnection): void {
    const method = msg.attrs.method;
    const data = msg.attrs.data;
    // Event deliveries come with peer 0; libubus answers them but ubusd drops that answer, so we skip it.
    const wantsReply = msg.attrs.noReply !== true && !(served?.kind === 'listener' && msg.peer === 0);
    const reply = (status: number, tables: ReplyBody[] = []): void => {
      if (wantsReply) this.reply(conn, msg, objid, status, tables);
    };
    if (served === undefined) return reply(Status.NOT_FOUND);
    if (method === undefined) return reply(Status.INVALID_ARGUMENT);
    if (served.kind === 'listener' || served.kind === 'subscriber') {
      try {
        if (served.kind === 'listener') served.onEvent(method, data ?? {}, msg);
        else served.onNotify(method, data ?? {}, msg);
      } catch (err) {
        this.link.warn(
          new SluiceError('ERR_UBUS_HANDLER', `ubus event callback for '${method}' threw`, { cause: err }),
        );
      }
      return reply(Status.OK);
    }
    const object = served.object;
    const def = object.def.methods[method];
    if (def === undefined || !Object.prototype.hasOwnProperty.call(object.def.methods, method))
      return reply(Status.METHOD_NOT_FOUND);
    if (data === undefined) return reply(Status.INVALID_ARGUMENT);
    const ctx: UbusRequestContext = { method, objectPath: object.path, callerId: msg.peer };
    if (msg.attrs.user !== undefined) ctx.user = msg.attrs.user;
    if (msg.attrs.group !== undefined) ctx.group = msg.attrs.group;
    const fail = (err: unknown): void => {
      const status = statusOfError(err);
      if (status === Status.UNKNOWN_ERROR) {
        this.link.warn(
          new SluiceError('ERR_UBUS_HANDLER', `ubus handler ${object.path}.${method} failed`, { cause: err }),
        );
      }
      reply(status);
    };
    let result: UbusReply | void | Promise<UbusReply | void>;
    try {
      result = def.handler(restrictToPolicy(data, def.policy), ctx);
    } catch (err) {
      return fail(err);
    }
    if (result instanceof Promise) {
      this.deferred++;
      result
        .then((r) => this.finish(r, reply, fail), fail)
        .finally(() => {
          if (--this.deferred === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        });
    } else {
      this.finish(result, reply, fail);
    }
  }

  private finish(
    result: UbusReply | void,
    reply: (status: number, tables?: ReplyBody[]) => void,
    fail: (err: unknown) => void,
  ): void {
    if (result === undefined || result === null) return reply(Status.OK);
    const status = result.status ?? Status.OK;
    if (!Number.isInteger(status) || status < 0 || status > 0xffffffff)
      return fail(new TypeError(`bad ubus status ${String(status)}`));
    const tables =
      result.encoded !== undefined
        ? [result.encoded]
        : result.data === undefined
          ? []
          : Array.isArray(result.data)
            ? result.data
            : [result.data];
    reply(status, tables);
  }

  private reply(conn: UbusConnection, invoke: UbusMessage, objid: number, status: number, tables: ReplyBody[]): void {
    // A reply for a connection that has since dropped would carry a stale (seq, peer): drop it, as ubusd would.
    if (conn.state !== 'ready' && conn.state !== 'closing') return;
    const head = { seq: invoke.seq, peer: invoke.peer };
    let frames: Buffer[];
    try {
      frames = tables.map((data) =>
        conn.encode(
          {
            type: MsgType.DATA,
            ...head,
            attrs: data instanceof Uint8Array ? { objid, dataRaw: data } : { objid, data },
          },
          'reply',
        ),
      );
    } catch (err) {
      this.link.warn(new SluiceError('ERR_UBUS_HANDLER', 'ubus reply could not be encoded', { cause: err }));
      frames = [];
      status = Status.UNKNOWN_ERROR;
    }
    frames.push(conn.encode({ type: MsgType.STATUS, ...head, attrs: { status, objid } }, 'reply'));
    conn.writeFrames(frames);
  }
}
