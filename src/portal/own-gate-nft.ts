/**
 * sluice's own gate (`main.portal 'sluice'`), its nft side, pure (own-gate.ts keeps it in step with the gates it
 * opens): the table `inet sluice_portal` on the LAN device sluice gates (`main.shape_device`). What an unpaid device
 * reaches: the router's DHCP and DNS, sluice's LAN endpoint (the pay page, /captive) and TollGate's door, the TCP
 * ports of `routerPorts`, ICMP, and the walled garden (whose table, `inet sluice_garden`, marks garden packets at
 * -149 with both portals' trusted bits: they are let through here as openNDS lets them). Its HTTP to anywhere else is
 * sent to the LAN endpoint (which answers it with a redirect to the pay page), its other TCP is reset at once (a
 * phone's HTTPS probe fails fast instead of hanging), anything else is refused with an ICMP error.
 *
 * A device passes once paid: its MAC together with each IPv4 address the router's neighbour table held for it when
 * its gate opened (`paid`, as openNDS matches a client by MAC and address), and its MAC alone for IPv6 (`paid_mac`),
 * whose forwarding the IPv6 gate (`netdev sluice_gate`, ipv6-gate-nft.ts) decides by MAC anyway. Download needs no set:
 * what comes back to the LAN is let through only on a connection a device opened while it passed (conntrack), and a
 * close deletes its entries (flow-flush.ts).
 *
 * The script is idempotent and keeps the sets' elements: tables, sets and chains are added (a no-op when there), the
 * chains flushed and refilled, all in one transaction. So the daemon installs it at every start (a sluice killed
 * with -9 left the paid devices passing; they keep passing), an fw4 include installs the same at boot and at each
 * firewall reload (files/usr/share/sluice/fw4-gate.sh), and a rebuild after `nft flush ruleset` adds the paid devices
 * it knows.
 */
import { normalizeMac } from '../mac.ts';
import { isIpv4 } from './kernel-quota-nft.ts';
import { deviceNames } from './nft-devices.ts';

export const OWN_GATE_TABLE = 'sluice_portal';

/** Before fw4's own chains (dstnat -100, filter 0), after the walled garden's mark (-149). */
export const OWN_GATE_NAT_PRIORITY = -105;
export const OWN_GATE_FILTER_PRIORITY = -5;

/** The walled garden's mark (walled-garden-nft.ts): openNDS's trusted bits, set only on a garden packet. */
const GARDEN_MARK = 'meta mark & 0x30000 == 0x20000';

/** The TCP ports of the router an unpaid device reaches besides DNS and sluice's own: openNDS's users_to_router. */
export const DEFAULT_ROUTER_PORTS: readonly number[] = [22, 80, 443];

export interface PaidDevice {
  mac: string;
  /** Its IPv4 addresses at its gate's opening (none: its IPv6 alone passes). */
  ips: readonly string[];
}

export interface OwnGateRuleset {
  /** The LAN device(s) sluice gates (every one). */
  devices: readonly string[];
  /** Where an unpaid device's HTTP goes: the LAN endpoint (http.listen). */
  http: { host: string; port: number };
  /** More TCP ports of the router an unpaid device reaches: TollGate's door, and `routerPorts` (openNDS's three). */
  tcpPorts: readonly number[];
  paid?: readonly PaidDevice[];
}

/** `mac . ip` elements of the `paid` set. */
function pairs(paid: readonly PaidDevice[]): string[] {
  return paid.flatMap((d) => d.ips.filter(isIpv4).map((ip) => `${normalizeMac(d.mac)} . ${ip}`));
}

/** Where an unpaid device's HTTP is sent: the LAN endpoint's own IPv4 address, else the device's (redirect). */
function toEndpoint(http: OwnGateRuleset['http']): string {
  return isIpv4(http.host) ? `dnat ip to ${http.host}:${http.port}` : `redirect to :${http.port}`;
}

/** The whole gate, installed in one transaction, keeping the sets' elements and adding `paid`. */
export function ownGateScript(r: OwnGateRuleset): string {
  const t = `inet ${OWN_GATE_TABLE}`;
  const dev = deviceNames(r.devices);
  const tcp = [...new Set([53, r.http.port, ...r.tcpPorts])].sort((a, b) => a - b);
  const paid = r.paid ?? [];
  const chain = (name: string, hook: string, type: string, priority: number): string[] => [
    `add chain ${t} ${name} { type ${type} hook ${hook} priority ${priority}; policy accept; }`,
    `flush chain ${t} ${name}`,
  ];
  const rule = (name: string, ...rules: string[]): string[] => rules.map((x) => `add rule ${t} ${name} ${x}`);
  const pairList = pairs(paid);
  const macs = paid.map((d) => normalizeMac(d.mac));
  return [
    `add table ${t}`,
    `add set ${t} paid { type ether_addr . ipv4_addr; }`,
    `add set ${t} paid_mac { type ether_addr; }`,
    `add set ${t} router_tcp { type inet_service; }`,
    `flush set ${t} router_tcp`,
    `add element ${t} router_tcp { ${tcp.join(', ')} }`,
    ...(pairList.length > 0 ? [`add element ${t} paid { ${pairList.join(', ')} }`] : []),
    ...(macs.length > 0 ? [`add element ${t} paid_mac { ${macs.join(', ')} }`] : []),
    // Chains that rules jump to are made (and emptied) before the base chains that jump to them are filled.
    `add chain ${t} unpaid_in`,
    `flush chain ${t} unpaid_in`,
    `add chain ${t} unpaid_out`,
    `flush chain ${t} unpaid_out`,
    ...chain('dstnat', 'prerouting', 'nat', OWN_GATE_NAT_PRIORITY),
    ...chain('input', 'input', 'filter', OWN_GATE_FILTER_PRIORITY),
    ...chain('forward', 'forward', 'filter', OWN_GATE_FILTER_PRIORITY),
    // An unpaid device's HTTP anywhere but the router: to the LAN endpoint, which answers it with the pay page's URL.
    ...rule(
      'dstnat',
      `iifname != ${dev} return`,
      'meta nfproto != ipv4 return',
      `ether saddr . ip saddr @paid return`,
      `${GARDEN_MARK} return`,
      'fib daddr type local return',
      `tcp dport 80 ${toEndpoint(r.http)}`,
    ),
    ...rule(
      'input',
      `iifname != ${dev} return`,
      'meta nfproto ipv4 ether saddr . ip saddr @paid return',
      'meta nfproto ipv6 ether saddr @paid_mac return',
      'jump unpaid_in',
    ),
    ...rule(
      'unpaid_in',
      'meta l4proto { icmp, ipv6-icmp } return',
      // DNS, DHCP (v4 and v6) and the router's TCP ports, the LAN endpoint's among them (HTTP arrives there DNATed).
      'udp dport { 53, 67, 547 } return',
      'tcp dport @router_tcp return',
      'meta l4proto tcp reject with tcp reset',
      'reject',
    ),
    ...rule(
      'forward',
      `iifname ${dev} meta nfproto ipv4 ether saddr . ip saddr @paid return`,
      // IPv6 forwarding is the IPv6 gate's (netdev sluice_gate): by MAC, with the walled garden's addresses.
      `iifname ${dev} meta nfproto ipv6 return`,
      `iifname ${dev} jump unpaid_out`,
      // Towards the LAN: only what answers a connection a device opened while it passed (or the garden's).
      `oifname ${dev} meta nfproto ipv4 ct state established,related return`,
      `oifname ${dev} meta nfproto ipv4 drop`,
    ),
    ...rule(
      'unpaid_out',
      `${GARDEN_MARK} return`,
      'meta l4proto tcp reject with tcp reset',
      'reject with icmpx admin-prohibited',
    ),
    '',
  ].join('\n');
}

/** A device's gate opened: its MAC with each of its IPv4 addresses, and its MAC for IPv6. */
export function ownOpenScript(device: PaidDevice): string {
  const t = `inet ${OWN_GATE_TABLE}`;
  const list = pairs([device]);
  return [
    ...(list.length > 0 ? [`add element ${t} paid { ${list.join(', ')} }`] : []),
    `add element ${t} paid_mac { ${normalizeMac(device.mac)} }`,
    '',
  ].join('\n');
}

/** A device's gate closed: each element added for it goes (add first, so a missing one fails nothing). */
export function ownCloseScript(device: PaidDevice): string {
  const t = `inet ${OWN_GATE_TABLE}`;
  const list = pairs([device]);
  const mac = normalizeMac(device.mac);
  return [
    ...(list.length > 0
      ? [`add element ${t} paid { ${list.join(', ')} }`, `delete element ${t} paid { ${list.join(', ')} }`]
      : []),
    `add element ${t} paid_mac { ${mac} }`,
    `delete element ${t} paid_mac { ${mac} }`,
    '',
  ].join('\n');
}

/**
 * The paid devices an `nft -j list set inet sluice_portal paid` and `… paid_mac` printed (an earlier run's): each MAC
 * with its addresses. Unreadable JSON gives none.
 */
export function parsePaidSets(pairsJson: string, macsJson: string): PaidDevice[] {
  const byMac = new Map<string, string[]>();
  for (const el of setElements(macsJson)) {
    if (typeof el === 'string') byMac.set(normalizeMac(el), []);
  }
  for (const el of setElements(pairsJson)) {
    const concat = (el as { concat?: unknown[] } | null)?.concat;
    if (!Array.isArray(concat) || concat.length !== 2) continue;
    const [mac, ip] = concat;
    if (typeof mac !== 'string' || typeof ip !== 'string' || !isIpv4(ip)) continue;
    const key = normalizeMac(mac);
    const ips = byMac.get(key) ?? [];
    if (!ips.includes(ip)) ips.push(ip);
    byMac.set(key, ips);
  }
  return [...byMac].map(([mac, ips]) => ({ mac, ips }));
}

function setElements(json: string): unknown[] {
  try {
    const doc = JSON.parse(json) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
    return (doc.nftables ?? []).flatMap((o) => o.set?.elem ?? []);
  } catch {
    return [];
  }
}
