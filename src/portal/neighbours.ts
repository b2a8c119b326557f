/**
 * A client's IPv4 address from the kernel's neighbour table (`/proc/net/arp` of the portal's network namespace), for
 * the gate's kernel counters, quota and speed tier at an auth, and the MAC behind the address a LAN request came from
 * (neighbourMac: gate/mac-resolver.ts). openNDS itself takes a client's MAC from the same table (it resolves the MAC of
 * the address a request came from), so the table holds what openNDS lists; and reading it costs a file read, where
 * `ndsctl json <mac>` costs openNDS ≈ 28 ms + 2.5 ms per listed client under its client-list lock, and a listing of
 * every client a script per client (docs/captive-portal.md "What a call costs openNDS").
 *
 * Only a complete entry counts (ATF_COM: the kernel resolved it; an incomplete or failed one has no MAC). A MAC with
 * more than one complete IPv4 entry (a client that changed address: the old entry lingers until it is collected) is
 * ambiguous unless one of them is the address the caller already has for it, and an address the caller has that the
 * table does not hold is a disagreement: the caller then asks the portal, as it would without the table. IPv6 is not
 * here: the kernel counters and the quota are IPv4 (kernel-counters.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tryNormalizeMac } from '../mac.ts';
import { isIpv4 } from './kernel-quota-nft.ts';

/** The kernel's ATF_COM flag (include/uapi/linux/if_arp.h): the entry is resolved. */
const ATF_COM = 0x02;

export const NEIGHBOUR_TABLE = '/proc/net/arp';

/**
 * The address `/proc/net/arp`'s text holds for `mac` (canonical form): `hint` when it is one of its complete IPv4
 * entries, else (no hint) its one complete IPv4 entry; null otherwise: none, several, or the hint not among them (a
 * disagreement is for the portal to settle).
 */
export function neighbourIp(table: string, mac: string, hint: string | null = null): string | null {
  const found = [...new Set(entriesOfMac(completeNeighbours(table), mac).map((e) => e.ip))];
  if (hint !== null) return found.includes(hint) ? hint : null;
  return found.length === 1 ? found[0]! : null;
}

/** One complete entry of the table: its IPv4 address, the MAC in canonical form, its device ('' when not given). */
export interface NeighbourEntry {
  ip: string;
  mac: string;
  device: string;
}

/** The table's complete IPv4 entries with a readable MAC, in its order. Pure: each call parses the text. */
export function completeNeighbours(table: string): readonly NeighbourEntry[] {
  const out: NeighbourEntry[] = [];
  // "IP address  HW type  Flags  HW address  Mask  Device", one entry a line after the header.
  for (const line of table.split('\n').slice(1)) {
    const [ip, , flags, hw, , device] = line.trim().split(/\s+/);
    if (ip === undefined || hw === undefined || flags === undefined) continue;
    if ((Number.parseInt(flags, 16) & ATF_COM) === 0 || !isIpv4(ip)) continue;
    const mac = tryNormalizeMac(hw);
    if (mac !== null) out.push(Object.freeze({ ip, mac, device: device ?? '' }));
  }
  return Object.freeze(out);
}

/** Each parse's entries by MAC, made at its first look by MAC and gone with the parse. */
const byMac = new WeakMap<readonly NeighbourEntry[], ReadonlyMap<string, readonly NeighbourEntry[]>>();
const NONE: readonly NeighbourEntry[] = Object.freeze([]);

/**
 * The entries of `mac` (canonical form) among a parse's `entries`, in the table's order: a purchase's opening looks
 * its device up 4 times in the parse its moment shares (its addresses twice, the metering guard's device twice), and
 * 32 openings filtering a 100-line table 128 times cost more of the main thread than one index a parse.
 */
export function entriesOfMac(entries: readonly NeighbourEntry[], mac: string): readonly NeighbourEntry[] {
  let index = byMac.get(entries);
  if (index === undefined) {
    const made = new Map<string, NeighbourEntry[]>();
    for (const e of entries) {
      const of = made.get(e.mac);
      if (of === undefined) made.set(e.mac, [e]);
      else of.push(e);
    }
    byMac.set(entries, made);
    index = made;
  }
  return index.get(mac) ?? NONE;
}

/** A table's text to its entries: completeNeighbours, or one of neighbourParser's. */
export type NeighbourParse = (table: string) => readonly NeighbourEntry[];

/**
 * completeNeighbours answering the same text from its last parse, for the one who reads the table to hand its
 * lookups: 32 purchases of one moment share one read of the table and look at it 4 times each (their addresses, the
 * metering guard's device check), and 128 parses of a 100-line table cost tens of ms of a router's CPU.
 */
export function neighbourParser(): NeighbourParse {
  let last: { table: string; entries: readonly NeighbourEntry[] } | null = null;
  return (table) => {
    if (last === null || last.table !== table) last = { table, entries: completeNeighbours(table) };
    return last.entries;
  };
}

/**
 * The MAC `/proc/net/arp`'s text holds for the IPv4 address `ip` (canonical form), on one of `devices` when given (the
 * LAN device(s) the portal gates: a host on another of the router's networks is none of its clients): the MAC of its
 * one complete entry there, else null (none, an incomplete one, an address that is not IPv4). openNDS takes a client's
 * MAC from this table too, when the client's first request reaches it.
 */
export function neighbourMac(table: string, ip: string, devices: readonly string[] | null = null): string | null {
  if (!isIpv4(ip)) return null;
  let mac: string | null = null;
  for (const line of table.split('\n').slice(1)) {
    const [entry, , flags, hw, , dev] = line.trim().split(/\s+/);
    if (entry !== ip || flags === undefined || hw === undefined) continue;
    if ((Number.parseInt(flags, 16) & ATF_COM) === 0 || (devices !== null && !devices.includes(dev ?? ''))) continue;
    const found = tryNormalizeMac(hw);
    if (found === null || (mac !== null && found !== mac)) return null;
    mac = found;
  }
  return mac;
}

/**
 * The table's text at each call: null when it cannot be read (another OS, a jail without /proc). Read at once, not on
 * libuv's pool: the kernel writes the text from memory as it is read (tens of µs for a hotspot's table), while an
 * asynchronous read is five pool round trips, each waiting for the main thread, which a burst of purchases keeps
 * busy: the openings of that burst waited for them before their nft run.
 */
export function neighbourTable(path = NEIGHBOUR_TABLE): () => Promise<string | null> {
  return async () => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  };
}

/**
 * A read of the table that may be answered from an earlier one: `accept` says whether a cached table answers the
 * caller (it holds what the caller looks for); one it refuses is read again. `parse`, when given, is the reader's
 * own (neighbourParser): its callers' looks at one text share one parse.
 */
export type NeighbourRead = ((accept?: (table: string) => boolean) => Promise<string | null>) & {
  readonly parse?: NeighbourParse;
};

/** How old a table sluice's own gate answers from (ms): well inside the kernel's own ARP staleness (minutes). */
export const NEIGHBOUR_MAX_AGE_MS = 1000;

/**
 * `read` shared by its callers: one read at a time, each caller of that moment given its text, and a table answered
 * again for `maxAgeMs` unless a caller's `accept` refuses it (the device or the address it looks for is not there:
 * a device that just joined, or took another address, is read anew at once). A purchase's opening reads the table
 * twice (its addresses, the metering guard's device check) and 32 purchases of one moment 64 times: shared, that is
 * one read and one parse, and the openings of one moment reach the nft batcher together and go to nft in one run.
 */
export function sharedNeighbourTable(
  read: () => Promise<string | null> = neighbourTable(),
  maxAgeMs = NEIGHBOUR_MAX_AGE_MS,
  now: () => number = () => performance.now(),
): NeighbourRead {
  let kept: { text: string; at: number } | null = null;
  let reading: Promise<string | null> | null = null;
  const fresh = (): Promise<string | null> => {
    if (reading !== null) return reading;
    const at = now();
    const run = read()
      .catch(() => null)
      .then((text) => {
        // An unreadable table is read again by the next caller.
        kept = text === null ? null : { text, at };
        return text;
      })
      .finally(() => {
        if (reading === run) reading = null;
      });
    reading = run;
    return run;
  };
  const shared = async (accept?: (table: string) => boolean): Promise<string | null> => {
    const k = kept;
    if (k !== null && now() - k.at <= maxAgeMs && (accept === undefined || accept(k.text))) return k.text;
    return fresh();
  };
  return Object.assign(shared, { parse: neighbourParser() });
}

/** Reads the table at each call (a few µs): null when it cannot be read (another OS, a jail without /proc). */
export function neighbourReader(path = NEIGHBOUR_TABLE): (mac: string, hint: string | null) => Promise<string | null> {
  return async (mac, hint) => {
    try {
      return neighbourIp(await readFile(path, 'utf8'), mac, hint);
    } catch {
      return null;
    }
  };
}

/**
 * neighbourMac over the table (null when it cannot be read), read at most once a `maxAgeMs` while it holds the address
 * (sharedNeighbourTable): every unpaid device's probe and page asks it, and an address it does not hold is read anew.
 */
export function neighbourMacReader(
  devices: readonly string[] | null,
  path = NEIGHBOUR_TABLE,
  maxAgeMs = NEIGHBOUR_MAX_AGE_MS,
): (ip: string) => Promise<string | null> {
  const table = sharedNeighbourTable(neighbourTable(path), maxAgeMs);
  return async (ip) => {
    if (!isIpv4(ip)) return null;
    const text = await table((t) => neighbourMac(t, ip, devices) !== null);
    return text === null ? null : neighbourMac(text, ip, devices);
  };
}
