/**
 * The methods' routes over HTTP on the LAN (http.listen; off by default). Its IP → MAC lookups take the list the
 * ticks read (as old as the directory allows), or ask a tick for it; a tick that reads none within its fetch timeout
 * leaves the lookup to read the portal itself.
 */
import type { MainConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { DaemonBackend } from '../api/index.ts';
import { LanEndpointKeeper } from '../http/index.ts';
import type { Parts } from './parts.ts';

export function lanEndpointFor(
  main: MainConfig,
  backend: DaemonBackend,
  { valve, meter }: Pick<Parts, 'valve' | 'meter'>,
  log: Log,
): LanEndpointKeeper {
  return new LanEndpointKeeper({
    backend,
    valve,
    log,
    fromTicks: (maxAgeMs) => meter.clientAddresses(maxAgeMs, main.ndsctlTimeoutMs + 1000),
  });
}
