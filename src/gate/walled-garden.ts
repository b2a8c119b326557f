/**
 * The walled garden wired to the config: the hosts from `main.walled_garden` and the enabled methods
 * (config/walled-garden.ts), kept in sluice's nft table by portal/walled-garden.ts, and their names given to the
 * router's dnsmasq, which adds what it answers for them to the table (portal/garden-dnsmasq.ts), at start and after
 * every reload.
 */
import { walledGardenHosts, type Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import { GardenDnsmasq, nftRunner, systemLookup, WalledGarden, type Ipv6Gate } from '../portal/index.ts';

export interface GardenKeeper {
  follow(config: Config): Promise<void>;
  close(): Promise<void>;
}

/**
 * `ipv6Gate`: the garden's IPv6 addresses are let through it too (no portal gates IPv6). `devices`: the LAN device(s)
 * the hotspot runs on, as decided at start (gate/hotspot.ts): the garden opens on every one.
 */
export function openWalledGarden(
  main: Config['main'],
  log: Logger,
  ipv6Gate: Ipv6Gate | null,
  devices: readonly string[],
): GardenKeeper {
  const garden = new WalledGarden({
    nft: nftRunner(main.nft, main.ndsctlTimeoutMs),
    lookup: systemLookup(),
    log,
    ...(ipv6Gate && {
      onIpv6: (addresses: readonly string[], ports: readonly number[]) => ipv6Gate.garden(addresses, ports),
    }),
  });
  const dnsmasq = new GardenDnsmasq({ log });
  return {
    follow: async (config) => {
      const hosts = walledGardenHosts(config);
      await garden.follow({ hosts, ports: config.main.walledGarden.ports, devices });
      // The sets exist before dnsmasq is told to fill them.
      await dnsmasq.follow(hosts);
    },
    close: () => garden.close(),
  };
}
