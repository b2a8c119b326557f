/**
 * The root's side of the plugin list: opens every plugin the config switches on (a damaged state file leaves that one
 * out: method-state.ts) and runs each hook over the opened parts in the list's order, so daemon.ts names no method.
 */
import type { Config, RunningParts } from '../config/index.ts';
import type { Log } from '../log.ts';
import { unlessStateDamaged } from './method-state.ts';
import { reconcileWithin } from './reconcile-within.ts';
import type {
  LanParts,
  MethodSwitch,
  PaymentHost,
  PaymentPart,
  PaymentPlugin,
  PluginContext,
  UbusFace,
  X402Face,
} from './plugin.ts';
import type { PaymentMethod } from './types.ts';
import type { Session } from '../sessions/index.ts';

/** A section a switch names is on: `enabled`, or present at all (`tollgate` is null when off). */
const switchedOn = (config: Config, key: MethodSwitch): boolean => config[key]?.enabled === true;

export class PaymentPlugins {
  private constructor(
    private readonly opened: ReadonlyArray<{ plugin: PaymentPlugin; on: boolean; part: PaymentPart | null }>,
    private readonly servesListeners: Array<() => Promise<void>>,
  ) {}

  /** Opens, in the list's order, each plugin whose switch is on (null: off, or left out as damaged). */
  static async open(plugins: readonly PaymentPlugin[], context: PluginContext): Promise<PaymentPlugins> {
    const opened: Array<{ plugin: PaymentPlugin; on: boolean; part: PaymentPart | null }> = [];
    const listeners: Array<() => Promise<void>> = [];
    const ctx: PluginContext = {
      ...context,
      servesChanged: async () => {
        await Promise.all([context.servesChanged?.(), ...listeners.map((listener) => listener())]);
      },
    };
    // Any method's damage code leaves the method whose open threw it out, as the one list of codes did.
    const damaged = plugins.flatMap((p) => (p.damagedState ? [p.damagedState] : []));
    for (const plugin of plugins) {
      const on = plugin.switch === undefined || switchedOn(ctx.config, plugin.switch);
      const part = on ? await unlessStateDamaged(plugin.name, () => plugin.open(ctx), damaged, ctx.log) : null;
      opened.push({ plugin, on, part });
    }
    return new PaymentPlugins(opened, listeners);
  }

  /**
   * Calls `listener` whenever a method says what it serves over the LAN may have changed (PluginContext); the method
   * waits for it.
   */
  onServesChanged(listener: () => Promise<void>): void {
    this.servesListeners.push(listener);
  }

  private get parts(): PaymentPart[] {
    return this.opened.flatMap((o) => (o.part ? [o.part] : []));
  }

  /** The methods the merchant sells through. */
  methods(): PaymentMethod[] {
    return this.parts.flatMap((p) => [...p.methods]);
  }

  /**
   * What the merchant's registry holds: the sinks' methods (the RADIUS voucher) but those a plugin's method of the
   * same name stands in front of (and passes on to), then the plugins' own.
   */
  registered(sinkMethods: readonly PaymentMethod[]): PaymentMethod[] {
    const own = this.methods();
    return [...sinkMethods.filter((m) => !own.some((o) => o.name === m.name)), ...own];
  }

  /** Which switches built a method at start (the reloader's RunningParts: switching one takes a restart). */
  built(): Pick<RunningParts, MethodSwitch> {
    const out: Partial<Record<MethodSwitch, boolean>> = {};
    for (const { plugin, part } of this.opened) if (plugin.switch) out[plugin.switch] = part !== null;
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
    for (const { plugin, part } of this.opened) {
      if (!part) continue;
      await reconcileWithin(plugin.name, part.reconcile?.(), log);
      part.reconciled?.();
    }
  }

  async recheck(): Promise<void> {
    for (const p of this.parts) await p.recheck?.();
  }

  start(): void {
    for (const p of this.parts) p.start?.();
  }

  wire(host: PaymentHost): void {
    for (const p of this.parts) p.wire?.(host);
  }

  /** Each opened method's stop, in the list's order. */
  closers(): Array<() => Promise<void>> {
    return this.parts.flatMap((p) => (p.close ? [() => p.close!()] : []));
  }

  /** What the named plugin's method serves over ubus (its ubus methods' face); null: it does not run. */
  ubusFaceOf(name: string): UbusFace | null {
    return this.opened.find((o) => o.plugin.name === name)?.part?.ubus ?? null;
  }

  /** The fields the running methods add to a session's ubus `session` reply, in the list's order. */
  sessionFields(session: Session): Record<string, unknown> {
    return Object.assign({}, ...this.parts.map((p) => p.ubus?.sessionFields?.(session) ?? {})) as Record<
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
      methods: this.opened.map((o) => ({ plugin: o.plugin, face: o.part?.lan ?? null })),
      schemes: this.x402Faces(),
      unavailable: this.unavailable(),
      forms: this.forms(config),
    };
  }

  /** Each method's pay-page form, by its key: offered on `config` by the method as it opened (or did not). */
  forms(config: Config): Record<string, boolean> {
    return Object.fromEntries(
      this.opened.flatMap(({ plugin, part }) =>
        plugin.payForm ? [[plugin.payForm.key, plugin.payForm.offered(config, part !== null)]] : [],
      ),
    );
  }

  /** The methods the config switches on (or that are always built) that did not open, by name. */
  unavailable(): string[] {
    return this.opened.filter((o) => o.part === null && o.on).map((o) => o.plugin.name);
  }

  /** The running methods' x402 faces, in the list's order. */
  x402Faces(): X402Face[] {
    return this.parts.flatMap((p) => (p.x402 ? [p.x402] : []));
  }

  /** The methods' figures for ubus `stats`, each under its plugin's key, in the list's order. */
  stats(): Record<string, object> {
    return Object.fromEntries(
      this.opened.flatMap(({ plugin, part }) =>
        plugin.stats ? [[plugin.stats.key, part?.figures?.() ?? plugin.stats.absent]] : [],
      ),
    );
  }
}
