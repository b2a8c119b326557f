/**
 * The daemon's decision of the device(s) the hotspot runs on (portal/hotspot-devices.ts), from what the router says:
 * `main.shape_device` when set, else the portal's config, checked against the kernel's devices and, before anything
 * counts, against the devices the portal lists its clients on.
 */
import type { MainConfig } from '../config/index.ts';
import {
  decideHotspot,
  listedClientDevices,
  portalGatewayInterfaces,
  problemOf,
  sysfsDeviceFacts,
  type DeviceFacts,
  type HotspotDecision,
  type Valve,
} from '../portal/index.ts';

export interface HotspotProbe {
  facts: DeviceFacts;
  /** The portal's gateway interface(s) from its config file. */
  portal: string[];
}

export function findHotspot(
  main: Pick<MainConfig, 'shapeDevices' | 'portal'>,
  probe: HotspotProbe = { facts: sysfsDeviceFacts(), portal: portalGatewayInterfaces(main.portal) },
): { decision: HotspotDecision; probe: HotspotProbe } {
  return {
    decision: decideHotspot({ configured: main.shapeDevices, portal: probe.portal, clients: [] }, probe.facts),
    probe,
  };
}

/**
 * One listing of the portal (openNDS names each client's device, `clientif`): the problem when it lists clients and
 * none is on a metered device. Null when it cannot be asked, lists nobody, or names no devices (nodogsplash).
 */
export async function checkListedClients(
  valve: Pick<Valve, 'runExclusive'>,
  decision: HotspotDecision,
  probe: HotspotProbe,
): Promise<string | null> {
  let listing: string;
  try {
    listing = await valve.runExclusive(async (exec) => (await exec(['json'])).stdout);
  } catch {
    return null;
  }
  return problemOf(decision.devices, [...listedClientDevices(listing).values()], probe.facts);
}
