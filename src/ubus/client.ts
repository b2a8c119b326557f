/**
 * The ubus client: calls, lookups, events, subscriptions and served objects over one UbusConnection, plus
 * libubus-style auto-reconnect (new client id, every object/listener/subscription registered again).
 */
import { EventEmitter } from 'node:events';
import { MsgType, Status, UBUS_DEFAULT_SOCKET } from './codec/index.ts';
import type { BlobmsgTable, UbusAttrs, UbusMessage, UbusSignature } from './codec/index.ts';
import { systemTimers, type Timers } from '../time.ts';
import { UbusConnection } from './connection.ts';
import type { RequestResult } from './connection.ts';
import { UbusStatusError, closedError, disconnectedError } from './errors.ts';
import { Registry } from './registry.ts';
import type { UbusRemovable } from './registry.ts';
import { tablesOf } from './server.ts';
import type { UbusObjectDef, UbusObjectHandle } from './server.ts';

export type { UbusRemovable } from './registry.ts';

export type UbusClientState = 'connecting' | 'ready' | 'reconnecting' | 'closing' | 'closed';

export interface ReconnectOptions {
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface UbusClientOptions {
  /** Default /var/run/ubus/ubus.sock. */
  socketPath?: string;
  /** Default per-request timeout (ubusd has none); 0 waits forever. Default 30 s like the ubus CLI. */
  timeoutMs?: number;
  /** Reconnect after the socket drops (ubusd restart). The first connect is never retried: it fails fast. */
  reconnect?: boolean | ReconnectOptions;
  /** For tests on fake time. */
  timers?: Timers;
}

export interface UbusObjectInfo {
  path: string;
  id: number;
  typeId: number;
  signature: UbusSignature;
}

export interface UbusCallOptions {
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class UbusClient extends EventEmitter {
  private stateValue: UbusClientState = 'connecting';
  private conn: UbusConnection | undefined;
  private readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly reconnectDelays: { min: number; max: number } | undefined;
  private readonly timers: Timers;
  private readonly registry: Registry;
  /** path → object id; an INVOKE answered NOT_FOUND drops the entry and looks the path up once more. */
  private readonly idCache = new Map<string, number>();
  private reconnectTimer: unknown;
  /**
   * 'closed' after close()/destroy() (ERR_UBUS_CLOSED) vs after a lost connection without reconnect
   * (ERR_UBUS_DISCONNECTED).
   */
  private closedByOwner = false;
  /** Public operations started and not yet finished (close() waits for them). */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(opts: UbusClientOptions) {
    super();
    this.socketPath = opts.socketPath ?? UBUS_DEFAULT_SOCKET;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.timers = opts.timers ?? systemTimers;
    const r = opts.reconnect;
    this.reconnectDelays =
      r === undefined || r === false
        ? undefined
        : {
            min: (r === true ? undefined : r.minDelayMs) ?? 100,
            max: (r === true ? undefined : r.maxDelayMs) ?? 5_000,
          };
    this.registry = new Registry({
      request: (type, peer, attrs, what) => this.request(type, peer, attrs, what),
      post: (msg, what) => this.readyConn(what).post(msg, what),
      warn: (err) => this.emit('warning', err),
      resolveId: (path) => this.resolveId(path),
      forgetId: (path) => this.idCache.delete(path),
      connected: () => this.stateValue !== 'closed' && this.conn?.state === 'ready',
      emit: (event, ...args) => this.emit(event, ...args),
    });
  }

  static async connect(opts: UbusClientOptions = {}): Promise<UbusClient> {
    const client = new UbusClient(opts);
    client.conn = await client.openConnection();
    client.setState('ready');
    return client;
  }

  get state(): UbusClientState {
    return this.stateValue;
  }

  /** The id ubusd gave this connection in HELLO (changes after a reconnect). */
  get clientId(): number {
    return this.conn?.clientId ?? 0;
  }

  // ------------------------------------------------------------------------------------------ requests

  /** All objects (no path), one exact path, or a prefix ("a.*"). A path that matches nothing rejects with status 4. */
  lookup(path?: string): Promise<UbusObjectInfo[]> {
    return this.op(`lookup ${path ?? '*'}`, () => this.lookupObjects(path));
  }

  /** Object id of an exact path. ACLs can hide an object behind STATUS 0 with no DATA: that is NOT_FOUND too. */
  lookupId(path: string): Promise<number> {
    return this.op(`lookup ${path}`, () => this.resolveId(path));
  }

  private async lookupObjects(path: string | undefined): Promise<UbusObjectInfo[]> {
    const attrs: UbusAttrs = path === undefined ? {} : { objpath: path };
    const { status, replies } = await this.request(MsgType.LOOKUP, 0, attrs, `lookup ${path ?? '*'}`);
    if (status !== Status.OK) throw new UbusStatusError(status, `lookup ${path ?? '*'}`);
    const out: UbusObjectInfo[] = [];
    for (const r of replies) {
      const a = r.attrs;
      if (a.objpath === undefined || a.objid === undefined) continue;
      out.push({ path: a.objpath, id: a.objid, typeId: a.objtype ?? 0, signature: a.signature ?? {} });
    }
    return out;
  }

  private async resolveId(path: string): Promise<number> {
    const cached = this.idCache.get(path);
    if (cached !== undefined) return cached;
    const found = (await this.lookupObjects(path)).find((o) => o.path === path);
    if (found === undefined) throw new UbusStatusError(Status.NOT_FOUND, `lookup ${path}`);
    this.idCache.set(path, found.id);
    return found.id;
  }

  /**
   * Calls a method; resolves with the reply data. Several DATA replies are merged into one table (later keys
   * win); use callAll() to get each one. No DATA at all → undefined.
   */
  async call(
    path: string | number,
    method: string,
    args: BlobmsgTable = {},
    opts: UbusCallOptions = {},
  ): Promise<BlobmsgTable | undefined> {
    const tables = await this.callAll(path, method, args, opts);
    if (tables.length === 0) return undefined;
    if (tables.length === 1) return tables[0];
    return Object.assign({}, ...tables) as BlobmsgTable;
  }

  /** Like call(), but returns every DATA reply in order (what the ubus CLI prints one by one). */
  async callAll(
    path: string | number,
    method: string,
    args: BlobmsgTable = {},
    opts: UbusCallOptions = {},
  ): Promise<BlobmsgTable[]> {
    return tablesOf(await this.callMessages(path, method, args, opts));
  }

  /**
   * The DATA messages of a call, undecoded beyond the codec (attrs.dataRaw keeps the exact body). `args` may be
   * a pre-encoded blobmsg table body. A non-zero status rejects with UbusStatusError.
   */
  callMessages(
    path: string | number,
    method: string,
    args: BlobmsgTable | Uint8Array = {},
    opts: UbusCallOptions = {},
  ): Promise<UbusMessage[]> {
    const what = `call ${String(path)} ${method}`;
    return this.op(what, () => this.invokeMessages(what, path, method, args, opts));
  }

  private async invokeMessages(
    what: string,
    path: string | number,
    method: string,
    args: BlobmsgTable | Uint8Array,
    opts: UbusCallOptions,
  ): Promise<UbusMessage[]> {
    const body: UbusAttrs = args instanceof Uint8Array ? { dataRaw: args } : { data: args };
    const invoke = async (id: number): Promise<RequestResult> =>
      this.request(MsgType.INVOKE, id, { objid: id, method, ...body }, what, opts.timeoutMs);
    let result: RequestResult;
    if (typeof path === 'number') {
      result = await invoke(path);
    } else {
      const wasCached = this.idCache.has(path);
      result = await invoke(await this.resolveId(path));
      if (result.status === Status.NOT_FOUND && wasCached) {
        // The object was re-registered under a new id since we cached it.
        this.idCache.delete(path);
        result = await invoke(await this.resolveId(path));
      }
    }
    if (result.status !== Status.OK)
      throw new UbusStatusError(result.status, what, tablesOf(result.replies), result.replies);
    return result.replies;
  }

  /** Sends an event through ubusd's event object (ubus send). Names starting with "ubus." are reserved (→ 6). */
  send(event: string, data: BlobmsgTable = {}): Promise<void> {
    return this.op(`send ${event}`, () => this.registry.eventCall('send', { id: event, data }, `send ${event}`));
  }

  /**
   * Listens for events; a pattern ending in '*' matches by prefix. One anonymous object per listen() call.
   * `msg` is the raw INVOKE (attrs.dataRaw holds the exact body).
   */
  async listen(
    patterns: string | string[],
    onEvent: (type: string, data: BlobmsgTable, msg: UbusMessage) => void,
  ): Promise<UbusRemovable> {
    const list = typeof patterns === 'string' ? [patterns] : [...patterns];
    if (list.length === 0) list.push('*');
    return this.op(`listen ${list.join(' ')}`, () => this.registry.listen(list, onEvent));
  }

  /**
   * Subscribes to an object's notifications (rejects with status 4 if it does not exist). When the object goes
   * away the client emits 'unsubscribed' (path) and re-attaches, emitting 'resubscribed', once it is back.
   */
  async subscribe(
    path: string,
    onNotify: (type: string, data: BlobmsgTable, msg: UbusMessage) => void,
  ): Promise<UbusRemovable> {
    return this.op(`subscribe ${path}`, () => this.registry.subscribe(path, onNotify));
  }

  /** Registers an object with methods. Handlers see only their policy's keys (see server.ts). */
  addObject(def: UbusObjectDef): Promise<UbusObjectHandle> {
    return this.op(`add object ${def.path}`, () => this.registry.addObject(def));
  }

  ping(): Promise<void> {
    return this.op('ping', async () => {
      const { status } = await this.request(MsgType.PING, 0, {}, 'ping');
      if (status !== Status.OK) throw new UbusStatusError(status, 'ping');
    });
  }

  // ------------------------------------------------------------------------------------------ lifecycle

  /**
   * Refuses new operations, lets the ones already started finish (each request bounded by its timeout) and the
   * async handlers still serving calls reply (bounded by timeoutMs), then closes the socket. Idempotent.
   */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.closedByOwner = true;
    if (this.stateValue !== 'closing') {
      this.setState('closing');
      this.timers.clearTimeout(this.reconnectTimer);
    }
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    // Replies of async handlers still running get out too, within one request timeout.
    await this.registry.dispatcher.idle(this.timeoutMs > 0 ? this.timeoutMs : DEFAULT_TIMEOUT_MS);
    await this.conn?.close();
    this.finishClose();
  }

  /** Aborts: pending requests fail with ERR_UBUS_CLOSED at once. Idempotent. */
  destroy(): void {
    if (this.stateValue === 'closed') return;
    this.closedByOwner = true;
    this.timers.clearTimeout(this.reconnectTimer);
    this.setState('closing');
    this.conn?.destroy();
    this.finishClose();
  }

  private finishClose(): void {
    if (this.stateValue === 'closed') return;
    this.registry.clear();
    this.setState('closed');
  }

  private setState(next: UbusClientState): void {
    if (this.stateValue === next) return;
    const prev = this.stateValue;
    this.stateValue = next;
    this.emit('state', next, prev);
  }

  private openConnection(): Promise<UbusConnection> {
    return UbusConnection.open({
      socketPath: this.socketPath,
      connectTimeoutMs: this.timeoutMs > 0 ? Math.min(this.timeoutMs, 10_000) : 10_000,
      timers: this.timers,
      onObjectMessage: (msg: UbusMessage, conn: UbusConnection) => this.registry.dispatcher.dispatch(msg, conn),
      onClose: (conn, err) => this.onConnectionClosed(conn, err),
      onWarning: (err) => this.emit('warning', err),
    });
  }

  private onConnectionClosed(conn: UbusConnection, err: Error | undefined): void {
    if (conn !== this.conn) return;
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    this.emit('disconnect', err);
    if (this.reconnectDelays === undefined) {
      this.finishClose();
      return;
    }
    this.setState('reconnecting');
    this.scheduleReconnect(this.reconnectDelays.min);
  }

  private scheduleReconnect(delayMs: number): void {
    this.reconnectTimer = this.timers.setTimeout(() => void this.reconnect(delayMs), delayMs);
  }

  private async reconnect(delayMs: number): Promise<void> {
    if (this.stateValue !== 'reconnecting') return;
    const next = Math.min(delayMs * 2, this.reconnectDelays!.max);
    let conn: UbusConnection;
    try {
      conn = await this.openConnection();
    } catch {
      if (this.stateValue === 'reconnecting') this.scheduleReconnect(next);
      return;
    }
    if (this.stateValue !== 'reconnecting') {
      conn.destroy();
      return;
    }
    this.conn = conn;
    this.idCache.clear();
    // If the new connection drops meanwhile, onConnectionClosed has already scheduled the next attempt.
    await this.registry.reRegisterAll(() => conn === this.conn && conn.state === 'ready');
    if (conn === this.conn && conn.state === 'ready' && this.stateValue === 'reconnecting') this.setState('ready');
  }

  // ------------------------------------------------------------------------------------------ internals

  /** Every public operation runs through here: refused once closing, counted so close() can wait for it. */
  private async op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') {
      throw this.closedByOwner ? closedError(what) : disconnectedError(what);
    }
    this.inflight++;
    try {
      return await fn();
    } finally {
      if (--this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private readyConn(what: string): UbusConnection {
    if (this.stateValue === 'closed' && this.closedByOwner) throw closedError(what);
    const conn = this.conn;
    if (conn === undefined || conn.state !== 'ready') throw disconnectedError(what);
    return conn;
  }

  /**
   * User requests fail fast while reconnecting; re-registration runs in state 'reconnecting' and is let through
   * as long as the new connection itself is up.
   */
  private request(
    type: number,
    peer: number,
    attrs: UbusAttrs,
    what: string,
    timeoutMs = this.timeoutMs,
  ): Promise<RequestResult> {
    let conn: UbusConnection;
    try {
      conn = this.readyConn(what);
    } catch (err) {
      return Promise.reject(err);
    }
    return conn.request(type, peer, attrs, timeoutMs, what);
  }
}
