import type { PortalClient } from './types.ts';
import { isJsonObject, PortalParseError, type JsonObject } from './parse-error.ts';
import { tryNormalizeMac, tryNormalizeOwnMac } from '../mac.ts';
import { FORMATS } from './formats.ts';

/**
 * openNDS (9.x–11) `ndsctl json`. Every value is a JSON string and "no value" is the string "null"
 * (src/util.c ndsctl_json_client). `*_this_session` are floor(bytes / 1024) although its docs say kB:
 * 63,184,032 bytes counted showed as "61703". Numbers are accepted as well as digit strings so that a
 * future release that unquotes them still parses. The snapshot's envelope is read by client-list.ts.
 *
 * Each field is read where it is used, by its own name (`o[DOWNLOAD_KEY]`, not `o[name]` in a shared helper): the
 * main thread reads every client of a list (100k in a large venue), and V8 caches a property read per place in the
 * code, which one place reading many names defeats.
 */
const KIB = FORMATS.opennds.counterUnit;
const DOWNLOAD_KEY = FORMATS.opennds.downloadKey;
const UPLOAD_KEY = FORMATS.opennds.uploadKey;

/** `value` (o[name], read by the caller), unless the object lacks the field. */
function present(o: JsonObject, value: unknown, name: string, mac: string): unknown {
  // JSON.parse never makes an undefined value: undefined is a missing field, short of an object made otherwise.
  if (value === undefined && !(name in o))
    throw new PortalParseError(`openNDS client ${mac}: field ${name} missing`, { mac, field: name });
  return value;
}

/**
 * The value of 1 to 16 ASCII digits, or -1. Past 2^53 the sum rounds, but stays past it (as Number() of the text
 * does), so count() refuses both alike.
 */
function digitsValue(s: string): number {
  const n = s.length;
  if (n === 0 || n > 16) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** A non-negative integer given as a digit string (or a number); anything else rejects the reading. */
function count(raw: unknown, name: string, mac: string): number {
  const value = typeof raw === 'string' ? digitsValue(raw) : typeof raw === 'number' ? raw : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PortalParseError(`openNDS client ${mac}: ${name} is not a non-negative integer: ${JSON.stringify(raw)}`, {
      mac,
      field: name,
    });
  }
  return value;
}

function kibToBytes(raw: unknown, name: string, mac: string): number {
  const bytes = count(raw, name, mac) * KIB;
  if (!Number.isSafeInteger(bytes))
    throw new PortalParseError(`openNDS client ${mac}: ${name} too large`, { mac, field: name });
  return bytes;
}

/** Unix seconds, where "null" and "0" (a Preauthenticated client's session_start) both mean "none". */
function timestamp(raw: unknown, name: string, mac: string): number | null {
  if (raw === 'null' || raw === null) return null;
  const value = count(raw, name, mac);
  return value === 0 ? null : value;
}

/** A string field, where "null", "" and `none` (when given) mean no value. */
function optionalText(raw: unknown, name: string, mac: string, none?: string): string | null {
  if (raw === null) return null;
  if (typeof raw !== 'string')
    throw new PortalParseError(`openNDS client ${mac}: ${name} is not a string`, { mac, field: name });
  return raw === 'null' || raw === '' || raw === none ? null : raw;
}

export function parseOpenNdsClientObject(o: unknown, key?: string): PortalClient {
  if (!isJsonObject(o)) throw new PortalParseError(`openNDS client ${key ?? ''} is not an object`.trim());
  const rawMac = o['mac'];
  const mac = typeof rawMac === 'string' ? tryNormalizeOwnMac(rawMac) : null;
  if (mac === null) throw new PortalParseError(`openNDS client has no valid mac: ${JSON.stringify(rawMac)}`, { key });
  // A key that is the client's own mac text (what the portal prints) names the same MAC without a second reading.
  if (key !== undefined && key !== rawMac && tryNormalizeMac(key) !== mac) {
    throw new PortalParseError(`openNDS client listed under ${key} reports mac ${mac}`, { key, mac });
  }
  const state = present(o, o['state'], 'state', mac);
  if (typeof state !== 'string' || state.length === 0) {
    throw new PortalParseError(`openNDS client ${mac}: state is not a string`, { mac, field: 'state' });
  }
  return {
    mac,
    ip: optionalText(present(o, o['ip'], 'ip', mac), 'ip', mac),
    token: optionalText(present(o, o['token'], 'token', mac), 'token', mac, 'none'),
    state,
    downloadBytes: kibToBytes(present(o, o[DOWNLOAD_KEY], DOWNLOAD_KEY, mac), DOWNLOAD_KEY, mac),
    uploadBytes: kibToBytes(present(o, o[UPLOAD_KEY], UPLOAD_KEY, mac), UPLOAD_KEY, mac),
    sessionStart: timestamp(present(o, o['session_start'], 'session_start', mac), 'session_start', mac),
    sessionEnd: timestamp(present(o, o['session_end'], 'session_end', mac), 'session_end', mac),
    lastActive: timestamp(present(o, o['last_active'], 'last_active', mac), 'last_active', mac),
  };
}
