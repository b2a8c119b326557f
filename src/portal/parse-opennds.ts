import type { PortalClient } from './types.ts';
import { isJsonObject, PortalParseError, type JsonObject } from './parse-error.ts';
import { tryNormalizeMac } from '../mac.ts';
import { FORMATS } from './formats.ts';

/**
 * openNDS (9.x–11) `ndsctl json`. Every value is a JSON string and "no value" is the string "null"
 * (src/util.c ndsctl_json_client). `*_this_session` are floor(bytes / 1024) although its docs say kB:
 * 63,184,032 bytes counted showed as "61703". Numbers are accepted as well as digit strings so that a
 * future release that unquotes them still parses. The snapshot's envelope is read by client-list.ts.
 */
const KIB = FORMATS.opennds.counterUnit;

function field(o: JsonObject, name: string, mac: string): unknown {
  if (!(name in o)) throw new PortalParseError(`openNDS client ${mac}: field ${name} missing`, { mac, field: name });
  return o[name];
}

/** A non-negative integer given as a digit string (or a number); anything else rejects the reading. */
function count(o: JsonObject, name: string, mac: string): number {
  const raw = field(o, name, mac);
  let value: number;
  if (typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw)) value = Number(raw);
  else if (typeof raw === 'number') value = raw;
  else value = Number.NaN;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PortalParseError(`openNDS client ${mac}: ${name} is not a non-negative integer: ${JSON.stringify(raw)}`, {
      mac,
      field: name,
    });
  }
  return value;
}

function kibToBytes(o: JsonObject, name: string, mac: string): number {
  const bytes = count(o, name, mac) * KIB;
  if (!Number.isSafeInteger(bytes))
    throw new PortalParseError(`openNDS client ${mac}: ${name} too large`, { mac, field: name });
  return bytes;
}

/** Unix seconds, where "null" and "0" (a Preauthenticated client's session_start) both mean "none". */
function timestamp(o: JsonObject, name: string, mac: string): number | null {
  const raw = field(o, name, mac);
  if (raw === 'null' || raw === null) return null;
  const value = count(o, name, mac);
  return value === 0 ? null : value;
}

function optionalText(o: JsonObject, name: string, mac: string, none: readonly string[]): string | null {
  const raw = field(o, name, mac);
  if (raw === null) return null;
  if (typeof raw !== 'string')
    throw new PortalParseError(`openNDS client ${mac}: ${name} is not a string`, { mac, field: name });
  return none.includes(raw) ? null : raw;
}

export function parseOpenNdsClientObject(o: unknown, key?: string): PortalClient {
  if (!isJsonObject(o)) throw new PortalParseError(`openNDS client ${key ?? ''} is not an object`.trim());
  const rawMac = o['mac'];
  const mac = typeof rawMac === 'string' ? tryNormalizeMac(rawMac) : null;
  if (mac === null) throw new PortalParseError(`openNDS client has no valid mac: ${JSON.stringify(rawMac)}`, { key });
  // A key that is the client's own mac text (what the portal prints) names the same MAC without a second reading.
  if (key !== undefined && key !== rawMac && tryNormalizeMac(key) !== mac) {
    throw new PortalParseError(`openNDS client listed under ${key} reports mac ${mac}`, { key, mac });
  }
  const state = field(o, 'state', mac);
  if (typeof state !== 'string' || state.length === 0) {
    throw new PortalParseError(`openNDS client ${mac}: state is not a string`, { mac, field: 'state' });
  }
  return {
    mac,
    ip: optionalText(o, 'ip', mac, ['null', '']),
    token: optionalText(o, 'token', mac, ['null', 'none', '']),
    state,
    downloadBytes: kibToBytes(o, FORMATS.opennds.downloadKey, mac),
    uploadBytes: kibToBytes(o, FORMATS.opennds.uploadKey, mac),
    sessionStart: timestamp(o, 'session_start', mac),
    sessionEnd: timestamp(o, 'session_end', mac),
    lastActive: timestamp(o, 'last_active', mac),
  };
}
