/**
 * The one answer every door on the LAN asks (the LAN endpoint, a method's own door: TollGate's): which client has this
 * address. First the kernel's neighbour table on the LAN device the portal gates (portal/neighbours.ts neighbourMac):
 * the MAC of the device that holds the address now, where openNDS takes its clients' MACs from too, for a file read.
 * A request the table cannot place (an IPv6 source, no complete entry, a table that cannot be read) asks the portal's
 * list, in shared reads (client-directory.ts): the list the meter's ticks read anyway comes first (`fromTicks`), as
 * old as the directory allows, or a tick asked for it; when the ticks give none within the fetch timeout, a read of
 * the portal's own queued behind every gate command and meter read ('lookup' priority). On kernel counters a tick asked
 * for the list lists the portal, and openNDS runs a script per listed client for each (≈ 3 s of its CPU at 32 clients
 * on 10.3.1): with the list first, every customer's captive-API check and purchase cost one.
 */
import { neighbourMacReader, type Valve } from '../portal/index.ts';
import type { Meter } from '../meter/index.ts';
import { ClientDirectory, type ListedClient } from './client-directory.ts';

/** Where the clients' addresses come from first: a tick dispatched at most `maxAgeMs` ago; null means "read it". */
type TickClientList = (maxAgeMs: number) => Promise<readonly ListedClient[] | null>;

/** IP → MAC over the valve's list, the ticks' first when given (tests: the valve's alone). */
export function portalClientDirectory(valve: Valve, fromTicks?: TickClientList): ClientDirectory {
  return new ClientDirectory({
    read: async (maxAgeMs) => (await fromTicks?.(maxAgeMs)) ?? (await valve.snapshot('lookup')).clients,
  });
}

/** What every door asks: the portal client with an address (null: none; throws when two clients have it). */
export interface MacResolver {
  macOf(ip: string): Promise<string | null>;
}

/** What the daemon's resolver reads. */
export interface MacResolverOptions {
  valve: Valve;
  meter: Pick<Meter, 'clientAddresses'>;
  /** main.ndsctl_timeout: how long a tick's list is waited for (and a second more) before the valve reads one. */
  fetchTimeoutMs: number;
  /** The LAN device(s) the portal gates (gate/hotspot.ts), whose neighbour entries name its clients. */
  devices: readonly string[];
  /** The neighbour table's MAC for an address (default: `/proc/net/arp`, neighbourMacReader). */
  neighbourMac?: (ip: string) => Promise<string | null>;
}

/**
 * The daemon's resolver: the neighbour table's entry on the gated device, then the portal's list: the meter's ticks
 * first (waiting at most the fetch timeout and a second), then the valve.
 */
export function macResolver(options: MacResolverOptions): MacResolver {
  const { valve, meter, fetchTimeoutMs } = options;
  const neighbourMac = options.neighbourMac ?? neighbourMacReader(options.devices);
  const directory = portalClientDirectory(valve, (maxAgeMs) => meter.clientAddresses(maxAgeMs, fetchTimeoutMs + 1000));
  return { macOf: async (ip) => (await neighbourMac(ip)) ?? directory.macOf(ip) };
}
