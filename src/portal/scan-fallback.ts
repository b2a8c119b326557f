/**
 * The slow, general path of the usage worker: JSON.parse the snapshot (client-list.ts, the envelope check the main
 * thread's parser shares) and feed the same sink as the scanner. Used when the scanner stops (unusual but valid JSON,
 * or a broken snapshot); it also names the reason a snapshot is unusable, for the stats. It reads only what the
 * scanner reads and must produce the scanner's token hashes and state codes bit for bit: the token is hashed as the
 * portal printed it (a "none" token is not the empty one the main thread's parser makes of it).
 */
import { clientKeyMac, readClientList, readCount, isRecord, type SnapshotProblem } from './client-list.ts';
import { FORMATS, stateCodeOf } from './formats.ts';
import { macToParts } from './mac-parts.ts';
import { hashBytes } from './scan-lex.ts';
import type { AddressSink, SinkFor } from './scan.ts';
import type { PortalFlavour } from './types.ts';

export type FallbackOutcome =
  | { ok: true; flavour: PortalFlavour; clients: number; declared: number }
  | { ok: false; problem: SnapshotProblem; message: string };

const encoder = new TextEncoder();

export function parseSnapshotFallback(
  buf: Uint8Array,
  expected: PortalFlavour | 'auto',
  sinkFor: SinkFor,
  addressSink?: AddressSink,
  tokens = false,
): FallbackOutcome {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
  const list = readClientList(text, expected);
  if (!list.ok) return { ok: false, problem: list.problem, message: list.message };
  const { flavour, declared, keys, clients } = list;
  const { downloadKey, uploadKey } = FORMATS[flavour];
  // Validate everything before feeding the sink: a snapshot is used whole or not at all.
  const rows: Array<[number, number, number, number, number, number]> = [];
  const addresses: string[] = [];
  for (const key of keys) {
    const client = clients[key];
    const mac = clientKeyMac(key);
    const parts = macToParts(mac.toLowerCase());
    if (parts === undefined) return malformed(`client key ${JSON.stringify(mac.slice(0, 40))} is not a MAC`);
    if (!isRecord(client)) return malformed(`client ${mac} is not an object`);
    const down = readCount(client[downloadKey]);
    const up = readCount(client[uploadKey]);
    if (down === undefined || up === undefined) return malformed(`client ${mac} has no valid counters`);
    if (typeof client.token !== 'string' || typeof client.state !== 'string')
      return malformed(`client ${mac} has no token or state`);
    const token = encoder.encode(client.token);
    rows.push([parts[0], parts[1], hashBytes(token, 0, token.length), stateCodeOf(client.state), down, up]);
    if (addressSink !== undefined)
      addresses.push(
        mac.toLowerCase(),
        typeof client.ip === 'string' && client.ip !== 'null' ? client.ip : '',
        tokens ? client.token : '',
      );
  }
  const sink = sinkFor(flavour);
  for (const row of rows) {
    if (!sink(...row)) return malformed('duplicate client');
  }
  for (let i = 0; addressSink !== undefined && i < addresses.length; i += 3)
    addressSink(addresses[i]!, addresses[i + 1]!, addresses[i + 2]!);
  return { ok: true, flavour, clients: keys.length, declared };
}

function malformed(message: string): FallbackOutcome {
  return { ok: false, problem: 'malformed', message };
}
