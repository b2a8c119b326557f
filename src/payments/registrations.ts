/**
 * The register phase (PaymentPlugin.register): each plugin of a list, in its order and before any opens, registers
 * what must be known whether or not it runs: its ubus methods, LAN routes and x402 schemes. Pure and synchronous, so
 * the ubus object's table and the LAN endpoint's routes are made of it before anything starts. A name or a route
 * registered twice across the list is refused here, once, rather than one shadowing the other.
 */
import type { LanRoute, PaymentPlugin, RegisteredPlugin, UbusMethod, X402Scheme } from './plugin.ts';

/** Runs every plugin's register, in the list's order; throws on a ubus method, route or scheme registered twice. */
export function registerPlugins(plugins: readonly PaymentPlugin[]): RegisteredPlugin[] {
  const taken = new Map<string, string>();
  const claim = (what: string, by: string): void => {
    const owner = taken.get(what);
    if (owner !== undefined) throw new Error(`${what} is registered by two payment plugins: ${owner} and ${by}`);
    taken.set(what, by);
  };
  return plugins.map((plugin) => {
    const ubusMethods: Record<string, UbusMethod> = {};
    const lanRoutes: LanRoute[] = [];
    const schemes: X402Scheme[] = [];
    let open = true;
    const registering = (what: string): void => {
      if (!open) throw new Error(`payment plugin ${plugin.name} registered ${what} after its register phase`);
      claim(what, plugin.name);
    };
    plugin.register?.({
      ubusMethod(name, method) {
        registering(`ubus method ${name}`);
        ubusMethods[name] = method;
      },
      lanRoute(route) {
        registering(`LAN route ${route.method} ${route.path}`);
        lanRoutes.push(route);
      },
      x402Scheme(scheme) {
        registering(`x402 scheme ${scheme.scheme}`);
        schemes.push(scheme);
      },
    });
    open = false;
    return { plugin, ubusMethods, lanRoutes, schemes };
  });
}
