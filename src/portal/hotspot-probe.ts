/**
 * The facts portal/hotspot-devices.ts decides on, read from the router: the portal's config files, the kernel's view
 * of its devices (sysfs), and one listing's `clientif`s. Never throws: what cannot be read is absent.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { PortalFlavour } from './types.ts';
import { confGatewayInterfaces, DEVICE_NAME, uciGatewayInterfaces, type DeviceFacts } from './hotspot-devices.ts';

/** Where each portal keeps its settings: OpenWrt's UCI file first, then the plain config (Debian's packages). */
export const PORTAL_CONFIG_FILES: Readonly<Record<PortalFlavour, ReadonlyArray<{ path: string; uci: boolean }>>> = {
  opennds: [
    { path: '/etc/config/opennds', uci: true },
    { path: '/etc/opennds/opennds.conf', uci: false },
  ],
  nodogsplash: [
    { path: '/etc/config/nodogsplash', uci: true },
    { path: '/etc/nodogsplash/nodogsplash.conf', uci: false },
  ],
};

/**
 * The gateway interface(s) the portal's first readable config file names (`auto`: openNDS's, then nodogsplash's; none
 * for sluice's own gate).
 */
export function portalGatewayInterfaces(
  flavour: PortalFlavour | 'auto' | 'sluice',
  files: Readonly<Record<PortalFlavour, ReadonlyArray<{ path: string; uci: boolean }>>> = PORTAL_CONFIG_FILES,
): string[] {
  // sluice's own gate has no config of another portal to ask: shape_device or the default.
  if (flavour === 'sluice') return [];
  const order: PortalFlavour[] = flavour === 'auto' ? ['opennds', 'nodogsplash'] : [flavour];
  for (const f of order) {
    for (const { path, uci } of files[f]) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      const found = uci ? uciGatewayInterfaces(text) : confGatewayInterfaces(text);
      if (found.length > 0) return found;
    }
  }
  return [];
}

/** The kernel's devices as sysfs shows them (`/sys/class/net/<dev>`, its `master` link). */
export function sysfsDeviceFacts(root = '/sys/class/net'): DeviceFacts {
  const safe = (device: string): boolean => DEVICE_NAME.test(device) && device !== '.' && device !== '..';
  return {
    exists: (device) => safe(device) && existsSync(join(root, device)),
    masterOf: (device) => {
      if (!safe(device)) return null;
      try {
        return basename(readlinkSync(join(root, device, 'master')));
      } catch {
        return null;
      }
    },
  };
}
