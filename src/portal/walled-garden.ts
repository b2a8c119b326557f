/**
 * The walled garden kept in the kernel: resolves the garden's names (the config's list and the payment methods'
 * hosts: config/walled-garden.ts) as their answers' TTLs run out and whenever the config changes, and writes sluice's
 * own nft table (walled-garden-nft.ts) when the addresses changed. Failures are logged and
 * retried at the next round; they never stop the daemon.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../log.ts';
import { GardenAddresses, MIN_TTL_MS, type Answer } from './walled-garden-addresses.ts';
import { gardenRemoveScript, gardenScript } from './walled-garden-nft.ts';
import { gardenRefusal, ownNetworksNow, type OwnNetworks } from './walled-garden-refusal.ts';
import type { NftRun } from './nft-run.ts';

/** One family's lookup of a name: its answers with TTLs; [] when the name has none. */
export type LookupFn = (host: string, family: 4 | 6) => Promise<Answer[]>;

export interface GardenTarget {
  hosts: readonly string[];
  ports: readonly number[];
  /** The hotspot's LAN device(s): the garden opens for clients on every one. */
  devices: readonly string[];
}

/**
 * The system's resolver (the router's /etc/resolv.conf: its dnsmasq), one query per family, TTLs kept; `servers`
 * ("127.0.0.1:5353") in its place where given.
 */
export function systemLookup(timeoutMs = 5000, servers?: readonly string[]): LookupFn {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers !== undefined) resolver.setServers(servers);
  return async (host, family) => {
    try {
      return family === 4 ? await resolver.resolve4(host, { ttl: true }) : await resolver.resolve6(host, { ttl: true });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
      throw err;
    }
  };
}

export class WalledGarden {
  private target: GardenTarget = { hosts: [], ports: [], devices: [] };
  private readonly book = new GardenAddresses();
  /** The script last written (nothing is written again while the garden is unchanged); null: none written. */
  private written: string | null = null;
  /** What the IPv6 gate was last given. */
  private ipv6Written = '';
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private closed = false;
  /** What each host opened, as last logged ("host" → its addresses). */
  private readonly opened = new Map<string, string>();
  /** Each host's addresses refused (walled-garden-refusal.ts), logged once each: "host address". */
  private readonly refused = new Set<string>();

  constructor(
    private readonly deps: {
      nft: NftRun;
      lookup: LookupFn;
      log: Logger;
      now?: () => number;
      /** The router's own addresses and subnets, read at each round (default: its interfaces). */
      ownNetworks?: () => OwnNetworks;
      /**
       * The garden's IPv6 addresses and ports at each change, for the IPv6 gate (ipv6-gate.ts), which no portal has.
       */
      onIpv6?: (addresses: readonly string[], ports: readonly number[]) => Promise<void>;
    },
  ) {}

  /** The garden to this target now (at start, after every reload): a lookup round and the table written. */
  follow(target: GardenTarget): Promise<void> {
    this.target = target;
    return this.schedule(0);
  }

  /** Stops the lookups and removes the table (a stopped sluice opens nothing). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.round;
    if (this.written !== null) await this.deps.nft(['-f', '-'], gardenRemoveScript()).catch(() => undefined);
    this.written = null;
  }

  private schedule(delayMs: number): Promise<void> {
    clearTimeout(this.timer);
    if (this.closed) return this.round;
    if (delayMs > 0) {
      this.timer = setTimeout(() => void this.schedule(0), delayMs);
      this.timer.unref();
      return this.round;
    }
    this.round = this.round.then(() => this.lookupRound());
    return this.round;
  }

  private async lookupRound(): Promise<void> {
    if (this.closed) return;
    const now = this.deps.now ?? Date.now;
    const { hosts } = this.target;
    this.book.retain(hosts);
    for (const key of [...this.refused]) if (!hosts.includes(key.split(' ')[0]!)) this.refused.delete(key);
    const own = (this.deps.ownNetworks ?? ownNetworksNow)();
    const admitted = (host: string, answers: readonly Answer[]) => answers.filter((a) => this.admits(host, a, own));
    await Promise.all(
      hosts.map(async (host) => {
        if (isIP(host) !== 0) {
          this.book.answered(host, admitted(host, [{ address: host, ttl: Infinity }]), now());
          return;
        }
        for (const family of [4, 6] as const) {
          try {
            this.book.answered(host, admitted(host, await this.deps.lookup(host, family)), now());
          } catch (err) {
            this.deps.log.warn('walled garden: lookup failed', {
              host,
              family,
              reason: err instanceof Error ? err.message : String(err),
            });
          }
        }
      }),
    );
    this.book.expire(now());
    this.logOpened(hosts);
    await this.write(own);
    if (!this.closed) this.schedule(hosts.length > 0 ? this.book.nextLookupAt(now()) - now() : MIN_TTL_MS * 120);
  }

  /**
   * Whether `answer` may enter the garden for `host`; a refused address is logged once (per host) with its name and
   * why, and never enters the set (a name resolving into the LAN or to the router opens neither).
   */
  private admits(host: string, answer: Answer, own: OwnNetworks): boolean {
    const reason = gardenRefusal(answer.address, own);
    if (reason === undefined) return true;
    const key = `${host} ${answer.address}`;
    if (!this.refused.has(key)) {
      this.refused.add(key);
      this.deps.log.warn('walled garden: address refused', { host, address: answer.address, reason });
    }
    return false;
  }

  /**
   * Says which addresses each host opened, when that changes (the payment methods' own hosts, a Cashu mint's,
   * included): anything else on those addresses (a CDN's other sites) is open too, so an admin can see what.
   */
  private logOpened(hosts: readonly string[]): void {
    for (const host of [...this.opened.keys()]) if (!hosts.includes(host)) this.opened.delete(host);
    for (const host of hosts) {
      const addresses = this.book.addressesOf(host).join(', ');
      if (this.opened.get(host) === addresses) continue;
      this.opened.set(host, addresses);
      this.deps.log.info('walled garden: host opened', { host, addresses: addresses || '(none)' });
    }
  }

  private async write(own: OwnNetworks): Promise<void> {
    const { v4, v6 } = this.book.addresses();
    const { hosts, ports, devices } = this.target;
    const script = hosts.length === 0 ? gardenRemoveScript() : gardenScript({ devices, ports, v4, v6, own });
    const ipv6 = JSON.stringify([hosts.length === 0 ? [] : v6, ports]);
    if (ipv6 !== this.ipv6Written) {
      this.ipv6Written = ipv6;
      await this.deps.onIpv6?.(hosts.length === 0 ? [] : v6, ports);
    }
    if (script === this.written || (hosts.length === 0 && this.written === null)) return;
    try {
      await this.deps.nft(['-f', '-'], script);
      this.written = hosts.length === 0 ? null : script;
      this.deps.log.info('walled garden', { hosts: hosts.length, ipv4: v4.length, ipv6: v6.length });
    } catch (err) {
      this.deps.log.warn('walled garden: nft failed', {
        reason: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
