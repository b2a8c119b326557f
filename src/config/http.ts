/**
 * The `http` section: the x402 HTTP endpoint on the LAN (docs/x402.md). Off unless `listen` names an address:port;
 * it needs x402.enabled. The package's firewall include keeps it off the WAN (files/etc/config/sluice says how).
 */
import type { SectionReader } from './reader.ts';
import { isHost, parseInteger, parseSecondsToMs, parseHttpUrl, type Parsed } from './values.ts';

export interface HttpConfig {
  /** Empty = off. */
  host: string;
  port: number;
  /** Requests per minute one client IP may make (a burst of the same size is allowed). */
  rateLimit: number;
  /**
   * The HMAC-SHA256 key of PC-sync logouts (`POST /pcsync/logout`, docs/pc-sync.md); empty = the route is off.
   * At least MIN_PCSYNC_SECRET characters when set.
   */
  pcsyncSecret: string;
  /** How far a logout's timestamp may be from the router's clock, and how long its nonce is kept. */
  pcsyncWindowMs: number;
  /**
   * The pay page's URL as clients reach it, for the RFC 8908 captive portal API's `user-portal-url` (an https URL in
   * front of the endpoint, docs/captive-portal.md); empty: http://<listen>/portal.
   */
  portalUrl: string;
  /** The venue's own page (RFC 8908 `venue-info-url`); empty: not announced. */
  venueUrl: string;
}

/** A URL a phone opens: http or https, at most 512 bytes (the endpoint's own URL bound). */
function pageUrl(v: string): Parsed<string> {
  if (v === '') return { ok: true, value: '' };
  if (v.length > 512) return { ok: false, reason: 'must be at most 512 characters' };
  return parseHttpUrl(v);
}

export const MIN_PCSYNC_SECRET = 16;

/** address:port of a LAN listener (http.listen, tollgate.listen); `examplePort` is what the reason shows. */
export function parseListen(v: string, examplePort = 2122): Parsed<{ host: string; port: number }> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  const host = m ? m[1]!.replace(/^\[|\]$/g, '') : '';
  if (!m || port < 1 || port > 65535 || !isHost(host))
    return {
      ok: false,
      reason: `must be address:port, e.g. 192.168.1.1:${examplePort} (the LAN address, not 0.0.0.0 on a router)`,
    };
  if (isUnspecified(host)) {
    return {
      ok: false,
      reason:
        `must name the LAN address, e.g. 192.168.1.1:${examplePort}: 0.0.0.0 and :: listen on every interface, ` +
        'the WAN too',
    };
  }
  return { ok: true, value: { host, port } };
}

/**
 * 0.0.0.0 or :: in any spelling the socket layer takes for it (`0`, `0.0`, `0x0`, `::0`, `0:0::0`, `::ffff:0.0.0.0`):
 * the WHATWG URL parser writes each one the way inet_aton and inet_pton read it.
 */
function isUnspecified(host: string): boolean {
  let canonical: string;
  try {
    canonical = new URL(`http://${host.includes(':') ? `[${host}]` : host}/`).hostname;
  } catch {
    return false;
  }
  return canonical === '0.0.0.0' || canonical === '[::]' || canonical === '[::ffff:0:0]';
}

/**
 * `http.listen` when unset with `portal 'sluice'`: the pay page and /captive run whenever sluice is the gate, at the
 * quickstart's address (OpenWrt's LAN address, the port the quickstart opens).
 */
export const OWN_GATE_LISTEN = { host: '192.168.1.1', port: 2122 } as const;

/** `listenDefault`: where the endpoint listens when `listen` is unset (off when none). */
export function readHttpSection(r: SectionReader, listenDefault?: { host: string; port: number }): HttpConfig {
  const l = r.parsed('listen', listenDefault ?? { host: '', port: 0 }, (v) =>
    v === '' ? { ok: true, value: { host: '', port: 0 } } : parseListen(v),
  );
  // A short key would let a LAN guest brute-force the logout of others' sessions: refused, the route stays off.
  const pcsyncSecret = r.string('pcsync_secret', '', (v) =>
    v.length < MIN_PCSYNC_SECRET
      ? `must be at least ${MIN_PCSYNC_SECRET} characters (or unset: PC-sync logouts off)`
      : undefined,
  );
  return {
    host: l.host,
    port: l.port,
    rateLimit: r.parsed('rate_limit', 30, (v) => parseInteger(v, 1, 10_000)),
    portalUrl: r.parsed('portal_url', '', pageUrl),
    venueUrl: r.parsed('venue_url', '', pageUrl),
    pcsyncSecret,
    pcsyncWindowMs: r.parsed('pcsync_window', 300_000, (v) => parseSecondsToMs(v, 5, 3600)),
  };
}

/** Where a phone opens the pay page: `portal_url`, else http://<listen>/portal; empty while the endpoint is off. */
export function payPageUrl(http: Pick<HttpConfig, 'host' | 'port' | 'portalUrl'>): string {
  if (http.portalUrl !== '') return http.portalUrl;
  if (http.host === '' || http.port === 0) return '';
  const host = http.host.includes(':') && !http.host.startsWith('[') ? `[${http.host}]` : http.host;
  return `http://${host}:${http.port}/portal`;
}
