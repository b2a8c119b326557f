/**
 * The doors on the LAN: the methods' routes over HTTP (http.listen; off by default) and the methods' own doors
 * (PluginHost.door). Their IP → MAC lookups take the list the ticks read (as old as the directory allows),
 * or ask a tick for it; a tick that reads none within its fetch timeout leaves the lookup to read the portal itself.
 */
import type { MainConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { DaemonBackend } from '../api/index.ts';
import { LanEndpointKeeper, portalClientDirectory } from '../http/index.ts';
import type { DoorServices } from '../payments/index.ts';
import type { Parts } from './parts.ts';

/** The LAN endpoint's keeper, and what a method's own door sells through and asks (one IP → MAC directory). */
export function lanDoorsFor(
  main: MainConfig,
  backend: DaemonBackend,
  { valve, meter }: Pick<Parts, 'valve' | 'meter'>,
  log: Log,
): { lan: LanEndpointKeeper; doors: DoorServices } {
  const fromTicks = (maxAgeMs: number): ReturnType<Parts['meter']['clientAddresses']> =>
    meter.clientAddresses(maxAgeMs, main.ndsctlTimeoutMs + 1000);
  const directory = portalClientDirectory(valve, fromTicks);
  return {
    lan: new LanEndpointKeeper({ backend, valve, log, fromTicks }),
    doors: {
      now: () => backend.now(),
      pricing: () => backend.pricing(),
      purchase: (req) => backend.purchase(req),
      session: (query) => backend.session(query),
      macOf: (ip) => directory.macOf(ip),
    },
  };
}
