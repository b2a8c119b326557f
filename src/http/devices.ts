/**
 * Several devices per purchase on the LAN endpoint (a plan's `devices` > 1; docs/x402.md "Several devices"):
 *   GET  /devices         the caller's session's devices, and the code (and a link carrying it, for a QR) other devices
 *                         type on their own pay page to join it
 *   POST /devices/join    {code}: the caller's device joins that session (its own MAC as the portal lists its IP)
 *   POST /devices/remove  {mac}: a joined device removed, from any device of the same session (the buyer's page, or
 *                         the device leaving itself); the buyer's own MAC is refused (end the session instead)
 * Every device is the portal's client for its source IP: no device can join or remove for another IP.
 */
import type { IncomingMessage } from 'node:http';
import { sessionView, type SluiceBackend } from '../api/index.ts';
import { SluiceError } from '../errors.ts';
import { tryNormalizeMac } from '../mac.ts';
import { devicesOf, isLive } from '../sessions/index.ts';
import { readJsonBody } from '../listener/index.ts';

export const DEVICES_PATHS = { list: '/devices', join: '/devices/join', remove: '/devices/remove' } as const;
const MAX_BODY_BYTES = 512;

function need<K extends 'joinCode' | 'joinDevice' | 'removeDevice'>(
  backend: SluiceBackend,
  name: K,
): NonNullable<SluiceBackend[K]> {
  const f = backend[name];
  if (!f) throw new SluiceError('ERR_DEVICE_CODE_INVALID', 'this router sells no plan for several devices');
  return f.bind(backend) as NonNullable<SluiceBackend[K]>;
}

export function listDevices(backend: SluiceBackend, mac: string, host: string | undefined): Record<string, unknown> {
  const { session, code } = need(backend, 'joinCode')(mac);
  return {
    session: sessionView(session, backend.now()),
    max_devices: session.maxDevices ?? 1,
    devices: devicesOf(session),
    code,
    // What a QR on the buyer's page encodes: the pay page with the code filled in.
    ...(code !== null && host !== undefined && { join_url: `http://${host}/portal?join=${code}` }),
  };
}

export async function joinDevice(
  req: IncomingMessage,
  backend: SluiceBackend,
  mac: string,
): Promise<Record<string, unknown>> {
  const { code } = await readJsonBody(req, MAX_BODY_BYTES, 'ERR_INVALID_ARGUMENT', '{code}');
  if (typeof code !== 'string' || code === '' || code.length > 32)
    throw new SluiceError('ERR_INVALID_ARGUMENT', 'code must be the 8 characters the other device shows');
  const { session, gate } = await need(backend, 'joinDevice')(code, mac);
  return { session: sessionView(session, backend.now()), gate };
}

export async function removeDevice(
  req: IncomingMessage,
  backend: SluiceBackend,
  callerMac: string,
): Promise<Record<string, unknown>> {
  const body = await readJsonBody(req, MAX_BODY_BYTES, 'ERR_INVALID_ARGUMENT', '{mac}');
  const mac = typeof body.mac === 'string' ? tryNormalizeMac(body.mac) : null;
  if (mac === null) throw new SluiceError('ERR_INVALID_ARGUMENT', 'mac must be a MAC address');
  const own = backend.session({ mac: callerMac });
  const target = backend.session({ mac });
  // Only a device of the same live session may remove one: a stranger on the LAN cannot close someone's gate.
  if (!own || !isLive(own) || !target || target.id !== own.id)
    throw new SluiceError('ERR_DEVICE_NOT_MEMBER', `${mac} is not a device of your session`);
  const { session, gate } = await need(backend, 'removeDevice')(mac);
  return { session: sessionView(session, backend.now()), gate };
}
