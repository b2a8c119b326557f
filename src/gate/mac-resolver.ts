/**
 * The one answer every door on the LAN asks (the LAN endpoint, a method's own door: TollGate's): which portal client
 * has this address. Shared reads of the portal's list (client-directory.ts): the list the meter's ticks read anyway
 * comes first (`fromTicks`: no portal call of its own, and openNDS runs a script per listed client for each), as old
 * as the directory allows, or a tick asked for it; when the ticks give none within the fetch timeout, a read of the
 * portal's own queued behind every gate command and meter read ('lookup' priority), so requests neither multiply
 * portal calls nor delay a gate.
 */
import type { Valve } from '../portal/index.ts';
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

/** The daemon's resolver: the meter's ticks first (waiting at most the fetch timeout and a second), then the valve. */
export function macResolver(valve: Valve, meter: Pick<Meter, 'clientAddresses'>, fetchTimeoutMs: number): MacResolver {
  const directory = portalClientDirectory(valve, (maxAgeMs) => meter.clientAddresses(maxAgeMs, fetchTimeoutMs + 1000));
  return { macOf: (ip) => directory.macOf(ip) };
}
