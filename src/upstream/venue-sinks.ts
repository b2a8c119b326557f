/**
 * The config's sinks added to the upstream host, the venue's roaming first when `main.venue` names one: its code
 * (venue-start.ts and the lease protocol under it) is read only then, so a router in no venue does not hold it.
 */
import type { Config } from '../config/index.ts';
import { createSinks, type SinkDeps } from './create-sinks.ts';
import type { SinkHost } from './host.ts';
import type { VenueRoaming } from './venue-roaming.ts';
import type { VenueDeps } from './venue-start.ts';

export type { VenueTailParts } from './venue-start.ts';

/**
 * The sinks the config enables (MQTT, the hook), added to the upstream host: they hear the sessions' events and run
 * the admin commands of MQTT's command channel. First the venue's roaming (when main.venue names one), whose claims go
 * out through them and whose handovers their MQTT messages tell; returned (undefined: the router is in no venue).
 */
export async function addSinks(
  config: Config,
  host: SinkHost,
  deps: Pick<SinkDeps, 'log' | 'recovered'> & Required<Pick<SinkDeps, 'status' | 'command'>> & VenueDeps,
): Promise<VenueRoaming | undefined> {
  const { sessions, meter, gateClosed, tail, leases, ...rest } = deps;
  const parts = { sessions, upstream: host, meter, gateClosed, ...(tail && { tail }), ...(leases && { leases }) };
  const venue =
    config.main.venue === '' ? undefined : (await import('./venue-start.ts')).openVenue(config, parts, deps.log);
  const sinkDeps: SinkDeps = { ...rest, session: (id) => sessions.get(id) };
  if (venue) sinkDeps.moved = (s) => venue.moved(s);
  for (const sink of createSinks(config, sinkDeps)) host.add(sink);
  return venue;
}
