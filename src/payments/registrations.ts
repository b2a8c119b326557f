/**
 * The register phase (PaymentPlugin.register): each plugin of a list, in its order and before any opens, registers
 * what must be known whether or not it runs: its ubus methods, LAN routes and x402 schemes, its pay-page scripts and
 * form, its reason to run the LAN endpoint, its payers and its place in ubus `stats`. Pure and synchronous, so the ubus
 * object's table and the LAN endpoint are made of it before anything starts. A name, route, file or key registered
 * twice across the list is refused here, once, rather than one shadowing the other; so is a second form, LAN use,
 * payers or stats slot of one plugin.
 */
import type { LanMethod, PaymentPlugin, PluginRegistrars, RegisteredPlugin } from './plugin.ts';
import type { LanFace } from './plugin-faces.ts';

type Registered = { -readonly [K in keyof RegisteredPlugin]: RegisteredPlugin[K] };

/** Runs every plugin's register, in the list's order; throws on anything registered twice. */
export function registerPlugins(plugins: readonly PaymentPlugin[]): RegisteredPlugin[] {
  const taken = new Map<string, string>();
  const claim = (what: string, by: string): void => {
    const owner = taken.get(what);
    if (owner !== undefined) throw new Error(`${what} is registered by two payment plugins: ${owner} and ${by}`);
    taken.set(what, by);
  };
  return plugins.map((plugin) => {
    const out: Registered = {
      plugin,
      ubusMethods: {},
      lanRoutes: [],
      schemes: [],
      pageScripts: [],
      payForm: null,
      lanUse: null,
      payersOf: null,
      stats: null,
    };
    let open = true;
    const registering = (what: string): void => {
      if (!open) throw new Error(`payment plugin ${plugin.name} registered ${what} after its register phase`);
      claim(what, plugin.name);
    };
    /** One of a kind per plugin: a second is refused as a late one is. */
    const once = <K extends 'payForm' | 'lanUse' | 'payersOf' | 'stats'>(
      key: K,
      what: string,
      value: Registered[K],
    ) => {
      if (open && out[key] !== null) throw new Error(`payment plugin ${plugin.name} registered a second ${key}`);
      registering(what);
      out[key] = value;
    };
    const add: PluginRegistrars = {
      ubusMethod(name, method) {
        registering(`ubus method ${name}`);
        (out.ubusMethods as Record<string, typeof method>)[name] = method;
      },
      lanRoute(route) {
        registering(`LAN route ${route.method} ${route.path}`);
        (out.lanRoutes as (typeof route)[]).push(route);
      },
      x402Scheme(scheme) {
        registering(`x402 scheme ${scheme.scheme}`);
        (out.schemes as (typeof scheme)[]).push(scheme);
      },
      pageScript(file) {
        registering(`pay-page script /${file}`);
        (out.pageScripts as string[]).push(file);
      },
      payForm: (form) => once('payForm', `pay-page form ${form.key}`, form),
      lanUse: (use) => once('lanUse', `LAN endpoint use ${use.name}`, use),
      payersOf: (payers) => once('payersOf', `payers of ${plugin.name}`, payers),
      stats: (slot) => once('stats', `stats key ${slot.key}`, slot),
    };
    plugin.register?.(add);
    open = false;
    return out;
  });
}

/** A plugin's LAN side as the endpoint serves it: what it registered, with its face (null: it does not run). */
export function lanMethodOf(r: RegisteredPlugin, face: LanFace | null): LanMethod {
  const { plugin, lanRoutes: routes, pageScripts, payForm, payersOf, lanUse } = r;
  return { plugin, routes, pageScripts, payForm, payersOf, lanUse, face };
}
