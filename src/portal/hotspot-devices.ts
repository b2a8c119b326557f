/**
 * Which LAN device(s) the hotspot runs on: where sluice's kernel counters, quota and IPv6 gate hook, and where the
 * speed tiers are shaped. Pure: the portal's config text, its listing and what the kernel says of a device come in as
 * arguments (portal/hotspot-probe.ts reads them), so sluice's own gate can decide with the same rules.
 *
 * The portal knows where its customers are: openNDS's `gatewayinterface` (UCI `/etc/config/opennds`, or
 * `opennds.conf`), nodogsplash's `GatewayInterface` (`nodogsplash.conf`; its UCI file may hold several instances, each
 * with its own), and openNDS lists the device each client is on (`clientif` in `ndsctl json`: what
 * `get_client_interface.sh` found in `ip -4 neigh`, or the radio's interface when `iw` finds the client there).
 * `main.shape_device` only overrides them. A device counted on that the customers are not on counts nothing, so the
 * decision carries a problem when a device does not exist or carries none of the portal's clients.
 */

import { tryNormalizeMac } from '../mac.ts';
import { completeNeighbours, entriesOfMac, type NeighbourParse } from './neighbours.ts';

/** Both portals' default `gatewayinterface` (openNDS src/conf.c, nodogsplash src/conf.c). */
export const PORTAL_DEFAULT_DEVICE = 'br-lan';

/** A Linux interface name (IFNAMSIZ − 1 characters). */
export const DEVICE_NAME = /^[A-Za-z0-9._@-]{1,15}$/;

/** Where the decision's devices came from. */
export type HotspotSource = 'shape_device' | 'portal config' | 'portal clients' | 'portal default';

export interface HotspotDecision {
  /** The device(s) to meter on, at least one. */
  devices: string[];
  source: HotspotSource;
  /** Why metering on them would count nothing (null: none found). */
  problem: string | null;
}

/** What the kernel says of the router's devices (sysfs, or a test's table). */
export interface DeviceFacts {
  exists(device: string): boolean;
  /** The bridge (or bond) a device is a port of, null when none. */
  masterOf(device: string): string | null;
}

/**
 * The `gatewayinterface` of each enabled portal section of a UCI file (`config opennds …`, `config nodogsplash …`;
 * `option enabled '0'` is left out). Pure.
 */
export function uciGatewayInterfaces(text: string): string[] {
  const out: string[] = [];
  for (const section of text.split(/^\s*config\s+/m).slice(1)) {
    const option = (name: string): string | undefined =>
      new RegExp(`^\\s*option\\s+${name}\\s+(?:'([^']*)'|"([^"]*)"|(\\S+))`, 'm')
        .exec(section)
        ?.slice(1)
        .find((v) => v !== undefined);
    if (option('enabled') === '0') continue;
    const device = option('gatewayinterface');
    if (device !== undefined && DEVICE_NAME.test(device) && !out.includes(device)) out.push(device);
  }
  return out;
}

/**
 * The `gatewayinterface` of an openNDS `opennds.conf` or a nodogsplash `nodogsplash.conf` (`GatewayInterface`: both
 * read the key without regard to case), or none. Pure.
 */
export function confGatewayInterfaces(text: string): string[] {
  const m = /^[ \t]*gatewayinterface[ \t]+(\S+)/im.exec(text);
  return m !== null && DEVICE_NAME.test(m[1]!) ? [m[1]!] : [];
}

/**
 * The device each client of an openNDS `ndsctl json` listing is on (`clientif`), by MAC; empty for a listing without
 * the field (nodogsplash) or one that is not JSON. openNDS prints `get_client_interface.sh`'s output as it comes: a
 * mesh client's is followed by the mesh node's MAC and interface (the first word is the local device), and a MAC with
 * two neighbour entries prints the device twice with nothing between (`br-lanbr-lan`, seen on 10.3.1 after a new
 * lease). Pure.
 */
export function listedClientDevices(listing: string): Map<string, string> {
  const out = new Map<string, string>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(listing);
  } catch {
    return out;
  }
  const clients = (parsed as { clients?: unknown } | null)?.clients;
  if (typeof clients !== 'object' || clients === null) return out;
  for (const [mac, client] of Object.entries(clients as Record<string, unknown>)) {
    const field = (client as { clientif?: unknown } | null)?.clientif;
    if (typeof field !== 'string') continue;
    const device = undoubled(field.trim().split(/\s+/)[0] ?? '');
    if (DEVICE_NAME.test(device)) out.set(mac.toLowerCase(), device);
  }
  return out;
}

/** `br-lanbr-lan` → `br-lan`: a name printed k times over (k ≥ 2), else the text as it is. */
function undoubled(text: string): string {
  for (let k = 2; k <= 4; k++) {
    if (text.length % k !== 0) continue;
    const part = text.slice(0, text.length / k);
    if (part.repeat(k) === text) return part;
  }
  return text;
}

/** The devices the kernel's neighbour table (`/proc/net/arp`) has `mac` on, complete entries only. Pure. */
export function neighbourDevices(table: string, mac: string, parse: NeighbourParse = completeNeighbours): string[] {
  const want = tryNormalizeMac(mac);
  if (want === null) return [];
  const on = entriesOfMac(parse(table), want).filter((e) => e.device !== '');
  return [...new Set(on.map((e) => e.device))];
}

/**
 * Whether metering on `devices` sees a client on `device`: the same device, or a port of one of them (a radio or a
 * cable in the hotspot's bridge: the bridge's hooks see what the router routes for it). A metered device that is a
 * port of the client's bridge is taken to carry it too: only the bridge knows which port a client is behind.
 */
export function carries(devices: readonly string[], device: string, facts: DeviceFacts): boolean {
  let d: string | null = device;
  for (let depth = 0; d !== null && depth < 4; depth++, d = facts.masterOf(d)) if (devices.includes(d)) return true;
  return devices.some((m) => facts.masterOf(m) === device);
}

/** The device that carries a client seen on `device` for metering: its bridge when it is a port of one. */
export function carrierOf(device: string, facts: DeviceFacts): string {
  return facts.masterOf(device) ?? device;
}

export interface HotspotInputs {
  /** `main.shape_device`'s device(s) (none = from the portal). */
  configured: readonly string[];
  /** The portal's `gatewayinterface`(s) from its config. */
  portal: readonly string[];
  /** The devices the portal lists its clients on (`clientif`), if it was asked. */
  clients: readonly string[];
}

/**
 * The device(s) to meter on and what is wrong with them. `shape_device` wins; else the portal's gateway interface(s),
 * with any device its clients are on that those do not carry (a second hotspot); else the devices its clients are on;
 * else both portals' default. A problem: a device that does not exist, or listed clients none of which is on one.
 */
export function decideHotspot(inputs: HotspotInputs, facts: DeviceFacts): HotspotDecision {
  const clientDevices = unique(inputs.clients);
  let devices: string[];
  let source: HotspotSource;
  if (inputs.configured.length > 0) {
    devices = unique(inputs.configured);
    source = 'shape_device';
  } else if (inputs.portal.length > 0) {
    devices = unique(inputs.portal);
    source = 'portal config';
    for (const d of clientDevices) {
      if (facts.exists(d) && !carries(devices, d, facts)) devices.push(carrierOf(d, facts));
    }
    devices = unique(devices);
  } else if (clientDevices.length > 0) {
    devices = unique(clientDevices.filter((d) => facts.exists(d)).map((d) => carrierOf(d, facts)));
    source = 'portal clients';
    if (devices.length === 0) devices = [clientDevices[0]!];
  } else {
    devices = [PORTAL_DEFAULT_DEVICE];
    source = 'portal default';
  }
  return { devices: outermost(devices, facts), source, problem: problemOf(devices, clientDevices, facts) };
}

/**
 * The devices without those that are a port of another of them: a bridge's hooks see its ports' clients already, and
 * both the bridge and its port hooked would count each of their packets twice.
 */
export function outermost(devices: readonly string[], facts: DeviceFacts): string[] {
  return devices.filter((d) => {
    let master = facts.masterOf(d);
    for (let depth = 0; master !== null && depth < 4; depth++, master = facts.masterOf(master)) {
      if (devices.includes(master)) return false;
    }
    return true;
  });
}

/** A device missing, or clients listed and none of them on a metered device; null when neither. */
export function problemOf(
  devices: readonly string[],
  clientDevices: readonly string[],
  facts: DeviceFacts,
): string | null {
  const missing = devices.filter((d) => !facts.exists(d));
  if (missing.length > 0) return `device ${missing.join(', ')} does not exist`;
  if (clientDevices.length > 0 && !clientDevices.some((d) => carries(devices, d, facts))) {
    const on = unique(clientDevices).join(', ');
    return `${devices.join(', ')} carries none of the portal's clients (they are on ${on})`;
  }
  return null;
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
