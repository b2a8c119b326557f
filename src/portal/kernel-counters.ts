/**
 * Per-client byte counters in sluice's own nftables table (`inet sluice_count`, beside the kernel quota's
 * `inet sluice_quota`): the kernel counts every byte once, and one `nft -j list table` reads every client's counters in
 * a few ms whatever their number, where each `ndsctl json` costs openNDS ≈ 22 ms of CPU per listed client
 * (docs/captive-portal.md, "What a call costs openNDS"). This module is the nft side only: the table, one client's
 * lines, and the dump's parser (portal/kernel-counting.ts keeps the table in the kernel).
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
import { SluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';

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

const NAME = /^c([ud])_([0-9a-f]{12})$/;

/**
 * `nft -j list table inet sluice_count` → each client that has both counters. Throws ERR_KERNEL_QUOTA when the text is
 * not nft's JSON; counters of another table, half pairs and malformed entries are left out.
 */
export function parseCounterDump(json: string): KernelReading[] {
  return parseCounterTable(json).readings;
}

/** The dump → the readings, and whether the table's maps and chain are all there (else it is replaced). */
export function parseCounterTable(json: string): { readings: KernelReading[]; intact: boolean } {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new SluiceError('ERR_KERNEL_QUOTA', 'nft printed something that is not JSON', { cause: err });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new SluiceError('ERR_KERNEL_QUOTA', 'nft JSON without an nftables array');
  let tableHandle = 0;
  const parts = new Set<string>();
  const pairs = new Map<string, { up?: { h: number; b: number }; down?: { h: number; b: number } }>();
  const ipOf = new Map<string, string>();
  for (const item of items as Array<Record<string, Record<string, unknown> | undefined> | null>) {
    if (item === null || typeof item !== 'object') continue;
    const table = item['table'];
    if (table !== undefined && table['name'] === COUNTER_TABLE && table['family'] === 'inet')
      tableHandle = Number(table['handle']) || 0;
    const map = item['map'];
    if (map !== undefined && map['table'] === COUNTER_TABLE) parts.add(`map ${String(map['name'])}`);
    const chain = item['chain'];
    if (chain !== undefined && chain['table'] === COUNTER_TABLE) parts.add(`chain ${String(chain['name'])}`);
    if (map !== undefined && map['table'] === COUNTER_TABLE && map['name'] === 'cdown' && Array.isArray(map['elem'])) {
      for (const e of map['elem'] as unknown[])
        if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string') ipOf.set(e[1], e[0]);
    }
    const c = item['counter'];
    if (c === undefined || c['table'] !== COUNTER_TABLE || typeof c['name'] !== 'string') continue;
    const m = NAME.exec(c['name']);
    const bytes = Number(c['bytes']);
    const handle = Number(c['handle']);
    if (m === null || !Number.isSafeInteger(bytes) || bytes < 0 || !Number.isSafeInteger(handle)) continue;
    const pair = pairs.get(m[2]!) ?? {};
    pair[m[1] === 'u' ? 'up' : 'down'] = { h: handle, b: bytes };
    pairs.set(m[2]!, pair);
  }
  const out: KernelReading[] = [];
  for (const [hex, { up, down }] of pairs) {
    if (up === undefined || down === undefined) continue;
    const mac = hex.replace(/(..)(?!$)/g, '$1:');
    // Never 0 (a portal's "no token"); the table's handle too, so a table made again with the same counter handles
    // is still a new epoch.
    const epoch = (Math.imul(tableHandle + 1, 0x9e3779b1) ^ Math.imul(down.h, 0x85ebca6b) ^ up.h) | 1;
    out.push({ mac, epoch, downBytes: down.b, upBytes: up.b, ip: ipOf.get(downCounterName(mac)) ?? '' });
  }
  return {
    readings: out,
    intact:
      tableHandle !== 0 && ['map cup', 'map cdown', 'chain count_up', 'chain count_down'].every((p) => parts.has(p)),
  };
}
