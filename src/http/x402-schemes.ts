/**
 * Which x402 scheme a PAYMENT-SIGNATURE names, and the corrective extra of a refused batch-settlement voucher: pure
 * helpers of the LAN endpoint's /buy, which routes a payment to the method of its scheme.
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

/**
 * The spec's corrective fields for the batch-settlement offer of a refusal (`channelState`, `voucherState`, carried
 * in ERR_BATCH_CUMULATIVE_MISMATCH's details), or undefined when the refusal has none.
 */
export function correctiveExtra(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  const { channelState, voucherState } = details;
  if (typeof channelState !== 'object' || channelState === null || typeof voucherState !== 'object' || voucherState === null) return undefined;
  return { channelState, voucherState };
}
