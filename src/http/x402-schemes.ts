/**
 * Which x402 scheme a PAYMENT-SIGNATURE names: a pure helper of the LAN endpoint's /buy, which routes a payment to the
 * method of its scheme (a refusal's corrective fields are the scheme's own: X402Scheme.corrective).
 */

/** Headers above this are not looked into (the methods' parsers refuse them with their own codes). */
const MAX_HEADER_CHARS = 16 * 1024;

/** `accepted.scheme` of a base64 JSON (or plain JSON) x402 v2 payload, or null when it names none. */
export function schemeOfHeader(header: string): string | null {
  if (header.length > MAX_HEADER_CHARS) return null;
  try {
    const text = header.trimStart().startsWith('{') ? header : Buffer.from(header, 'base64').toString('utf8');
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null) return null;
    const accepted = (v as Record<string, unknown>).accepted;
    if (typeof accepted !== 'object' || accepted === null) return null;
    const scheme = (accepted as Record<string, unknown>).scheme;
    return typeof scheme === 'string' ? scheme : null;
  } catch {
    return null;
  }
}
