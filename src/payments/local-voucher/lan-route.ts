/**
 * POST /voucher (the pay page's voucher form, ≤ 1 KiB {code, password?, idempotency_key?}): a voucher for the caller's
 * MAC, the same purchase as ubus `purchase` {payment: {method: voucher}}: a printed code (this folder's book) first,
 * then the RADIUS server's. The same voucher typed on a new device (a rotated private address) moves its live session
 * there instead, nothing bought. It is the door of both kinds, so it serves while the printed book is down as long as
 * RADIUS takes vouchers (LanRequest.formOffered: the plugin's payForm).
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import { isLive, type Session } from '../../sessions/index.ts';
import type { LanAnswer, LanRequest, LanRoute } from '../plugin-faces.ts';
import { VOUCHER_METHOD_NAME } from './method.ts';

const MAX_VOUCHER_BYTES = 1024;

/**
 * A voucher typed again on a new device: the newest live voucher session whose user is this code moves to `mac`
 * instead of a second purchase, when `mac` has no live session of its own. Only for vouchers whose password is the
 * code (no separate password typed): knowing the code is the proof; a voucher with its own password goes to the
 * RADIUS server as a purchase. Null: nothing to move.
 */
function sessionToMove(req: LanRequest, code: string, password: string | undefined, mac: string): Session | null {
  if (password !== undefined && password !== '' && password !== code) return null;
  const here = req.session(mac);
  if (here && isLive(here)) return null;
  const candidates = req.sessionsOf(code).filter((s) => isLive(s) && s.payments[0]?.method === VOUCHER_METHOD_NAME);
  return candidates.sort((a, b) => b.createdAt - a.createdAt)[0] ?? null;
}

async function buyWithVoucher(req: LanRequest): Promise<LanAnswer> {
  if (!req.formOffered)
    throw new SluiceError(
      'ERR_UNKNOWN_PAYMENT_METHOD',
      'this router takes no vouchers (radius.enabled, or a printed batch: docs/vouchers.md)',
    );
  const body = await req.json(MAX_VOUCHER_BYTES, 'ERR_VOUCHER_REQUEST_INVALID', '{code, password?, idempotency_key?}');
  // idempotency_key: the pay page sends one per voucher typed, so a resubmission (a lost reply, a double click)
  // is refused as a replay instead of buying again with a code the RADIUS server accepts more than once.
  const { code, password, idempotency_key: idempotencyKey } = body;
  if (typeof code !== 'string' || code === '' || code.length > 253)
    throw new SluiceError('ERR_VOUCHER_REQUEST_INVALID', 'code must be a string of 1 to 253 characters');
  if (password !== undefined && (typeof password !== 'string' || password.length > 128))
    throw new SluiceError('ERR_VOUCHER_REQUEST_INVALID', 'password must be a string of at most 128 characters');
  let mac: string | null = null;
  try {
    mac = await req.mac();
    const live = sessionToMove(req, code, password as string | undefined, mac);
    if (live) return { status: 200, body: await req.moveHere(live, mac) };
    const answer = await req.purchase(mac, {
      method: VOUCHER_METHOD_NAME,
      code,
      ...(password !== undefined && password !== '' && { password }),
      // Passed on whatever its type: the purchase refuses a key that is not a string (ERR_INVALID_ARGUMENT).
      ...(idempotencyKey !== undefined && { idempotency_key: idempotencyKey }),
    });
    req.log?.info('http voucher purchase', { mac, ip: req.ip });
    return { status: 200, body: answer };
  } catch (err) {
    const e = toSluiceError(err);
    req.log?.info('http voucher purchase refused', { mac, ip: req.ip, code: e.code, reason: e.message });
    throw err;
  }
}

export const voucherLanRoute: LanRoute = {
  method: 'POST',
  path: '/voucher',
  paying: true,
  // RADIUS's vouchers still sell while the printed book cannot be read back.
  servesWhileDown: (req) => req.formOffered,
  handler: (req) => buyWithVoucher(req),
};
