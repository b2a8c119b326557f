/**
 * The kernel quota's nft side, pure (kernel-quota.ts keeps the table in step with the sessions): sluice's table and
 * one named quota per client (the scripts that build, install, set and remove it, one batch each) and the readers of
 * `nft -j` output (the quotas' counts, what a table left by an earlier run holds).
 */
import { SluiceError } from '../errors.ts';
import { normalizeMac, tryNormalizeMac } from '../mac.ts';
import { hookDevices } from './nft-devices.ts';

export const KERNEL_QUOTA_TABLE = 'sluice_quota';

export interface KernelQuotaEntry {
  /** Lowercase, colon-separated. */
  mac: string;
  /** Bytes the kernel lets through from now (both directions together). */
  limitBytes: number;
}

/** The data session a quota is for, as the kernel quota needs it. */
export interface BrakedSession {
  /** Bytes left now for this client: for a device of a multi-device purchase, its even part of the session's. */
  left: number;
  /** The session's allotment (a top-up raises the quota by its growth, split as `left` is). */
  allotment: bigint;
  /** The devices the session's bytes are shared by (absent: one). */
  devices?: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(ip: string): boolean {
  return IPV4.test(ip);
}

/** q_ and the MAC's 12 hex digits: a valid nft object name. */
export function quotaName(mac: string): string {
  return `q_${mac.replace(/:/g, '')}`;
}

/** nft takes `over 0 bytes` as a quota that drops every packet; a negative or fractional left is floored at 0, and an
 *  allotment past 2^53 (2^80 is allowed) is capped there: the kernel's 64-bit count never gets near either. */
function limitOf(entry: KernelQuotaEntry): number {
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(entry.limitBytes)));
}

function addLines(e: KernelQuotaEntry): string[] {
  const q = quotaName(e.mac);
  return [
    `add quota netdev ${KERNEL_QUOTA_TABLE} ${q} { over ${limitOf(e)} bytes }`,
    `add element netdev ${KERNEL_QUOTA_TABLE} up { ${e.mac} : "${q}" }`,
    `add element netdev ${KERNEL_QUOTA_TABLE} down { ${e.mac} : "${q}" }`,
  ];
}

export function removeLines(e: Pick<KernelQuotaEntry, 'mac'>): string[] {
  return [
    `delete element netdev ${KERNEL_QUOTA_TABLE} up { ${e.mac} }`,
    `delete element netdev ${KERNEL_QUOTA_TABLE} down { ${e.mac} }`,
    `delete quota netdev ${KERNEL_QUOTA_TABLE} ${quotaName(e.mac)}`,
  ];
}

/** The quota's chains' priority at both hooks: before the counters' (-450) and a flowtable's (-100). */
export const QUOTA_PRIORITY = -500;

/**
 * The whole table on `devices` (the LAN device(s) the portal gates, one chain on all), replacing any earlier one in the
 * same transaction (`add` then `delete` makes the delete safe when there is none). The chains drop a packet only when
 * its client's quota is used up; a client without a quota never matches the map lookup. Keyed by MAC at the device's
 * ingress
 * (upload) and egress (download), as the counters are (kernel-counters.ts): whatever address the client uses, and a
 * flow a flowtable offloaded, are braked too. The egress hook counts each packet's 14-byte Ethernet header, so a
 * download stops up to 14 bytes a packet (≈ 0.9 % at 1,514-byte frames) before the allotment; the meter's refill
 * (meter/brake-watch.ts) hands the rest back.
 */
export function tableScript(devices: readonly string[], entries: readonly KernelQuotaEntry[]): string {
  const t = KERNEL_QUOTA_TABLE;
  const at = (hook: string): string =>
    `type filter hook ${hook} ${hookDevices(devices)} priority ${QUOTA_PRIORITY}; policy accept;`;
  return [
    `add table netdev ${t}`,
    `delete table netdev ${t}`,
    `table netdev ${t} {`,
    '  map up { type ether_addr : quota; }',
    '  map down { type ether_addr : quota; }',
    // IPv4 and IPv6, as the counters count: ARP and other link-level frames are never dropped.
    `  chain upload { ${at('ingress')} meta protocol { ip, ip6 } quota name ether saddr map @up drop; }`,
    `  chain download { ${at('egress')} meta protocol { ip, ip6 } quota name ether daddr map @down drop; }`,
    '}',
    ...entries.flatMap(addLines),
    '',
  ].join('\n');
}

/** A fresh quota for a client (its earlier one, if any, goes in the same transaction: a fresh count). */
export function installScript(entry: KernelQuotaEntry, previous?: Pick<KernelQuotaEntry, 'mac'>): string {
  return [...(previous ? removeLines(previous) : []), ...addLines(entry), ''].join('\n');
}

/** A new limit on a client's quota: the kernel keeps what it counted so far (an update of the object). */
export function limitScript(entry: KernelQuotaEntry): string {
  return `add quota netdev ${KERNEL_QUOTA_TABLE} ${quotaName(entry.mac)} { over ${limitOf(entry)} bytes }\n`;
}

export function removeScript(entry: Pick<KernelQuotaEntry, 'mac'>): string {
  return [...removeLines(entry), ''].join('\n');
}

/** `nft -j list table netdev sluice_quota` (or `list quotas`) → quota name → limit and bytes counted. */
export function parseQuotaList(json: string): Map<string, { limitBytes: number; usedBytes: number }> {
  const out = new Map<string, { limitBytes: number; usedBytes: number }>();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new SluiceError('ERR_KERNEL_QUOTA', 'nft printed something that is not JSON', { cause: err });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new SluiceError('ERR_KERNEL_QUOTA', 'nft JSON without an nftables array');
  for (const item of items) {
    const q = (item as { quota?: { name?: unknown; table?: unknown; bytes?: unknown; used?: unknown } } | null)?.quota;
    if (q === undefined || q.table !== KERNEL_QUOTA_TABLE || typeof q.name !== 'string') continue;
    const limitBytes = Number(q.bytes);
    const usedBytes = Number(q.used ?? 0);
    if (!Number.isFinite(limitBytes) || !Number.isFinite(usedBytes)) continue;
    out.set(q.name, { limitBytes, usedBytes });
  }
  return out;
}

/** A client's quota as an earlier run of sluice left it in the kernel. */
export interface InheritedQuota {
  mac: string;
  /** The quota's limit and what the kernel counted against it. */
  limitBytes: number;
  usedBytes: number;
}

/** sluice's table as an earlier run left it. */
export interface TableState {
  /** Each client whose quota is in both maps under its MAC. */
  clients: InheritedQuota[];
  /** Both maps and both chains are there: the table can be changed in place instead of replaced. */
  intact: boolean;
}

/**
 * `nft -j list table netdev sluice_quota` → the clients it brakes and whether its structure is whole. Clients in one
 * map only, or without their quota object, are left out (a replaced table drops them).
 */
export function parseTableState(json: string): TableState {
  const quotas = parseQuotaList(json);
  const items = (JSON.parse(json) as { nftables: unknown[] }).nftables;
  const ofTable = (kind: 'map' | 'chain', name: string): { elem?: unknown } | undefined => {
    for (const item of items) {
      const o = (item as Record<string, { name?: unknown; table?: unknown; elem?: unknown } | undefined> | null)?.[
        kind
      ];
      if (o !== undefined && o.table === KERNEL_QUOTA_TABLE && o.name === name) return o;
    }
    return undefined;
  };
  const elems = (name: string): Array<[string, string]> => {
    const e = ofTable('map', name)?.elem;
    return Array.isArray(e)
      ? e.filter((x): x is [string, string] => Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'string')
      : [];
  };
  const down = new Map(elems('down').map(([mac, q]) => [q, mac]));
  const clients: InheritedQuota[] = [];
  for (const [rawMac, q] of elems('up')) {
    const quota = quotas.get(q);
    let mac: string;
    try {
      mac = normalizeMac(rawMac);
    } catch {
      continue;
    }
    const downMac = down.get(q);
    if (downMac === undefined || tryNormalizeMac(downMac) !== mac || quota === undefined || quotaName(mac) !== q)
      continue;
    clients.push({ mac, limitBytes: quota.limitBytes, usedBytes: quota.usedBytes });
  }
  const intact =
    ['up', 'down'].every((m) => ofTable('map', m) !== undefined) &&
    ['upload', 'download'].every((c) => ofTable('chain', c) !== undefined);
  return { clients, intact };
}
