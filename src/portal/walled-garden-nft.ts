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

import { deviceNames } from './nft-devices.ts';

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
  v4: readonly string[];
  v6: readonly string[];
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * One nft script that makes the table whole, atomically: `nft -f` applies it as one transaction (the table is
 * created if absent, then deleted and made again, so a set never holds an address the resolver dropped).
 */
export function gardenScript(r: GardenRuleset): string {
  const ports = r.ports.join(', ');
  const elements = (xs: readonly string[]) => (xs.length > 0 ? `\t\telements = { ${xs.join(', ')} }\n` : '');
  const match = `iifname ${deviceNames(r.devices)} meta mark & ${hex(PORTAL_MARK_MASK)} == 0x00000000`;
  const set = `meta mark set meta mark | ${hex(PORTAL_TRUSTED_MARK)}`;
  return (
    `table inet ${GARDEN_TABLE} {}\n` +
    `delete table inet ${GARDEN_TABLE}\n` +
    `table inet ${GARDEN_TABLE} {\n` +
    `\tset v4 {\n\t\ttype ipv4_addr\n${elements(r.v4)}\t}\n` +
    `\tset v6 {\n\t\ttype ipv6_addr\n${elements(r.v6)}\t}\n` +
    `\tchain prerouting {\n` +
    `\t\ttype filter hook prerouting priority ${GARDEN_PRIORITY}; policy accept;\n` +
    `\t\t${match} ip daddr @v4 meta l4proto { tcp, udp } th dport { ${ports} } ${set}\n` +
    `\t\t${match} ip6 daddr @v6 meta l4proto { tcp, udp } th dport { ${ports} } ${set}\n` +
    `\t}\n` +
    `}\n`
  );
}

/** Removes the table (no host left, or sluice stopping); a table already gone is no error. */
export function gardenRemoveScript(): string {
  return `table inet ${GARDEN_TABLE} {}\ndelete table inet ${GARDEN_TABLE}\n`;
}
