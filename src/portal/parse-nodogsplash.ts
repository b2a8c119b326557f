import type { PortalClient } from './types.ts';
import { isJsonObject, PortalParseError } from './parse-error.ts';
import { tryNormalizeMac, tryNormalizeOwnMac } from '../mac.ts';
import { FORMATS } from './formats.ts';

/**
 * nodogsplash 5.0.2 `ndsctl json`: unquoted numbers, `downloaded`/`uploaded` = floor(bytes / 1000) (decimal kB,
 * src/util.c ndsctl_json_client). Right after a splash-page auth `avg_*_speed` divide by a zero duration and print
 * `inf`/`nan`, which makes the whole text invalid JSON: that reading is rejected (PortalParseError) and skipped.
 * The snapshot's envelope is read by client-list.ts.
 */
const KB = FORMATS.nodogsplash.counterUnit;
const DOWNLOAD_KEY = FORMATS.nodogsplash.downloadKey;
const UPLOAD_KEY = FORMATS.nodogsplash.uploadKey;

// Each field is read where it is used, by its own name (parse-opennds.ts says why).
function integer(raw: unknown, name: string, mac: string): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) {
    throw new PortalParseError(
      `nodogsplash client ${mac}: ${name} is not a non-negative integer: ${JSON.stringify(raw)}`,
      {
        mac,
        field: name,
      },
    );
  }
  return raw;
}

function kbToBytes(raw: unknown, name: string, mac: string): number {
  const bytes = integer(raw, name, mac) * KB;
  if (!Number.isSafeInteger(bytes))
    throw new PortalParseError(`nodogsplash client ${mac}: ${name} too large`, { mac, field: name });
  return bytes;
}

function text(raw: unknown, name: string, mac: string): string {
  if (typeof raw !== 'string')
    throw new PortalParseError(`nodogsplash client ${mac}: ${name} is not a string`, { mac, field: name });
  return raw;
}

export function parseNodogsplashClientObject(o: unknown, key?: string): PortalClient {
  if (!isJsonObject(o)) throw new PortalParseError(`nodogsplash client ${key ?? ''} is not an object`.trim());
  const rawMac = o['mac'];
  const mac = typeof rawMac === 'string' ? tryNormalizeOwnMac(rawMac) : null;
  if (mac === null)
    throw new PortalParseError(`nodogsplash client has no valid mac: ${JSON.stringify(rawMac)}`, { key });
  // A key that is the client's own mac text (what the portal prints) names the same MAC without a second reading.
  if (key !== undefined && key !== rawMac && tryNormalizeMac(key) !== mac) {
    throw new PortalParseError(`nodogsplash client listed under ${key} reports mac ${mac}`, { key, mac });
  }
  const state = text(o['state'], 'state', mac);
  if (state.length === 0) throw new PortalParseError(`nodogsplash client ${mac}: empty state`, { mac });
  const ip = text(o['ip'], 'ip', mac);
  const token = text(o['token'], 'token', mac);
  // `added` stays 0 after `ndsctl auth` (only the splash path sets it), so 0 means "unknown", not 1970.
  const added = integer(o['added'], 'added', mac);
  const active = integer(o['active'], 'active', mac);
  return {
    mac,
    ip: ip === '' || ip === 'null' ? null : ip,
    token: token === '' || token === 'none' ? null : token,
    state,
    downloadBytes: kbToBytes(o[DOWNLOAD_KEY], DOWNLOAD_KEY, mac),
    uploadBytes: kbToBytes(o[UPLOAD_KEY], UPLOAD_KEY, mac),
    sessionStart: added === 0 ? null : added,
    sessionEnd: null,
    lastActive: active === 0 ? null : active,
  };
}
