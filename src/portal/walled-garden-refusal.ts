/**
 * Which addresses the walled garden never opens (pure): a garden entry lets a client that has not paid reach an
 * address, so an address inside the router's own networks (a name resolving to the router, to another LAN device, to
 * a private or link-local range) would hand the unpaid the LAN, or the router's services, instead of one remote host.
 * Whichever way an address arrives (a resolved name, a payment method's host such as a Cashu mint, an address
 * written in the config), it passes this rule before it enters the garden's set.
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The router's own addresses and the subnets its interfaces are on (the LAN's, the WAN's), as CIDR. */
export interface OwnNetworks {
  addresses: readonly string[];
  subnets: readonly string[];
}

/** Ranges no garden entry may point into, with the reason a refused address is logged with. */
export const NEVER_OPENED: readonly { cidr: string; reason: string }[] = [
  { cidr: '0.0.0.0/8', reason: 'unspecified' },
  { cidr: '10.0.0.0/8', reason: 'private (RFC 1918)' },
  { cidr: '100.64.0.0/10', reason: 'carrier-grade NAT (RFC 6598)' },
  { cidr: '127.0.0.0/8', reason: 'loopback' },
  { cidr: '169.254.0.0/16', reason: 'link-local' },
  { cidr: '172.16.0.0/12', reason: 'private (RFC 1918)' },
  { cidr: '192.168.0.0/16', reason: 'private (RFC 1918)' },
  { cidr: '224.0.0.0/4', reason: 'multicast' },
  { cidr: '240.0.0.0/4', reason: 'reserved or broadcast' },
  { cidr: '::/128', reason: 'unspecified' },
  { cidr: '::1/128', reason: 'loopback' },
  { cidr: 'fc00::/7', reason: 'unique local (ULA)' },
  { cidr: 'fe80::/10', reason: 'link-local' },
  { cidr: 'ff00::/8', reason: 'multicast' },
];

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

function listOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/');
    if (net === undefined || isIP(net) === 0) continue;
    const family = familyOf(net);
    list.addSubnet(net, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  }
  return list;
}

/**
 * NEVER_OPENED as block lists, built on the first check: the first isIP of a process compiles node:net's IPv6 pattern
 * (~5 ms of CPU), which every process and test file importing this module paid at import, most of them for nothing.
 */
let fixed: { list: BlockList; reason: string }[] | undefined;
const fixedLists = () => (fixed ??= NEVER_OPENED.map(({ cidr, reason }) => ({ list: listOf([cidr]), reason })));

/**
 * Why `address` may not enter the garden, or undefined when it may. IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are
 * judged as the IPv4 address they carry; something that is no address at all is refused too.
 */
export function gardenRefusal(address: string, own: OwnNetworks): string | undefined {
  if (isIP(address) === 0) return 'not an address';
  const family = familyOf(address);
  for (const { list, reason } of fixedLists()) if (list.check(address, family)) return reason;
  if (listOf(own.addresses).check(address, family)) return "the router's own address";
  if (listOf(own.subnets).check(address, family)) return "the router's own network (a LAN or WAN subnet)";
  return undefined;
}

/** The router's addresses and subnets now, from its interfaces (read at each round: an address can change). */
export function ownNetworksNow(): OwnNetworks {
  const addresses: string[] = [];
  const subnets: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      addresses.push(a.address.replace(/%.*$/, ''));
      if (a.cidr !== null) subnets.push(a.cidr.replace(/%[^/]*/, ''));
    }
  }
  return { addresses, subnets };
}
