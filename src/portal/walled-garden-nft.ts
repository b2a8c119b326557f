/**
 * The walled garden's nft table (pure): `inet sluice_garden`, two named sets of addresses and one prerouting chain
 * that marks a not-yet-authenticated client's packets to those addresses, on the garden's ports, with the portal's own
 * "trusted" mark. An accept in sluice's table could not help: a packet any base chain drops is dropped, and the
 * portal's forward chain rejects a Preauthenticated client's traffic. The portal's rules accept what carries its
 * trusted mark (openNDS: mark & 0x30000 == 0x20000, and its DNAT to the splash page returns early on it; nodogsplash:
 * mark & 0x700 == 0x200), so the mark is how sluice's table lets a packet through theirs. Both marks are set, so one
 * table serves either portal. Only a packet with none of the portal's marks is marked: an authenticated client's
 * (openNDS and nodogsplash mark those in their mangle prerouting chain, at priority -150, before this chain's -149)
 * and a blocked client's keep theirs.
 */

import { isIP } from 'node:net';
import { deviceNames } from './nft-devices.ts';
import { NEVER_OPENED, type OwnNetworks } from './walled-garden-refusal.ts';

export const GARDEN_TABLE = 'sluice_garden';
/** After the portals' mangle chains (-150) mark clients, before their DNAT (-100) redirects to the splash page. */
export const GARDEN_PRIORITY = -149;
/** openNDS's trusted mark (0x20000 under mask 0x30000) and nodogsplash's (0x200 under 0x700). */
export const PORTAL_MARK_MASK = 0x30700;
export const PORTAL_TRUSTED_MARK = 0x20200;

export interface GardenRuleset {
  /** The LAN device(s) the portal gates (`main.shape_device`, every one). */
  devices: readonly string[];
  ports: readonly number[];
  /** The addresses sluice resolved and admitted (walled-garden-refusal.ts). */
  v4: readonly string[];
  v6: readonly string[];
  /** The router's own addresses and subnets now: never opened, whoever put them in a set. */
  own: OwnNetworks;
}

/**
 * The sets dnsmasq adds each garden name's answers to (`nftset`, portal/garden-dnsmasq.ts): sluice never flushes them.
 */
export const DNSMASQ_SETS = { v4: 'dns4', v6: 'dns6' } as const;
/** How long an address dnsmasq added stays without being answered again: a CDN's old edge leaves the set by itself. */
export const DNSMASQ_SET_TIMEOUT = '1h';

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * The ranges no garden set may open, as the pure rule has them (walled-garden-refusal.ts NEVER_OPENED), with the
 * router's own addresses and subnets: the chain returns on them before any set is looked at, so an address dnsmasq
 * added from a name resolving into the LAN or to the router opens nothing.
 */
export function neverOpened(own: OwnNetworks): { v4: string[]; v6: string[] } {
  const all = [...NEVER_OPENED.map((r) => r.cidr), ...own.addresses, ...own.subnets];
  const v4 = all.filter((c) => isIP(c.split('/')[0]!) === 4);
  const v6 = all.filter((c) => isIP(c.split('/')[0]!) === 6 && !c.startsWith('::ffff:'));
  return { v4: [...new Set(v4)], v6: [...new Set(v6)] };
}

/**
 * One nft script that makes the table whole, atomically (`nft -f` applies it as one transaction): the table and each
 * set and chain added when absent; sluice's own sets and the chain flushed and filled again, so a set never holds an
 * address the resolver dropped; dnsmasq's sets only added when absent, so what dnsmasq put there survives every
 * rewrite (a delete of the table would drop it until each name is asked again).
 */
export function gardenScript(r: GardenRuleset): string {
  const t = `inet ${GARDEN_TABLE}`;
  const ports = r.ports.join(', ');
  const fill = (set: string, xs: readonly string[]): string[] =>
    xs.length > 0 ? [`add element ${t} ${set} { ${xs.join(', ')} }`] : [];
  const match = `iifname ${deviceNames(r.devices)} meta mark & ${hex(PORTAL_MARK_MASK)} == 0x00000000`;
  const mark = `meta l4proto { tcp, udp } th dport { ${ports} } meta mark set meta mark | ${hex(PORTAL_TRUSTED_MARK)}`;
  const never = neverOpened(r.own);
  const dnsSet = (type: string): string => `{ type ${type}; flags timeout; timeout ${DNSMASQ_SET_TIMEOUT}; }`;
  return [
    `add table ${t}`,
    `add set ${t} v4 { type ipv4_addr; }`,
    `flush set ${t} v4`,
    ...fill('v4', r.v4),
    `add set ${t} v6 { type ipv6_addr; }`,
    `flush set ${t} v6`,
    ...fill('v6', r.v6),
    `add set ${t} ${DNSMASQ_SETS.v4} ${dnsSet('ipv4_addr')}`,
    `add set ${t} ${DNSMASQ_SETS.v6} ${dnsSet('ipv6_addr')}`,
    `add set ${t} never4 { type ipv4_addr; flags interval; auto-merge; }`,
    `flush set ${t} never4`,
    ...fill('never4', never.v4),
    `add set ${t} never6 { type ipv6_addr; flags interval; auto-merge; }`,
    `flush set ${t} never6`,
    ...fill('never6', never.v6),
    `add chain ${t} prerouting { type filter hook prerouting priority ${GARDEN_PRIORITY}; policy accept; }`,
    `flush chain ${t} prerouting`,
    `add rule ${t} prerouting ip daddr @never4 return`,
    `add rule ${t} prerouting ip6 daddr @never6 return`,
    `add rule ${t} prerouting fib daddr type local return`,
    `add rule ${t} prerouting ${match} ip daddr @v4 ${mark}`,
    `add rule ${t} prerouting ${match} ip6 daddr @v6 ${mark}`,
    `add rule ${t} prerouting ${match} ip daddr @${DNSMASQ_SETS.v4} ${mark}`,
    `add rule ${t} prerouting ${match} ip6 daddr @${DNSMASQ_SETS.v6} ${mark}`,
    '',
  ].join('\n');
}

/** Removes the table (no host left, or sluice stopping); a table already gone is no error. */
export function gardenRemoveScript(): string {
  return `table inet ${GARDEN_TABLE} {}\ndelete table inet ${GARDEN_TABLE}\n`;
}
