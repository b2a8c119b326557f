/**
 * sluice's own gate (`portal 'sluice'`) opened for a test in the router namespace `ns`: nft and conntrack run there
 * (netns-command.ts), the gate's tables started with their counters and quota, the neighbour table `arp`. `uci` adds
 * sections or options to the config's `main` section and the data pricing every such test sells.
 */
import { join } from 'node:path';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { openPortal, startCounting, type Portal } from '../../src/gate/portal.ts';
import { silentLogger } from '../../src/log.ts';
import { sharedCommandShell } from '../../src/portal/command-shell.ts';
import { netnsCommand } from '../helpers/netns-command.ts';

export type OwnGateConfig = ReturnType<typeof configFromUciPartial>['config'];

export interface OwnGate {
  portal: Portal;
  config: OwnGateConfig;
  /** Stops the gate's watches and valve and the shared shells (the namespace and `dir` are the caller's). */
  close(): Promise<void>;
}

export async function startOwnGate(
  dir: string,
  ns: string,
  arp: string,
  uci: { main?: string[]; sections?: string[] } = {},
): Promise<OwnGate> {
  const text = [
    "config sluice 'main'",
    "\toption portal 'sluice'",
    `\toption nft '${netnsCommand(dir, ns, 'nft')}'`,
    "\toption shape_device 'lan'",
    `\toption state_dir '${dir}'`,
    `\toption ndsctl_socket '${join(dir, 'gate.sock')}'`,
    ...(uci.main ?? []),
    "config pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1'\n\toption price_per_step '1'",
    ...(uci.sections ?? []),
    '',
  ].join('\n');
  const config = configFromUciPartial(parseUci(text), { hostname: 'ra' }).config;
  const none = { byMac: () => null, list: () => [] } as never;
  const portal = await openPortal(config, none, silentLogger, {
    shaping: false,
    hotspot: { devices: ['lan'], source: 'shape_device', problem: null },
    facts: { exists: () => true, masterOf: () => null },
    neighbours: async () => arp,
    conntrack: [netnsCommand(dir, ns, 'conntrack')],
  });
  await portal.ownGate!.start();
  await startCounting(portal, none, []);
  if (!(await portal.kernelQuota!.start())) throw new Error('the kernel quota did not start');
  return {
    portal,
    config,
    close: async () => {
      await portal.closeWatches();
      await portal.valve.destroy();
      sharedCommandShell().close();
      sharedCommandShell('flows').close();
    },
  };
}
