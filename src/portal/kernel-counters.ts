/**
 * Per-client byte counters in sluice's own nftables table (`inet sluice_count`, beside the kernel quota's
 * `inet sluice_quota`): the kernel counts every byte once, and one `nft -j list table` reads every client's counters
 * (under 10 ms for 250 clients, 0.2–0.5 s for 10,000: docs/performance.md), where each `ndsctl json` costs openNDS
 * ≈ 22 ms of CPU per listed client (docs/captive-portal.md, "What a call costs openNDS"). This module is the nft side
 * only: the table, one client's lines, and the dump's readings (portal/nft-scan.ts reads the dump;
 * portal/kernel-counting.ts keeps the table).
 *
 * A table of their own, not the quota's: the quota's table is replaced whole when a change to it fails, and turned off
 * when it cannot be read, and either would drop every client's count with it.
 *
 * Where they count (docs/captive-portal.md, "Kernel counters"): what the kernel quota (kernel-quota.ts) counts, so
 * that the bill and the brake agree to the byte (the quota stops a client at its allotment of what it counts; with a
 * bill that left out part of it, the quota stopped devices sharing a purchase 164 KiB short of what they paid for,
 * the pay page's own traffic in the lab's devices scenario 3):
 *  - upload: `ip saddr` on prerouting at priority 50 (after the quota's raw chain in its own table, before the
 *    portal's filter, as the quota counts by source MAC there): everything the client sends, to the internet and to
 *    the router (DNS, the pay page);
 *  - download: `ip daddr` on postrouting at priority 50, after the portal's filter and the quota's drop, before source
 *    NAT: everything that reaches the client through the gate, the router's own answers included (openNDS counts
 *    those too).
 * A client has counters only from the auth sluice makes for it to the deauth that closes its gate, so a closed gate's
 * splash traffic is never counted. IPv4 only, as both portals count. Each client has its own two named counters; their
 * nft handles identify one counting epoch (a counter deleted and made again is a new object, with a new handle,
 * counting from 0).
 */
import { normalizeMac } from '../mac.ts';
import { scanCounterDump } from './nft-scan.ts';

/** The table (its own: see above). */
export const COUNTER_TABLE = 'sluice_count';

/** The table's body, as lines inside `table inet sluice_count { … }`. */
export const COUNTER_TABLE_LINES: readonly string[] = [
  '  map cup { type ipv4_addr : counter; }',
  '  map cdown { type ipv4_addr : counter; }',
  '  chain count_up { type filter hook prerouting priority 50; policy accept; counter name ip saddr map @cup; }',
  '  chain count_down { type filter hook postrouting priority 50; policy accept; counter name ip daddr map @cdown; }',
];

const hex12 = (mac: string): string => normalizeMac(mac).replace(/:/g, '');
export const upCounterName = (mac: string): string => `cu_${hex12(mac)}`;
export const downCounterName = (mac: string): string => `cd_${hex12(mac)}`;

/** A client's counters from now (0), on this address. */
export function countLines(mac: string, ip: string): string[] {
  const t = COUNTER_TABLE;
  return [
    `add counter inet ${t} ${upCounterName(mac)}`,
    `add counter inet ${t} ${downCounterName(mac)}`,
    `add element inet ${t} cup { ${ip} : "${upCounterName(mac)}" }`,
    `add element inet ${t} cdown { ${ip} : "${downCounterName(mac)}" }`,
  ];
}

/** The whole table with these clients' counters from 0, replacing any earlier one in the same transaction. */
export function counterTableScript(clients: ReadonlyArray<{ mac: string; ip: string }>): string {
  const t = COUNTER_TABLE;
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    ...COUNTER_TABLE_LINES,
    '}',
    ...clients.flatMap((c) => countLines(c.mac, c.ip)),
    '',
  ].join('\n');
}

/** The client's counters, kept (the same epoch, the count going on), mapped on another address. */
export function moveLines(mac: string, from: string, to: string): string[] {
  const t = COUNTER_TABLE;
  return [
    `delete element inet ${t} cup { ${from} }`,
    `delete element inet ${t} cdown { ${from} }`,
    `add element inet ${t} cup { ${to} : "${upCounterName(mac)}" }`,
    `add element inet ${t} cdown { ${to} : "${downCounterName(mac)}" }`,
  ];
}

/** Stops counting a client and deletes its counters (a later countLines starts a new epoch). */
export function uncountLines(mac: string, ip: string): string[] {
  const t = COUNTER_TABLE;
  return [
    `delete element inet ${t} cup { ${ip} }`,
    `delete element inet ${t} cdown { ${ip} }`,
    `delete counter inet ${t} ${upCounterName(mac)}`,
    `delete counter inet ${t} ${downCounterName(mac)}`,
  ];
}

/** One client's counters as the kernel reported them. */
export interface KernelReading {
  /** Lowercase, colon-separated. */
  mac: string;
  /** Identifies the counters' epoch: changes when they are made again (the table's and the counters' nft handles). */
  epoch: number;
  downBytes: number;
  upBytes: number;
  /** The address the counters are mapped on ('' when not mapped: then they count nothing). */
  ip: string;
}

/**
 * `nft -j list table inet sluice_count` → each client that has both counters (portal/nft-scan.ts). Throws NftDumpError
 * (ERR_KERNEL_QUOTA) when it is not nft's JSON or not read exactly; counters of another table and half pairs are left
 * out.
 */
export function parseCounterDump(json: string | Uint8Array): KernelReading[] {
  return parseCounterTable(json).readings;
}

/** The dump → the readings, and whether the table's maps and chains are all there (else it is replaced). */
export function parseCounterTable(json: string | Uint8Array): { readings: KernelReading[]; intact: boolean } {
  const dump = scanCounterDump(json);
  return { readings: dump.readings(), intact: dump.intact };
}
