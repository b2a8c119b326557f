/**
 * Per-client byte counters in sluice's own nftables table (`netdev sluice_count`, beside the kernel quota's
 * `netdev sluice_quota`): the kernel counts every byte once, and one `nft -j list table` reads every client's counters
 * (under 10 ms for 250 clients, 0.2–0.5 s for 10,000: docs/performance.md), where each `ndsctl json` costs openNDS
 * ≈ 22 ms of CPU per listed client (docs/captive-portal.md, "What a call costs openNDS"). This module is the nft side
 * only: the table, one client's lines, and the dump's readings (portal/nft-scan.ts reads the dump;
 * portal/kernel-counting.ts keeps the table).
 *
 * A table of their own, not the quota's: the quota's table is replaced whole when a change to it fails, and turned off
 * when it cannot be read, and either would drop every client's count with it.
 *
 * Where they count (docs/captive-portal.md, "Kernel counters"): on the LAN device(s) the portal gates
 * (`main.shape_device`, openNDS's `gatewayinterface`: every one of them), keyed by the client's MAC, at the netdev
 * hooks, before anything else the kernel does with a packet there:
 *  - upload: `ether saddr` at the device's ingress, priority -450: everything the client sends, to the internet and
 *    to the router (DNS, the pay page);
 *  - download: `ether daddr` at its egress, priority -450: everything sent to the client, the router's own answers
 *    included (openNDS counts those too).
 * The prerouting and postrouting hooks they replace miss a flow a flowtable offloaded (openNDS 10.3.1 offloads its
 * authenticated clients' TCP and UDP, firewall4 with `flow_offloading`): the fast path starts at ingress priority
 * -100 and sends by the device's egress, so both hooks here see its packets. Keyed by MAC, a client that takes another
 * address (DHCP, a static one, IPv6) is counted on it from its first packet. IPv4 and IPv6 (`meta protocol`); ARP and
 * other link-level frames are not counted. At egress the kernel counts the 14-byte Ethernet header too: the scanner
 * takes 14 bytes a packet off the download counter (nft-scan.ts), so a reading is the IP-level count, as openNDS's.
 *
 * The kernel quota (kernel-quota.ts) drops at the same hooks at priority -500, before these chains, so what it drops is
 * not counted. A client has counters only from the auth sluice makes for it to the deauth that closes its gate, so a
 * closed gate's splash traffic is never counted. Each client has its own two named counters; their nft handles
 * identify one counting epoch (a counter deleted and made again is a new object, with a new handle, counting from 0).
 */
import { normalizeMac } from '../mac.ts';
import type { KernelReading } from './counter-dump.ts';
import { EGRESS_HEADER_BYTES, scanCounterDump } from './nft-scan.ts';
import { hookDevices } from './nft-devices.ts';
import type { NftRun } from './nft-run.ts';

export { EGRESS_HEADER_BYTES };

/** The table (its own: see above). */
export const COUNTER_TABLE = 'sluice_count';

/** The counting chains' priority at both hooks: before a flowtable's (-100), after the quota's (-500). */
export const COUNT_PRIORITY = -450;

/** The table's body on `devices` (the hotspot's, one or several), as lines inside `table netdev sluice_count { … }`. */
export function counterTableLines(devices: readonly string[]): string[] {
  const at = (hook: string): string =>
    `type filter hook ${hook} ${hookDevices(devices)} priority ${COUNT_PRIORITY}; policy accept;`;
  return [
    '  map cup { type ether_addr : counter; }',
    '  map cdown { type ether_addr : counter; }',
    `  chain count_up { ${at('ingress')} meta protocol { ip, ip6 } counter name ether saddr map @cup; }`,
    `  chain count_down { ${at('egress')} meta protocol { ip, ip6 } counter name ether daddr map @cdown; }`,
  ];
}

const hex12 = (mac: string): string => normalizeMac(mac).replace(/:/g, '');
export const upCounterName = (mac: string): string => `cu_${hex12(mac)}`;
export const downCounterName = (mac: string): string => `cd_${hex12(mac)}`;

/** A client's counters from now (0), on its MAC. */
export function countLines(mac: string): string[] {
  const t = COUNTER_TABLE;
  const m = normalizeMac(mac);
  return [
    `add counter netdev ${t} ${upCounterName(m)}`,
    `add counter netdev ${t} ${downCounterName(m)}`,
    `add element netdev ${t} cup { ${m} : "${upCounterName(m)}" }`,
    `add element netdev ${t} cdown { ${m} : "${downCounterName(m)}" }`,
  ];
}

/** The whole table on `devices` with these clients' counters from 0, replacing any earlier one in one transaction. */
export function counterTableScript(devices: readonly string[], macs: Iterable<string>): string {
  const t = COUNTER_TABLE;
  return [
    `add table netdev ${t}`,
    `delete table netdev ${t}`,
    `table netdev ${t} {`,
    ...counterTableLines(devices),
    '}',
    ...[...macs].flatMap((mac) => countLines(mac)),
    '',
  ].join('\n');
}

/**
 * Stops counting a client and deletes its counters (a later countLines starts a new epoch). `mapped`: false for
 * counters the maps do not name (a table an earlier run left half made).
 */
export function uncountLines(mac: string, mapped = true): string[] {
  const t = COUNTER_TABLE;
  const m = normalizeMac(mac);
  return [
    ...(mapped ? [`delete element netdev ${t} cup { ${m} }`, `delete element netdev ${t} cdown { ${m} }`] : []),
    `delete counter netdev ${t} ${upCounterName(m)}`,
    `delete counter netdev ${t} ${downCounterName(m)}`,
  ];
}

/**
 * `nft -j list table netdev sluice_count` → each client that has both counters (portal/nft-scan.ts). Throws
 * NftDumpError (ERR_KERNEL_QUOTA) when it is not nft's JSON or not read exactly; counters of another table and half
 * pairs are left out.
 */
export function parseCounterDump(json: string | Uint8Array): KernelReading[] {
  return parseCounterTable(json).readings;
}

/** The dump → the readings, and whether the table's maps and chains are all there (else it is replaced). */
export function parseCounterTable(json: string | Uint8Array): { readings: KernelReading[]; intact: boolean } {
  const dump = scanCounterDump(json);
  return { readings: dump.readings(), intact: dump.intact };
}

/** nft's arguments for one dump of every counter (`nft -j list table netdev sluice_count`). */
export const COUNTER_DUMP_ARGS: readonly string[] = ['-j', 'list', 'table', 'netdev', COUNTER_TABLE];

/** One dump of the counter table through `run`, parsed (throws when nft or the parse does). */
export async function readCounterTable(run: NftRun): Promise<{ readings: KernelReading[]; intact: boolean }> {
  return parseCounterTable(await run([...COUNTER_DUMP_ARGS], ''));
}
