/**
 * POST /pcsync/logout (docs/pc-sync.md): a PC system (an iCafe's) says a user logged out, and that user's WiFi
 * session ends at once, TERMINATED with cause `pc-logout` — the same end as ubus `logout`/`terminate`, the MQTT
 * `logout` command and an AAA server's Disconnect. The body names exactly one of `mac` (that device's live session),
 * `session_id` (that session) or `user` (every live session of the user, as ubus `logout`); it is signed
 * (pcsync-verify.ts) and its nonce is on flash before anything ends (pcsync-nonces.ts).
 */
import type { IncomingMessage } from 'node:http';
import { sessionView, type SluiceBackend } from '../api/index.ts';
import { SluiceError } from '../errors.ts';
import { tryNormalizeMac } from '../mac.ts';
import { isLive, type Session } from '../sessions/index.ts';
import { parseJsonObject, readBodyBytes } from '../listener/index.ts';
import type { NonceLedger } from './pcsync-nonces.ts';
import { verifySignedCall } from './pcsync-verify.ts';

export const PCSYNC_LOGOUT_PATH = '/pcsync/logout';
const MAX_BODY_BYTES = 1024;
const SHAPE = '{mac} or {session_id} or {user}';

export interface PcSyncOptions {
  /** http.pcsync_secret (never empty here: the route is off without it). */
  secret: string;
  windowMs: number;
  nonces: NonceLedger;
}

type Target = { mac: string } | { id: string } | { user: string };

function targetOf(body: Record<string, unknown>): Target {
  const named = (['mac', 'session_id', 'user'] as const).filter((k) => body[k] !== undefined);
  if (named.length !== 1)
    throw new SluiceError('ERR_PCSYNC_INVALID', `body must name exactly one of mac, session_id, user: ${SHAPE}`);
  const value = body[named[0]!];
  if (typeof value !== 'string' || value === '' || value.length > 253)
    throw new SluiceError('ERR_PCSYNC_INVALID', `${named[0]} must be a string of 1 to 253 characters`);
  if (named[0] === 'mac') {
    const mac = tryNormalizeMac(value);
    if (mac === null) throw new SluiceError('ERR_PCSYNC_INVALID', 'mac must be a MAC address (aa:bb:cc:dd:ee:ff)');
    return { mac };
  }
  return named[0] === 'user' ? { user: value } : { id: value };
}

/** The answer's body: how many sessions ended, their views, the least closed of their gates. */
export async function pcsyncLogout(
  req: IncomingMessage,
  options: PcSyncOptions,
  backend: SluiceBackend,
): Promise<{ ended: number; sessions: unknown[]; gate: string }> {
  const bytes = await readBodyBytes(req, MAX_BODY_BYTES, 'ERR_PCSYNC_INVALID');
  const now = backend.now();
  const call = verifySignedCall(options, now, req.headers, bytes);
  const target = targetOf(parseJsonObject(bytes, 'ERR_PCSYNC_INVALID', SHAPE));
  // Durable before acting: a malformed call above burned nothing; from here the nonce is spent even if nothing ends.
  await options.nonces.claim(call.nonce, call.timestamp, now);
  let ended: Session[];
  let gate: string;
  if ('user' in target) {
    ({ sessions: ended, gate } = await backend.logout(target.user));
  } else {
    const live = 'mac' in target ? backend.session({ mac: target.mac }) : backend.session({ id: target.id });
    if (!live || !isLive(live))
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${'mac' in target ? target.mac : target.id}`);
    const r = await backend.terminate(live.mac, 'pc-logout');
    ended = [r.session];
    gate = r.gate;
  }
  return { ended: ended.length, sessions: ended.map((s) => sessionView(s, backend.now())), gate };
}
