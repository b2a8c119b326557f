/**
 * The kernel quota's nft side, pure (kernel-quota.ts keeps the table in step with the sessions): sluice's table and
 * one named quota per client (the scripts that build, install, set and remove it, one batch each) and the readers of
 * `nft -j` output (the quotas' counts, what a table left by an earlier run holds).
 */
import { SluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';

export const KERNEL_QUOTA_TABLE = 'sluice_quota';

export interface KernelQuotaEntry {
  /** Lowercase, colon-separated. */
  mac: string;
  /** The client's IPv4 address (the download side). */
  ip: string;
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
    `add quota inet ${KERNEL_QUOTA_TABLE} ${q} { over ${limitOf(e)} bytes }`,
    `add element inet ${KERNEL_QUOTA_TABLE} up { ${e.mac} : "${q}" }`,
    `add element inet ${KERNEL_QUOTA_TABLE} down { ${e.ip} : "${q}" }`,
  ];
}

export function removeLines(e: Pick<KernelQuotaEntry, 'mac' | 'ip'>): string[] {
  return [
    `delete element inet ${KERNEL_QUOTA_TABLE} up { ${e.mac} }`,
    `delete element inet ${KERNEL_QUOTA_TABLE} down { ${e.ip} }`,
    `delete quota inet ${KERNEL_QUOTA_TABLE} ${quotaName(e.mac)}`,
  ];
}

/**
 * The whole table, replacing any earlier one in the same transaction (`add` then `delete` makes the delete safe when
 * there is none). The chains drop a packet only when its client's quota is used up; a client without a quota never
 * matches the map lookup.
 */
export function tableScript(entries: readonly KernelQuotaEntry[]): string {
  const t = KERNEL_QUOTA_TABLE;
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  map up { type ether_addr : quota; }',
    '  map down { type ipv4_addr : quota; }',
    // IPv4 only, both ways, as both portals count (iptables): an IPv6 upload the portal never bills must not use up the
    // quota.
    '  chain upload { type filter hook prerouting priority raw; policy accept; meta nfproto ipv4 quota name ' +
      'ether saddr map @up drop; }',
    '  chain download { type filter hook postrouting priority raw; policy accept; quota name ip daddr map ' +
      '@down drop; }',
    '}',
    ...entries.flatMap(addLines),
    '',
  ].join('\n');
}

/** A fresh quota for a client (its earlier one, if any, goes in the same transaction: a fresh count). */
export function installScript(entry: KernelQuotaEntry, previous?: Pick<KernelQuotaEntry, 'mac' | 'ip'>): string {
  return [...(previous ? removeLines(previous) : []), ...addLines(entry), ''].join('\n');
}

/** A new limit on a client's quota: the kernel keeps what it counted so far (an update of the object). */
export function limitScript(entry: KernelQuotaEntry): string {
  return `add quota inet ${KERNEL_QUOTA_TABLE} ${quotaName(entry.mac)} { over ${limitOf(entry)} bytes }\n`;
}

export function removeScript(entry: Pick<KernelQuotaEntry, 'mac' | 'ip'>): string {
  return [...removeLines(entry), ''].join('\n');
}

/** `nft -j list quotas table inet sluice_quota` → quota name → limit and bytes counted. */
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
  ip: string;
  /** The quota's limit and what the kernel counted against it. */
  limitBytes: number;
  usedBytes: number;
}

/** sluice's table as an earlier run left it. */
export interface TableState {
  /** Each client whose quota is in both maps (upload by MAC, download by address). */
  clients: InheritedQuota[];
  /** Both maps and both chains are there: the table can be changed in place instead of replaced. */
  intact: boolean;
}

/**
 * `nft -j list table inet sluice_quota` → the clients it brakes and whether its structure is whole. Clients in one map
 * only, or without their quota object, are left out (a replaced table drops them).
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
  const ipOf = new Map(elems('down').map(([ip, q]) => [q, ip]));
  const clients: InheritedQuota[] = [];
  for (const [rawMac, q] of elems('up')) {
    const ip = ipOf.get(q);
    const quota = quotas.get(q);
    let mac: string;
    try {
      mac = normalizeMac(rawMac);
    } catch {
      continue;
    }
    if (ip === undefined || quota === undefined || !isIpv4(ip) || quotaName(mac) !== q) continue;
    clients.push({ mac, ip, limitBytes: quota.limitBytes, usedBytes: quota.usedBytes });
  }
  const intact =
    ['up', 'down'].every((m) => ofTable('map', m) !== undefined) &&
    ['upload', 'download'].every((c) => ofTable('chain', c) !== undefined);
  return { clients, intact };
}
