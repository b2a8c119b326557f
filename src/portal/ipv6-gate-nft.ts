/**
 * The IPv6 gate's nft side, pure (ipv6-gate.ts keeps it in step with the gates sluice opens): sluice's table
 * `netdev sluice_gate` on the LAN device the portal gates, which lets a client's IPv6 through only while its gate is
 * open. Neither portal filters IPv6 (openNDS 9.10 and nodogsplash set up iptables for IPv4 alone; openNDS 10.3.1's
 * tables are IPv4 too and it turns the router's `wan6` off instead), so on a dual-stack LAN, as OpenWrt's default is,
 * a client that never paid would reach everything over IPv6.
 *
 * The MACs the portal trusts (openNDS `trustedmac`, read from its listing) pass too: the portal lets them through
 * over IPv4 without a session, and so does this table over IPv6.
 *
 * Keyed by MAC at the netdev hooks, as the kernel counters and quota are (kernel-counters.ts): whatever addresses the
 * client takes (SLAAC and its temporary addresses change often), and a flow a flowtable offloaded, meet the same rule,
 * and a gate that closes stops its IPv6 flows at once, established or not. A client whose gate is closed keeps:
 *  - what it sends to the router itself (link-local, multicast: neighbour discovery, router solicitations, DHCPv6;
 *    the router's own addresses: DNS) and what the router sends it (from a link-local or one of its own addresses);
 *  - the walled garden's IPv6 addresses on the garden's ports, both ways (walled-garden.ts feeds them here).
 * Everything else is dropped: TCP towards the internet answered with a reset, so that a dual-stack client falls back
 * to IPv4 (and meets the portal's splash page) at once instead of after a timeout. That reset leaves through the
 * download chain as a 20-byte TCP packet with no data, which is all that chain lets through from outside; any other
 * answer (an ICMPv6 error) could carry what an accomplice upstream wants to push to the client.
 *
 * The same table holds a closing client's forwarded traffic, IPv4 and IPv6, stopped (`closing`) from the moment sluice
 * closes its gate until the portal answers the deauth: a portal that is down or dead (openNDS 10.3.1 and 9.10 keep
 * their firewall rules when they die, docs/captive-portal.md "Portal restarts") would otherwise let a session that
 * ended run on until its restart. What the client sends the router itself (DHCP, DNS, ARP, the portal's pages) still
 * passes. Each element lapses by itself after a while unless the close is tried again, so a stop never outlives
 * sluice's retries: a client must reach the splash page again once the portal gates it, which a stop would prevent.
 *
 * At a venue router (docs/roaming.md) it is also the lease's dead-man's switch: the clients of sessions held under a
 * venue lease (`leased`) pass only while their element of `lease_live` lives, an element the daemon renews before
 * each status that renews the lease at the fleet, with a timeout shorter than the lease's TTL (venue-lease-time.ts).
 * A daemon that dies renews nothing: the kernel stops the device here (as a closing client: what it sends the router
 * itself still passes) before the lease expires at the fleet and another router may open it, whatever the portal's
 * own rules, which outlive the daemon, still say.
 */
import { normalizeMac } from '../mac.ts';
import { hookDevices } from './nft-devices.ts';

export const GATE_TABLE = 'sluice_gate';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Before the quota (-500), the counters (-450) and a flowtable (-100): nothing of a closed gate is counted. */
export const GATE_PRIORITY = -550;

export interface GateRuleset {
  /** The LAN device(s) the portal gates (`main.shape_device`, every one). */
  devices: readonly string[];
  /** The clients whose gate is open. */
  open: Iterable<string>;
  /** The MACs the portal trusts (its trustedmac list): they pass over IPv6 as over IPv4. */
  trusted?: Iterable<string>;
  /** The walled garden's IPv6 addresses and its ports. */
  garden: readonly string[];
  ports: readonly number[];
  /** Clients whose close the portal has not answered yet: their forwarded traffic stops (for `holdSeconds`). */
  closing?: Iterable<string>;
  holdSeconds?: number;
  /** The clients held under a venue lease: each passes only while its `lease_live` element lives. */
  leased?: Iterable<string>;
  /** The lease elements alive and what is left of each, in ms (a rebuild writes what was left, never more). */
  leaseLive?: ReadonlyMap<string, number>;
}

/** How long a closing client stays stopped unless the close is tried again (each try starts it anew). */
export const DEFAULT_HOLD_SECONDS = 60;

const elements = (xs: readonly string[]): string => (xs.length > 0 ? ` elements = { ${xs.join(', ')} };` : '');

/** The whole table, replacing any earlier one in one transaction (packets see the old table or the new one). */
export function gateTableScript(r: GateRuleset): string {
  const t = GATE_TABLE;
  const at = (hook: string): string =>
    `type filter hook ${hook} ${hookDevices(r.devices)} priority ${GATE_PRIORITY}; policy accept;`;
  const open = [...r.open].map((m) => normalizeMac(m));
  const trusted = [...(r.trusted ?? [])].map((m) => normalizeMac(m));
  const hold = r.holdSeconds ?? DEFAULT_HOLD_SECONDS;
  const closing = [...(r.closing ?? [])].map((m) => `${normalizeMac(m)} timeout ${hold}s`);
  const leased = [...(r.leased ?? [])].map((m) => normalizeMac(m));
  const live = [...(r.leaseLive ?? [])]
    .filter(([, leftMs]) => leftMs >= 1)
    .map(([m, leftMs]) => `${normalizeMac(m)} timeout ${Math.floor(leftMs)}ms`);
  return [
    `add table netdev ${t}`,
    `delete table netdev ${t}`,
    `table netdev ${t} {`,
    `  set open { type ether_addr;${elements(open)} }`,
    `  set trusted { type ether_addr;${elements(trusted)} }`,
    `  set garden { type ipv6_addr;${elements(r.garden)} }`,
    `  set ports { type inet_service;${elements(r.ports.map(String))} }`,
    `  set closing { type ether_addr; flags timeout;${elements(closing)} }`,
    `  set leased { type ether_addr;${elements(leased)} }`,
    `  set lease_live { type ether_addr; flags timeout;${elements(live)} }`,
    // A closing client: to the router (broadcast and multicast too: DHCP, neighbour discovery) and nothing else.
    '  chain closing_upload {',
    '    meta protocol != { ip, ip6 } accept',
    '    fib daddr type { local, broadcast, multicast } accept',
    '    ip6 daddr { fe80::/10, ff00::/8 } accept',
    '    drop',
    '  }',
    '  chain closing_download {',
    '    meta protocol != { ip, ip6 } accept',
    '    fib saddr type local accept',
    '    ip6 saddr fe80::/10 accept',
    '    drop',
    '  }',
    `  chain upload {`,
    `    ${at('ingress')}`,
    '    ether saddr @closing jump closing_upload',
    '    ether saddr @leased ether saddr != @lease_live jump closing_upload',
    '    meta protocol != ip6 accept',
    '    ether saddr @open accept',
    '    ether saddr @trusted accept',
    '    ip6 daddr { fe80::/10, ff00::/8 } accept',
    '    fib daddr type local accept',
    '    ip6 daddr @garden meta l4proto { tcp, udp } th dport @ports accept',
    '    meta l4proto tcp reject with tcp reset',
    '    drop',
    '  }',
    `  chain download {`,
    `    ${at('egress')}`,
    '    ether daddr @closing jump closing_download',
    '    ether daddr @leased ether daddr != @lease_live jump closing_download',
    '    meta protocol != ip6 accept',
    '    ether daddr @open accept',
    '    ether daddr @trusted accept',
    '    ip6 saddr fe80::/10 accept',
    '    fib saddr type local accept',
    '    ip6 saddr @garden meta l4proto { tcp, udp } th sport @ports accept',
    '    ip6 nexthdr tcp ip6 length 20 tcp flags rst accept',
    '    drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A client's gate opened: its IPv6 passes. */
export function openScript(mac: string): string {
  return `add element netdev ${GATE_TABLE} open { ${normalizeMac(mac)} }\n`;
}

/** A client's gate closed: its IPv6 stops (an element already gone makes nft fail: the caller rebuilds). */
export function closeScript(mac: string): string {
  return `delete element netdev ${GATE_TABLE} open { ${normalizeMac(mac)} }\n`;
}

/**
 * A client's close begun: its forwarded traffic stops for `holdSeconds` from now, a stop already there started anew
 * (add, delete, add: one transaction, whether or not it was there).
 */
export function holdScript(mac: string, holdSeconds: number): string {
  const element = `netdev ${GATE_TABLE} closing { ${normalizeMac(mac)}`;
  return [
    `add element ${element} timeout ${holdSeconds}s }`,
    `delete element ${element} }`,
    `add element ${element} timeout ${holdSeconds}s }`,
    '',
  ].join('\n');
}

/** The portal answered the close: the stop goes (there or not: add, then delete). */
export function releaseScript(mac: string): string {
  const element = `netdev ${GATE_TABLE} closing { ${normalizeMac(mac)} }`;
  return `add element ${element}\ndelete element ${element}\n`;
}

/**
 * Venue leases renewed: each client's `lease_live` element lives `timeoutMs` from now (add, delete, add: one
 * transaction, whether or not it was there or had lapsed), `leased` added too (there already: nothing). One batch
 * for every leased client of the round: a kernel operation, nothing written to flash.
 */
export function leaseScript(macs: readonly string[], timeoutMs: number): string {
  const t = GATE_TABLE;
  const ms = Math.max(1, Math.floor(timeoutMs));
  return macs
    .map((mac) => {
      const m = normalizeMac(mac);
      return [
        `add element netdev ${t} leased { ${m} }`,
        `add element netdev ${t} lease_live { ${m} timeout ${ms}ms }`,
        `delete element netdev ${t} lease_live { ${m} }`,
        `add element netdev ${t} lease_live { ${m} timeout ${ms}ms }`,
        '',
      ].join('\n');
    })
    .join('');
}

/** A client's venue lease here is over (its session ended or moved): both elements go (there or not). */
export function unleaseScript(mac: string): string {
  const t = GATE_TABLE;
  const m = normalizeMac(mac);
  return [
    `add element netdev ${t} leased { ${m} }`,
    `delete element netdev ${t} leased { ${m} }`,
    `add element netdev ${t} lease_live { ${m} timeout 1s }`,
    `delete element netdev ${t} lease_live { ${m} }`,
    '',
  ].join('\n');
}

/**
 * `nft -j list set netdev sluice_gate lease_live` → each element alive and what is left of it in ms (nft's JSON gives
 * whole seconds, rounded down: a restart keeps at most what was left, never more). Anything unreadable: none.
 */
export function parseLeaseLive(json: string): Map<string, number> {
  const out = new Map<string, number>();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  const items = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(items)) return out;
  for (const item of items) {
    const elems = (item as { set?: { elem?: unknown } }).set?.elem;
    if (!Array.isArray(elems)) continue;
    for (const e of elems) {
      const elem = (e as { elem?: { val?: unknown; expires?: unknown } }).elem;
      if (typeof elem?.val !== 'string' || typeof elem.expires !== 'number' || !(elem.expires > 0)) continue;
      if (MAC.test(elem.val)) out.set(elem.val.toLowerCase(), elem.expires * 1000);
    }
  }
  return out;
}

/** The MACs the portal trusts now (the set replaced in one transaction). */
export function trustedScript(macs: readonly string[]): string {
  const t = GATE_TABLE;
  const list = macs.map((m) => normalizeMac(m));
  return [
    `flush set netdev ${t} trusted`,
    ...(list.length > 0 ? [`add element netdev ${t} trusted { ${list.join(', ')} }`] : []),
    '',
  ].join('\n');
}

/** The walled garden's IPv6 addresses and ports now (both sets replaced in one transaction). */
export function gardenScript(garden: readonly string[], ports: readonly number[]): string {
  const t = GATE_TABLE;
  return [
    `flush set netdev ${t} garden`,
    `flush set netdev ${t} ports`,
    ...(garden.length > 0 ? [`add element netdev ${t} garden { ${garden.join(', ')} }`] : []),
    ...(ports.length > 0 ? [`add element netdev ${t} ports { ${ports.join(', ')} }`] : []),
    '',
  ].join('\n');
}
