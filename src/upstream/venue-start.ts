/**
 * Roaming within a venue (docs/roaming.md), when `main.venue` names one: the router's half of the lease protocol,
 * following the meter's billing (who is present) and publishing its claims through the MQTT sink. Restart-only
 * options; the fleet's answers need `mqtt.commands 1`. Imported by venue-sinks.ts only for a router in a venue.
 */
import type { Config } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { Meter } from '../meter/index.ts';
import type { SessionManager } from '../sessions/index.ts';
import type { SinkHost } from './host.ts';
import { VenueLeaseSwitch, type LeaseElements } from './venue-lease.ts';
import { leaseTimeoutMs, renewEveryMs } from './venue-lease-time.ts';
import { VenueRoaming, type VenueRoamingDeps } from './venue-roaming.ts';
import { closeWithTail, type KernelCountsReader, type TailParts } from './venue-tail.ts';

/** The parts a release's close with its last reading needs (venue-tail.ts). */
export interface VenueTailParts {
  /** The gate: its close with a count that holds the device closed until the session ends (Gatekeeper). */
  gate: Pick<TailParts['valve'], 'closeAndCount'> & { handedBack(mac: string): Promise<void> };
  /** The kernel's counters (main.kernel_quota): read while the meter meters from them (`enabled`). */
  counters: (KernelCountsReader & { readonly enabled: boolean }) | null;
}

export interface VenueDeps {
  sessions: SessionManager;
  meter: Pick<Meter, 'tick' | 'marks'>;
  gateClosed?: VenueRoamingDeps['gateClosed'];
  tail?: VenueTailParts;
  /** The kernel's lease elements (main.kernel_quota: the IPv6 gate's table), for the lease's dead-man's switch. */
  leases?: LeaseElements | null;
}

/** The close with its last reading, whichever gate the router runs (openNDS's, nodogsplash's, sluice's own). */
function tailOf({ meter, tail }: VenueDeps): VenueRoamingDeps['closeWithTail'] {
  if (tail === undefined) return undefined;
  const { gate, counters } = tail;
  return closeWithTail({
    valve: { closeAndCount: (mac, count) => gate.closeAndCount(mac, count), released: (mac) => gate.handedBack(mac) },
    kernel: () => (counters?.enabled === true ? counters : null),
    mark: (mac) => meter.marks().get(mac),
  });
}

export function openVenue(
  config: Config,
  deps: VenueDeps & { upstream: SinkHost },
  log: Log,
): VenueRoaming | undefined {
  const { venue, venuePresentWindowMs: presentWindowMs } = config.main;
  if (venue === '') return undefined;
  if (!config.mqtt.enabled || !config.mqtt.commands)
    log.warn('main.venue is set but mqtt or mqtt.commands is off: the venue cannot answer this router', { venue });
  const { sessions, upstream, meter, gateClosed } = deps;
  const closeWithTail = tailOf(deps);
  const lease =
    deps.leases == null
      ? undefined
      : new VenueLeaseSwitch({
          gate: deps.leases,
          statusNow: () => upstream.statusNow(),
          claim: (mac) => upstream.publishVenue({ kind: 'claim', mac, venue, own: true }),
          everyMs: renewEveryMs(leaseTimeoutMs(config.main.venueLeaseTtlMs), config.mqtt.statusIntervalMs),
          log,
        });
  const roaming = new VenueRoaming({
    sessions,
    publish: (body) => upstream.publishVenue(body),
    settings: () => ({ venue, presentWindowMs }),
    reading: () => meter.tick(),
    ...(gateClosed !== undefined && { gateClosed }),
    ...(closeWithTail !== undefined && { closeWithTail }),
    ...(lease !== undefined && { lease }),
    log,
  });
  roaming.follow();
  return roaming;
}
