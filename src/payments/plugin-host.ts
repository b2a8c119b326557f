/**
 * The root's side of the plugin list: runs every plugin's register phase first (registrations.ts: its ubus methods,
 * LAN routes, x402 schemes), then opens every plugin the config switches on (a damaged state file leaves that one
 * out: method-state.ts) and runs each hook over the opened parts in the list's order, so daemon.ts names no method.
 * A reload switches methods on and off with no restart (switchTo): one switched on opens then (reconciled, wired and
 * started as at a start) and sells; one switched off stops selling (out of the registry, its LAN face, x402 offer and
 * form gone) but stays open, so the sessions it sold run on untouched, and sells again when switched back on. A plugin
 * with an upstream sink of its own (RADIUS) is closed whole instead (its sink drained, its listeners closed) and
 * opens anew when switched back on: a sink half open would report what no one asked for. What the host holds for one
 * plugin (what it registered, opened, started and closed together) is opened-plugin.ts's.
 */
import type { Config, OwnSection, RunningParts } from '../config/index.ts';
import type { Log } from '../log.ts';
import { OpenedPlugin } from './opened-plugin.ts';
import { lanMethodOf, registerPlugins } from './registrations.ts';
import type {
  LanParts,
  MethodSwitch,
  PaymentPart,
  PaymentPlugin,
  PluginHost,
  DoorServices,
  RegisteredPlugin,
} from './plugin.ts';
import type { UbusFace, X402Face } from './plugin-faces.ts';
import type { PaymentMethod } from './types.ts';
import type { Session } from '../sessions/index.ts';
import type { UpstreamSink } from '../upstream/index.ts';

/** A section a switch names is on: `enabled`, or present at all (`tollgate` is null when off). */
const switchedOn = (config: Config, key: MethodSwitch): boolean => config[key]?.enabled === true;

/** Where the methods sell (the merchant's registry: payments/registry.ts). */
export interface SellingRegistry {
  register(method: PaymentMethod): void;
  unregister(name: string): void;
}

/** Where the plugins' sinks go (upstream/host.ts SinkHost): joined when opened, left when switched off. */
export interface SinkRegistrar {
  join(sink: UpstreamSink): Promise<void>;
  leave(sink: UpstreamSink): Promise<void>;
}

/** What every plugin's host holds but its registrars and what PaymentPlugins itself answers. */
export type HostParts = Omit<
  PluginHost,
  'door' | 'sink' | 'methodBehind' | 'onSession' | 'stats' | 'background' | 'atStart'
> & {
  sinks: SinkRegistrar;
};

export class PaymentPlugins {
  private registry: SellingRegistry | undefined;
  /** What this list put in the registry, by name (the registry also holds grant and the owner's own methods). */
  private readonly inRegistry = new Map<string, PaymentMethod>();

  private constructor(
    private readonly opened: OpenedPlugin[],
    private readonly servesListeners: Array<() => Promise<void>>,
    private readonly parts: HostParts,
  ) {}

  /** The list, in its order, whether or not each plugin opened. */
  get plugins(): readonly PaymentPlugin[] {
    return this.opened.map((o) => o.plugin);
  }

  /** What each plugin registered, in the list's order (what the ubus table and the LAN routes are made of). */
  get registrations(): readonly RegisteredPlugin[] {
    return this.opened.map((o) => o.registered);
  }

  /** The config sections the plugins of a list bring (the loader reads them beside its own). */
  static sectionsOf(plugins: readonly PaymentPlugin[]): OwnSection[] {
    return plugins.flatMap((p) => (p.section ? [p.section] : []));
  }

  /** The config sections this list's plugins bring (each reload reads them too). */
  get sections(): OwnSection[] {
    return PaymentPlugins.sectionsOf(this.plugins);
  }

  /**
   * Runs the register phase of every plugin of the list, then opens, in the list's order, each plugin whose switch is
   * on (null: off, or left out as damaged).
   */
  static async open(plugins: readonly PaymentPlugin[], context: HostParts): Promise<PaymentPlugins> {
    const listeners: Array<() => Promise<void>> = [];
    const parts: HostParts = {
      ...context,
      servesChanged: async () => {
        await Promise.all([context.servesChanged?.(), ...listeners.map((listener) => listener())]);
      },
    };
    const opened = registerPlugins(plugins).map((registered) => new OpenedPlugin(registered));
    const host = new PaymentPlugins(opened, listeners, parts);
    for (const o of opened) {
      o.on = o.plugin.switch === undefined || switchedOn(parts.config, o.plugin.switch);
      if (o.on) await host.openOne(o, parts.config, parts.log);
    }
    return host;
  }

  /**
   * Opens one plugin on `config` with its registrars (a damaged state file or unloadable code: null, logged); its sinks
   * join the upstream host. `live`: a reload's, what its sinks announce when they start (the sessions live now); none
   * at the daemon's start (what recovery found).
   */
  private async openOne(
    o: OpenedPlugin,
    config: Config,
    log: Log,
    live?: PluginHost['recovered'],
  ): Promise<PaymentPart | null> {
    // Any method's damage code leaves the method whose open threw it out, as the one list of codes did.
    const damaged = this.opened.flatMap((p) => (p.plugin.damagedState ? [p.plugin.damagedState] : []));
    const { sinks: _sinks, ...parts } = this.parts;
    const recovered = live ?? this.parts.recovered;
    const base = {
      ...parts,
      config,
      recovered,
      atStart: !live,
      methodBehind: (name: string) => this.methodBehind(name),
    };
    const part = await o.open(base, damaged, log);
    for (const sink of o.sinks) await this.parts.sinks.join(sink);
    return part;
  }

  /** The registry the merchant sells through: the list's methods go in now, and a reload's switches move them. */
  sellThrough(registry: SellingRegistry): void {
    this.registry = registry;
    this.syncRegistry();
  }

  /** The registry to what the list sells now: a method of a plugin switched off or closed out, one switched on in. */
  private syncRegistry(): void {
    if (!this.registry) return;
    const want = new Map(this.registered().map((m) => [m.name, m]));
    for (const [name, m] of this.inRegistry) {
      if (want.get(name) === m) continue;
      this.registry.unregister(name);
      this.inRegistry.delete(name);
    }
    for (const [name, m] of want) {
      if (this.inRegistry.has(name)) continue;
      this.registry.register(m);
      this.inRegistry.set(name, m);
    }
  }

  /** The selling method named `name` a plugin standing behind brings (PluginHost.methodBehind). */
  private methodBehind(name: string): PaymentMethod | null {
    for (const o of this.opened)
      if (o.on && o.part?.standsBehind) for (const m of o.part.methods) if (m.name === name) return m;
    return null;
  }

  /** A plugin with sinks of its own, switched off: drained and closed whole (it opens anew when switched on). */
  private async closeWhole(o: OpenedPlugin): Promise<void> {
    for (const sink of o.sinks.splice(0)) await this.parts.sinks.leave(sink);
    await o.close(true);
  }

  /**
   * A reload's switches, applied now: a method switched on opens (unless open already: then that one instance, never a
   * second, takes the new settings; a damaged state file leaves it out again, logged) and sells; one switched off stops
   * selling and stays open for its sessions.
   */
  async switchTo(next: Config, log: Log): Promise<void> {
    for (const o of this.opened) {
      const key = o.plugin.switch;
      if (key === undefined) continue;
      const on = switchedOn(next, key);
      if (on === o.on && (!on || o.part !== null)) continue;
      const opening = on && o.part === null;
      if (opening) {
        const live = (): { active: readonly Session[]; ended: readonly Session[] } => ({
          active: this.parts.sessions.list({ state: 'ACTIVE' }),
          ended: [],
        });
        const part = await this.openOne(o, next, log, live);
        if (part) {
          await o.reconcile(log);
          await part.recheck?.();
          o.start();
        }
      } else if (on && !o.on) {
        // Open since before it was switched off: this reload's settings (reconfigure passes it by, its switch moved).
        o.part?.reconfigure?.(next);
      } else if (!on && o.sinks.length > 0) {
        await this.closeWhole(o);
      }
      if (on !== o.on) log.info(`payment method ${o.plugin.name} switched ${on ? 'on' : 'off'} by a reload`);
      o.on = on;
    }
    this.syncRegistry();
  }

  /**
   * The methods' own doors to the config in force (at start, after every reload): each opens, moves or closes its
   * listener as its section says (a method switched off closes its door; its sessions run on).
   */
  async followDoors(config: Config, services: DoorServices): Promise<void> {
    for (const o of this.opened) for (const door of o.doors) await door.follow(config, services);
  }

  /**
   * Where the plugins' own listeners are for `config`, by the option that places each (PluginDoor.option → its
   * `host:port`, '' for nowhere): the reloader lists those a reload moved.
   */
  listenersAt(config: Config): Record<string, string> {
    return Object.fromEntries(this.opened.flatMap((o) => o.doors.map((d) => [d.option, d.at(config)])));
  }

  /**
   * Calls `listener` whenever a method says what it serves over the LAN may have changed (PluginHost); the method
   * waits for it.
   */
  onServesChanged(listener: () => Promise<void>): void {
    this.servesListeners.push(listener);
  }

  /** Every opened part, selling or switched off (its sessions still run through it). */
  private get openParts(): PaymentPart[] {
    return this.opened.flatMap((o) => (o.part ? [o.part] : []));
  }

  /** The opened parts switched on: those that sell. */
  private get selling(): PaymentPart[] {
    return this.opened.flatMap((o) => (o.part && o.on ? [o.part] : []));
  }

  /** The methods the merchant sells through. */
  methods(): PaymentMethod[] {
    return this.selling.flatMap((p) => [...p.methods]);
  }

  /**
   * What the merchant's registry holds of the list, in its order: the selling methods, but those of a plugin standing
   * behind (the RADIUS voucher) whose name a plugin's method in front has (that one passes on to it).
   */
  registered(): PaymentMethod[] {
    const front = new Set(this.selling.filter((p) => !p.standsBehind).flatMap((p) => p.methods.map((m) => m.name)));
    return this.selling.flatMap((p) => p.methods.filter((m) => !p.standsBehind || !front.has(m.name)));
  }

  /** Which switches have a method selling now (the reloader's RunningParts). */
  built(): Pick<RunningParts, MethodSwitch> {
    const out: Partial<Record<MethodSwitch, boolean>> = {};
    for (const { plugin, part, on } of this.opened) if (plugin.switch) out[plugin.switch] = part !== null && on;
    return out as Pick<RunningParts, MethodSwitch>;
  }

  /** A reload: a method still switched as it was built takes the new settings now. */
  reconfigure(next: Config, running: Pick<RunningParts, MethodSwitch>): void {
    for (const { plugin, part } of this.opened) {
      if (part && plugin.switch && switchedOn(next, plugin.switch) === (running[plugin.switch] ?? false))
        part.reconfigure?.(next);
    }
  }

  /** Each method's reconcile at start, in the list's order, each awaited RECONCILE_WAIT_MS at most. */
  async reconcile(log: Log): Promise<void> {
    for (const o of this.opened) await o.reconcile(log);
  }

  async recheck(): Promise<void> {
    for (const p of this.openParts) await p.recheck?.();
  }

  /** Once the daemon runs: each opened plugin's background passes, then its start hook, in the list's order. */
  start(): void {
    for (const o of this.opened) o.start();
  }

  /** Each method's stop, in the list's order: the part open at the stop (one a reload opened too). */
  closers(): Array<() => Promise<void>> {
    return this.opened.map((o) => () => o.close());
  }

  /** What the named plugin's method serves over ubus (its ubus methods' face); null: it does not run. */
  ubusFaceOf(name: string): UbusFace | null {
    return this.opened.find((o) => o.plugin.name === name)?.part?.ubus ?? null;
  }

  /** The fields the running methods add to a session's ubus `session` reply, in the list's order. */
  sessionFields(session: Session): Record<string, unknown> {
    return Object.assign({}, ...this.openParts.map((p) => p.ubus?.sessionFields?.(session) ?? {})) as Record<
      string,
      unknown
    >;
  }

  /**
   * What the methods serve over the LAN endpoint: each method's routes with its face (null: not running), in the list's
   * order, and their pay-page forms as `config` offers them.
   */
  lan(config: Config): LanParts {
    return {
      methods: this.opened.map((o) => lanMethodOf(o.registered, (o.on && o.part?.lan) || null)),
      schemes: this.x402Faces(),
      knownSchemes: this.opened.flatMap((o) => o.registered.schemes),
      unavailable: this.unavailable(),
      forms: this.forms(config),
    };
  }

  /** Each method's pay-page form, by its key: offered on `config` by the method as it opened (or did not). */
  forms(config: Config): Record<string, boolean> {
    return Object.fromEntries(
      this.opened.flatMap(({ registered: { payForm }, part }) =>
        payForm ? [[payForm.key, payForm.offered(config, part !== null)]] : [],
      ),
    );
  }

  /** The methods the config switches on (or that are always built) that did not open, by name. */
  unavailable(): string[] {
    return this.opened.filter((o) => o.part === null && o.on).map((o) => o.plugin.name);
  }

  /** The selling methods' x402 faces, in the list's order. */
  x402Faces(): X402Face[] {
    return this.selling.flatMap((p) => (p.x402 ? [p.x402] : []));
  }

  /** The methods' figures for ubus `stats`, each under its plugin's key, in the list's order. */
  stats(): Record<string, object> {
    return Object.fromEntries(
      this.opened.flatMap(({ registered: { stats }, part, figures }) =>
        stats ? [[stats.key, part && figures ? figures() : stats.absent]] : [],
      ),
    );
  }
}
