/**
 * The endpoint's own routes for the caller's device: GET /session, GET /captive (RFC 8908), POST /restore/challenge
 * and /restore, GET /devices and POST /devices/join|remove, POST /pcsync/logout. Each acts for the portal client of
 * the request's source IP only (PC-sync: for the session its signed call names).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError, toSluiceError } from '../errors.ts';
import { sessionView } from '../api/index.ts';
import { isLive } from '../sessions/index.ts';
import { readJsonBody } from '../listener/index.ts';
import { CAPTIVE_MEDIA_TYPE, captiveAnswer } from './captive-api.ts';
import { DEVICES_PATHS, joinDevice, listDevices, removeDevice } from './devices.ts';
import { pcsyncLogout } from './pcsync.ts';
import { portalClientMac, send, type RouteCall } from './reply.ts';
import { someFormOffered } from './pay-forms.ts';
import type { RestoreDesk } from './restore.ts';
import type { HttpEndpointOptions } from './options.ts';

const MAX_RESTORE_BYTES = 1024;

/** POST /restore/challenge and /restore (restore.ts) for the caller's MAC; every outcome is logged for the admin. */
export async function restoreRoute(
  options: HttpEndpointOptions,
  restorer: RestoreDesk,
  { req, res, ip, path }: RouteCall,
): Promise<void> {
  const body = await readJsonBody(
    req,
    MAX_RESTORE_BYTES,
    'ERR_RESTORE_INVALID',
    path === '/restore' ? '{nonce, signature}' : '{payer}',
  );
  let mac: string | null = null;
  try {
    mac = await portalClientMac(options.macOf, ip);
    if (path === '/restore/challenge') return send(res, 200, restorer.challenge(body, mac, ip));
    const moved = await restorer.restore(body, mac, ip);
    return send(res, 200, {
      session: sessionView(moved.session, options.backend.now()),
      restored: true,
      from: moved.from,
      gate: moved.gate,
    });
  } catch (err) {
    const e = toSluiceError(err);
    options.log?.info(path === '/restore' ? 'http restore refused' : 'http restore challenge refused', {
      mac,
      ip,
      code: e.code,
      reason: e.message,
    });
    throw err;
  }
}

/** Several devices per purchase: each call acts for the portal client of its source IP only. */
export async function devicesRoute(options: HttpEndpointOptions, { req, res, ip, path }: RouteCall): Promise<void> {
  const mac = await portalClientMac(options.macOf, ip);
  const { backend } = options;
  if (path === DEVICES_PATHS.list) return send(res, 200, listDevices(backend, mac, req.headers.host));
  const answer =
    path === DEVICES_PATHS.join ? await joinDevice(req, backend, mac) : await removeDevice(req, backend, mac);
  options.log?.info(path === DEVICES_PATHS.join ? 'http device joined' : 'http device removed', { mac, ip });
  return send(res, 200, answer);
}

export async function pcsyncRoute(
  options: HttpEndpointOptions,
  req: IncomingMessage,
  res: ServerResponse,
  ip: string,
): Promise<void> {
  const pcsync = options.pcsync;
  if (!pcsync) {
    req.resume();
    return send(res, 404, {
      error: { code: 'ERR_HTTP_NOT_FOUND', message: 'PC-sync is off on this router (http.pcsync_secret)' },
    });
  }
  try {
    const answer = await pcsyncLogout(req, pcsync, options.backend);
    options.log?.info('pcsync logout', { ip, ended: answer.ended });
    return send(res, 200, answer);
  } catch (err) {
    const e = toSluiceError(err);
    // The admin traces a refused or forged call with this line (never the body: it is the caller's).
    options.log?.warn('pcsync logout refused', { ip, code: e.code, reason: e.message });
    throw err;
  }
}

/** RFC 8908: captive unless this client's session is ACTIVE; a client the portal does not list is captive. */
export async function captiveRoute(
  options: HttpEndpointOptions,
  port: number,
  res: ServerResponse,
  ip: string,
): Promise<void> {
  const { backend } = options;
  // Two clients on one IP: which one is asking is unknown, so captive.
  const live = await sessionMetAt(options, ip);
  const portalUrl = userPortalUrl(options, port);
  const answer = captiveAnswer({
    session: live ?? null,
    portalUrl,
    venueUrl: options.captive?.venueUrl ?? '',
    canSell: (options.schemes ?? []).some((f) => f.sells) || someFormOffered(options.forms),
    now: backend.now(),
  });
  res
    .writeHead(200, { 'content-type': CAPTIVE_MEDIA_TYPE, 'cache-control': 'private, no-store' })
    .end(JSON.stringify(answer));
}

export async function sessionRoute(options: HttpEndpointOptions, res: ServerResponse, ip: string): Promise<void> {
  const mac = await portalClientMac(options.macOf, ip);
  const s = options.backend.session({ mac });
  // In a venue, the pay page's question is also the router's cue to claim the device's session from the venue; the
  // answer says where that session is (the page shows it and asks again while it moves here).
  const venue = s && isLive(s) ? null : venueMet(options, mac);
  if (!s && venue === null) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session for this device`);
  if (!s) return send(res, 404, { error: { code: 'ERR_SESSION_NOT_FOUND', message: 'no session here' }, venue });
  return send(res, 200, { session: sessionView(s, options.backend.now()), ...(venue !== null && { venue }) });
}

/** The pay page's URL as a phone opens it: http.portal_url, else the endpoint's own /portal. */
export function userPortalUrl(options: Pick<HttpEndpointOptions, 'captive' | 'host'>, port: number): string {
  return (
    options.captive?.portalUrl ||
    `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/portal`
  );
}

/**
 * Whether a request was meant for another host (`portal 'sluice'`: the gate sends an unpaid device's HTTP to any
 * address here): its Host names neither this endpoint's address nor the pay page's.
 */
export function forAnotherHost(
  options: Pick<HttpEndpointOptions, 'captive' | 'host'>,
  host: string | undefined,
  port: number,
): boolean {
  if (host === undefined || host === '') return false;
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return true;
  }
  if (name === options.host) return false;
  try {
    return new URL(userPortalUrl(options, port)).hostname.replace(/^\[|\]$/g, '') !== name;
  } catch {
    return true;
  }
}

/**
 * A probe (or any page) an unpaid device asked of another host, sent here by sluice's own gate: a 302 to the pay page,
 * as every system's captive-portal check expects (Android's generate_204, Apple's hotspot-detect.html, Windows'
 * connecttest.txt, Firefox's canonical.html: anything but their success answer), never cached. A device met so
 * without a session may hold one at another router of the venue: asked for it, as /captive does.
 */
export async function probeRedirect(options: HttpEndpointOptions, port: number, res: ServerResponse, ip: string) {
  await sessionMetAt(options, ip);
  const location = userPortalUrl(options, port);
  res.writeHead(302, {
    location,
    'cache-control': 'no-store',
    'content-type': 'text/html; charset=utf-8',
    connection: 'close',
  });
  res.end(`<html><body><a href="${location.replace(/[<>"&]/g, '')}">Pay for WiFi</a></body></html>\n`);
}

/**
 * The session of the device at `ip`: undefined when it has none, or when two clients share the IP (which one asks is
 * unknown). A device met here without a live one may hold one at another router of the venue: claimed now.
 */
async function sessionMetAt(
  options: HttpEndpointOptions,
  ip: string,
): Promise<ReturnType<HttpEndpointOptions['backend']['session']>> {
  let mac: string | null = null;
  try {
    mac = await options.macOf(ip);
  } catch {
    return undefined;
  }
  const live = mac === null ? undefined : options.backend.session({ mac });
  if (mac !== null && !(live && isLive(live))) venueMet(options, mac);
  return live;
}

/** Claims `mac`'s venue session (docs/roaming.md) when this router is in a venue: what the fleet said so far. */
function venueMet(options: HttpEndpointOptions, mac: string): Record<string, unknown> | null {
  const venue = options.backend.venue;
  if (!venue) return null;
  try {
    const s = venue.claim(mac);
    return { state: s.state, holder: s.holder, since: s.since === null ? null : Math.floor(s.since / 1000) };
  } catch (err) {
    options.log?.debug('venue claim not sent', { mac, reason: (err as Error).message });
    return null;
  }
}
