/**
 * The hook's signature (docs/hook.md), pure: HMAC-SHA256 with `hook.secret` over `<timestamp>.<nonce>.<body>`, where
 * the timestamp (ms since the epoch) and the nonce are fresh for every delivery attempt. Signing them with the body
 * lets a receiver refuse a forged post (no key), a replayed one (a nonce it saw within its window) and an old capture
 * (a timestamp outside the window) without trusting anything outside the MAC.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const HOOK_HEADERS = {
  timestamp: 'x-sluice-timestamp',
  nonce: 'x-sluice-nonce',
  signature: 'x-sluice-signature',
} as const;

/** The signature header's scheme prefix: a later scheme gets another version, a receiver knows which it checks. */
export const SIGNATURE_SCHEME = 'v1';

export function hookSignature(secret: string, timestamp: number, nonce: string, body: Uint8Array | string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${nonce}.`, 'utf8').update(body).digest('hex');
}

/** The headers of one delivery attempt: a fresh nonce (96 bits) and the time of sending, both under the MAC. */
export function signedHeaders(
  secret: string,
  body: Uint8Array,
  now: number,
  nonce = randomBytes(12).toString('hex'),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    [HOOK_HEADERS.timestamp]: String(now),
    [HOOK_HEADERS.nonce]: nonce,
    [HOOK_HEADERS.signature]: `${SIGNATURE_SCHEME}=${hookSignature(secret, now, nonce, body)}`,
  };
}

/**
 * Whether a post's signature `header` is the v1 signature of its timestamp, nonce and body (constant time; for tests
 * and a Node receiver).
 */
export function verifyHookSignature(
  secret: string,
  post: { timestamp: number; nonce: string; body: Uint8Array | string; header: string },
): boolean {
  const { timestamp, nonce, body, header } = post;
  const expected = Buffer.from(`${SIGNATURE_SCHEME}=${hookSignature(secret, timestamp, nonce, body)}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
