/**
 * Every client's MAC and IP from a whole `ndsctl json` snapshot by JSON.parse, for the LAN endpoint's IP → MAC
 * lookups (meter/address-book.ts) when the usage worker's scanner stopped and its JSON.parse fallback read the
 * snapshot (the scanner hands them over itself otherwise: scan.ts AddressSink). Flat (mac, ip, mac, ip, …), '' for a
 * client without an address, as the scanner's path gives them. The envelope checks are client-list.ts's; a list it
 * refuses gives none.
 */
import { tryNormalizeMac } from '../mac.ts';
import { isRecord, readClientList } from './client-list.ts';
import type { PortalFlavour } from './types.ts';

export function clientAddresses(snapshot: Uint8Array, flavour: PortalFlavour): string[] | undefined {
  const list = readClientList(Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength).toString('utf8'), flavour);
  if (!list.ok) return undefined;
  const out: string[] = [];
  for (const [key, client] of list.entries) {
    const mac = tryNormalizeMac(key);
    if (mac === null || !isRecord(client)) return undefined;
    const ip = typeof client['ip'] === 'string' && client['ip'] !== 'null' ? client['ip'] : '';
    out.push(mac, ip);
  }
  return out;
}
