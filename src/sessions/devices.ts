/**
 * Several devices per purchase, pure: the short code a customer types on a second device to join the first one's
 * session, and the rules of a join. The code is derived from the session id with a key the manager draws at start
 * (HMAC-SHA256, 8 characters of Crockford base32: 40 bits, no 0/O or 1/I/L to misread), so nothing about it is stored:
 * a restart draws a new key and the page shows the new code, while devices already joined stay (their joins are on
 * flash). A guesser on the LAN meets the endpoint's rate limit (30 tries a minute) against 2^40 codes.
 */
import { createHmac } from 'node:crypto';
import { SluiceError } from '../errors.ts';
import { devicesOf, isLive } from './model.ts';
import type { Session } from './model.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const JOIN_CODE_LENGTH = 8;

export function joinCodeOf(key: Uint8Array, sessionId: string): string {
  const mac = createHmac('sha256', key).update(sessionId, 'utf8').digest();
  let code = '';
  for (let i = 0; i < JOIN_CODE_LENGTH; i++) code += ALPHABET[mac[i]! & 31];
  return code;
}

/**
 * A typed code as the customer may write it (lower case, spaces, dashes, O for 0, I/L for 1); null if it cannot be one.
 */
export function normalizeJoinCode(text: string): string | null {
  const code = text.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return code.length === JOIN_CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : null;
}

/** Whether the session takes more than one device. */
export function isShared(session: Session): boolean {
  return (session.maxDevices ?? 1) > 1;
}

/**
 * Why `mac` may not join `session` (throws), or 'member' when it already is one (a join repeated: nothing to do).
 * `own` is the live session `mac` holds, if any; `inFlight` the joins to it being written (each holds a place).
 */
export function checkJoin(session: Session, mac: string, own: Session | undefined, inFlight = 0): 'join' | 'member' {
  if (!isLive(session) || !isShared(session))
    throw new SluiceError('ERR_DEVICE_CODE_INVALID', 'no live session takes devices with this code');
  if (devicesOf(session).includes(mac)) return 'member';
  if (own !== undefined && isLive(own)) {
    throw new SluiceError('ERR_DEVICE_BUSY', `${mac} has a session of its own: it can join another once that one ends`);
  }
  if (devicesOf(session).length + inFlight >= session.maxDevices!) {
    throw new SluiceError(
      'ERR_DEVICE_LIMIT',
      `this purchase covers ${session.maxDevices} devices, all in use: remove one first`,
      { details: { max_devices: session.maxDevices } },
    );
  }
  return 'join';
}
