/**
 * PC-sync, inbound (docs/pc-sync.md), pure: a PC system's logout call is signed exactly as sluice signs its own hook
 * posts (docs/hook.md), so one helper on the PC system's side signs both ways: three headers, `x-sluice-timestamp`
 * (ms since the epoch), `x-sluice-nonce` (8 to 128 printable characters, fresh per call) and `x-sluice-signature`
 * (`v1=` and the hex HMAC-SHA256, keyed with `http.pcsync_secret`, of `<timestamp>.<nonce>.<body>`, the body's exact
 * bytes). The MAC covers the exact bytes, so no canonical JSON is needed.
 *
 * Checked in this order: the headers' shape, the signature (a forgery learns nothing else), the timestamp against the
 * window, then the nonce against those seen within it (the caller's NonceLedger). Nothing is recorded here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SluiceError } from '../errors.ts';

export const PCSYNC_HEADERS = {
  timestamp: 'x-sluice-timestamp',
  nonce: 'x-sluice-nonce',
  signature: 'x-sluice-signature',
} as const;

/** The scheme of docs/hook.md's signature; another scheme would get another version. */
const SCHEME = 'v1';
const NONCE = /^[\x21-\x7e]{8,128}$/;

export interface SignedCall {
  timestamp: number;
  nonce: string;
}

export function pcsyncSignature(secret: string, timestamp: number, nonce: string, body: Uint8Array | string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${nonce}.`, 'utf8').update(body).digest('hex');
  return `${SCHEME}=${mac}`;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  if (typeof v !== 'string' || v === '')
    throw new SluiceError('ERR_PCSYNC_INVALID', `header ${name} is required (once)`);
  return v;
}

/** The signed call's timestamp and nonce when the signature holds and the timestamp is within `windowMs` of `now`. */
export function verifySignedCall(
  { secret, windowMs }: { secret: string; windowMs: number },
  now: number,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array,
): SignedCall {
  const tsText = header(headers, PCSYNC_HEADERS.timestamp);
  const nonce = header(headers, PCSYNC_HEADERS.nonce);
  const signature = header(headers, PCSYNC_HEADERS.signature);
  if (!/^[0-9]{1,16}$/.test(tsText))
    throw new SluiceError('ERR_PCSYNC_INVALID', `${PCSYNC_HEADERS.timestamp} must be ms since the epoch`);
  if (!NONCE.test(nonce))
    throw new SluiceError('ERR_PCSYNC_INVALID', `${PCSYNC_HEADERS.nonce} must be 8 to 128 printable characters`);
  const timestamp = Number(tsText);
  const expected = Buffer.from(pcsyncSignature(secret, timestamp, nonce, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SluiceError(
      'ERR_PCSYNC_SIGNATURE',
      'bad signature: v1=HMAC-SHA256(http.pcsync_secret, "<timestamp>.<nonce>.<body>") expected',
    );
  }
  const skew = Math.abs(now - timestamp);
  if (skew > windowMs) {
    throw new SluiceError(
      'ERR_PCSYNC_EXPIRED',
      `timestamp is ${Math.round(skew / 1000)} s from the router's clock (window ${windowMs / 1000} s)`,
    );
  }
  return { timestamp, nonce };
}
