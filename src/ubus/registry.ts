/**
 * Everything a client has registered with ubusd (served objects, event listeners, subscriptions), so it can all be
 * registered again on a new connection (libubus does the same for objects in ubus_auto_connect). Subscriptions
 * follow their target's path: when the target goes away (UNSUBSCRIBE) or is missing after a reconnect, they wait
 * for `ubus.object.add` of that path and attach again.
 */
import { MsgType, Status, UBUS_SYSTEM_OBJECT_EVENT, asU32 } from './codec/index.ts';
import type { BlobmsgTable, UbusMessage } from './codec/index.ts';
import { UbusError, UbusStatusError } from './errors.ts';
import { ObjectDispatcher, ServedObject, signatureOf } from './server.ts';
import type { Served, ServerLink, UbusObjectDef } from './server.ts';

export interface RegistryLink extends ServerLink {
  /** Exact-path lookup through the client's id cache. */
  resolveId(path: string): Promise<number>;
  forgetId(path: string): void;
  /** True while the current connection is up (REMOVE_OBJECT is pointless otherwise: ubusd forgot the object). */
  connected(): boolean;
  /** Client events: 'unsubscribed' / 'resubscribed' (path). */
  emit(event: string, ...args: unknown[]): void;
}

export interface UbusRemovable {
  remove(): Promise<void>;
}

interface Registration {
  id: number;
  served: Served;
  /** Registers on the current connection; `initial` is false when re-registering after a reconnect. */
  register(initial: boolean): Promise<void>;
}

export class Registry {
  readonly dispatcher: ObjectDispatcher;
  private readonly regs = new Set<Registration>();
  /** Subscriptions whose target is currently missing → the target's path. */
  private readonly orphans = new Map<Registration, string>();
  /** Orphans with a SUBSCRIBE in flight: the object-add watch and retryOrphans must not both re-attach one (ubusd
   *  accepts duplicate subscriptions, so notifications would then arrive twice). */
  private readonly attaching = new Set<Registration>();
  /** Orphans asked to re-attach while an attach of theirs was under way (attachOrphan). */
  private readonly askedAgain = new Set<Registration>();
  private watch: Registration | undefined;

  constructor(private readonly link: RegistryLink) {
    this.dispatcher = new ObjectDispatcher(link);
  }

  async addObject(def: UbusObjectDef): Promise<ServedObject> {
    // remove() after close() is a no-op: the registry is empty by then.
    const object = new ServedObject(def, this.link, () => this.remove(reg, `remove ${def.path}`));
    const what = `add object ${def.path}`;
    const reg: Registration = {
      id: 0,
      served: { kind: 'object', object },
      register: async () => {
        const { status, replies } = await this.link.request(
          MsgType.ADD_OBJECT,
          0,
          { objpath: def.path, signature: signatureOf(def) },
          what,
        );
        const id = replies[0]?.attrs.objid;
        if (status !== Status.OK || id === undefined)
          throw new UbusStatusError(status === Status.OK ? Status.NO_DATA : status, what);
        object.id = id;
        object.subscriberCount = 0;
        this.bind(reg, id);
      },
    };
    await this.add(reg);
    return object;
  }

  async listen(
    patterns: string[],
    onEvent: (type: string, data: BlobmsgTable, msg: UbusMessage) => void,
  ): Promise<UbusRemovable> {
    const reg: Registration = {
      id: 0,
      served: { kind: 'listener', onEvent },
      register: async () => {
        this.bind(reg, await this.addAnonymous('listen'));
        // ubusd wants the object id as INT32 even above 2^31 (it rejects INT64): `| 0` keeps the u32 bit pattern
        // in a signed int32, which the codec writes as INT32.
        for (const pattern of patterns)
          await this.eventCall('register', { object: reg.id | 0, pattern }, `listen ${pattern}`);
      },
    };
    await this.add(reg);
    return { remove: () => this.remove(reg, 'listen') };
  }

  /** The first subscribe to a missing path rejects (NOT_FOUND), like libubus; later losses are waited out. */
  async subscribe(
    path: string,
    onNotify: (type: string, data: BlobmsgTable, msg: UbusMessage) => void,
  ): Promise<UbusRemovable> {
    const reg: Registration = {
      id: 0,
      served: { kind: 'subscriber', onNotify, onUnsubscribe: () => this.orphan(reg, path) },
      register: async (initial) => {
        this.bind(reg, await this.addAnonymous(`subscribe ${path}`));
        try {
          await this.attach(reg, path);
        } catch (err) {
          if (initial || !(err instanceof UbusStatusError && err.status === Status.NOT_FOUND)) throw err;
          this.orphan(reg, path);
        }
      },
    };
    await this.add(reg);
    return { remove: () => this.remove(reg, `subscribe ${path}`) };
  }

  /** After a reconnect: every registration again, in the order they were made. Stops if `current()` turns false. */
  async reRegisterAll(current: () => boolean): Promise<void> {
    this.dispatcher.byId.clear();
    for (const reg of [...this.regs]) {
      try {
        await reg.register(false);
      } catch (err) {
        if (!current()) return;
        this.link.warn(
          new UbusError(
            'ERR_UBUS_DISCONNECTED',
            Status.CONNECTION_FAILED,
            'ubus: re-registration after reconnect failed',
            { cause: err },
          ),
        );
      }
    }
    await this.retryOrphans();
  }

  clear(): void {
    this.dispatcher.byId.clear();
    this.regs.clear();
    this.orphans.clear();
    this.watch = undefined;
  }

  private bind(reg: Registration, id: number): void {
    reg.id = id;
    this.dispatcher.byId.set(id, reg.served);
  }

  private async add(reg: Registration): Promise<void> {
    try {
      await reg.register(true);
    } catch (err) {
      // A half-made registration (object added, pattern refused) must not linger on the bus.
      if (reg.id !== 0) await this.drop(reg.id, 'cleanup').catch(() => undefined);
      throw err;
    }
    this.regs.add(reg);
  }

  private async remove(reg: Registration, what: string): Promise<void> {
    this.orphans.delete(reg);
    if (!this.regs.delete(reg)) return;
    await this.drop(reg.id, what);
  }

  private async drop(id: number, what: string): Promise<void> {
    this.dispatcher.byId.delete(id);
    if (!this.link.connected()) return;
    const { status } = await this.link.request(MsgType.REMOVE_OBJECT, 0, { objid: id }, what);
    if (status !== Status.OK && status !== Status.NOT_FOUND) throw new UbusStatusError(status, what);
  }

  private async addAnonymous(what: string): Promise<number> {
    const { status, replies } = await this.link.request(MsgType.ADD_OBJECT, 0, {}, what);
    const id = replies[0]?.attrs.objid;
    if (status !== Status.OK || id === undefined)
      throw new UbusStatusError(status === Status.OK ? Status.NO_DATA : status, what);
    return id;
  }

  async eventCall(method: 'send' | 'register', data: BlobmsgTable, what: string): Promise<void> {
    const id = UBUS_SYSTEM_OBJECT_EVENT;
    const { status } = await this.link.request(MsgType.INVOKE, id, { objid: id, method, data }, what);
    if (status !== Status.OK) throw new UbusStatusError(status, what);
  }

  private async attach(reg: Registration, path: string, knownTarget?: number): Promise<void> {
    let target = knownTarget;
    if (target === undefined) {
      this.link.forgetId(path);
      target = await this.link.resolveId(path);
    }
    const { status } = await this.link.request(MsgType.SUBSCRIBE, 0, { objid: reg.id, target }, `subscribe ${path}`);
    if (status !== Status.OK) throw new UbusStatusError(status, `subscribe ${path}`);
    this.orphans.delete(reg);
  }

  private orphan(reg: Registration, path: string): void {
    if (this.orphans.has(reg)) return;
    this.orphans.set(reg, path);
    this.link.emit('unsubscribed', path);
    if (this.watch === undefined && this.link.connected()) void this.startWatch();
  }

  /** One listener for `ubus.object.add`, made the first time a subscription loses its target. */
  private async startWatch(): Promise<void> {
    const reg: Registration = {
      id: 0,
      served: {
        kind: 'listener',
        onEvent: (_type, data) => {
          const id = asU32(data.id);
          if (typeof data.path !== 'string' || id === undefined) return;
          for (const [sub, path] of this.orphans) if (path === data.path) this.reattach(sub, path, id);
        },
      },
      register: async () => {
        this.bind(reg, await this.addAnonymous('watch objects'));
        await this.eventCall('register', { object: reg.id | 0, pattern: 'ubus.object.add' }, 'listen ubus.object.add');
      },
    };
    this.watch = reg;
    try {
      await this.add(reg);
    } catch (err) {
      this.watch = undefined;
      this.link.warn(
        new UbusError('ERR_UBUS_DISCONNECTED', Status.CONNECTION_FAILED, 'ubus: cannot watch for objects', {
          cause: err,
        }),
      );
      return;
    }
    // The target may have come back before the watch was in place.
    await this.retryOrphans();
  }

  private reattach(reg: Registration, path: string, target?: number): void {
    this.attachOrphan(reg, path, target).catch((err: unknown) => {
      if (!(err instanceof UbusStatusError && err.status === Status.NOT_FOUND)) this.link.warn(err as Error);
    });
  }

  private async retryOrphans(): Promise<void> {
    for (const [reg, path] of [...this.orphans]) {
      try {
        await this.attachOrphan(reg, path);
      } catch {
        // still missing: the watch will see it appear
      }
    }
  }

  /**
   * Re-attaches an orphan once, whichever path asks first; emits 'resubscribed' only for the attach that did it. A
   * request that comes while an attach is under way is not dropped: if that attach fails, it is tried again. The
   * broker's NOT_FOUND for a lookup and its `ubus.object.add` for the object's return can arrive in one read, and the
   * event is handled before the failed attach has settled: dropped, the subscription stayed an orphan for good.
   */
  private async attachOrphan(reg: Registration, path: string, target?: number): Promise<void> {
    if (!this.orphans.has(reg)) return;
    if (this.attaching.has(reg)) {
      this.askedAgain.add(reg);
      return;
    }
    this.attaching.add(reg);
    try {
      for (let at = target; ; at = undefined) {
        this.askedAgain.delete(reg);
        try {
          await this.attach(reg, path, at);
          break;
        } catch (err) {
          if (!this.askedAgain.has(reg) || !this.orphans.has(reg)) throw err;
        }
      }
    } finally {
      this.attaching.delete(reg);
      this.askedAgain.delete(reg);
    }
    this.link.emit('resubscribed', path);
  }
}
