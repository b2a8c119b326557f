/**
 * x402 `exact` (EIP-3009) payment payloads, v2 and v1, from what a client sends: the object, or the base64 JSON of a
 * PAYMENT-SIGNATURE / X-PAYMENT header. Pure: shape and syntax only (addresses, uint256 strings, 32-byte nonce,
 * 65-byte signature); whether the payment is good for a quote is verify.ts's job.
 *
 *   v2: {x402Version:2, accepted:{scheme, network, amount, asset, payTo, maxTimeoutSeconds, extra:{name,version}},
 *        payload:{signature, authorization:{from,to,value,validAfter,validBefore,nonce}}, resource?, extensions?}
 *   v1: {x402Version:1, scheme, network, payload:{signature, authorization}}
 */
import { SluiceError } from '../errors.ts';
import { toCaip2 } from './networks.ts';

/** A payload larger than this is not an exact EVM payment (a real one is ~1 KB); refused before parsing. */
export const MAX_PAYLOAD_BYTES = 8192;

/**
 * The x402 v2 envelope every scheme's payload comes in, as an object or the base64 JSON of a PAYMENT-SIGNATURE header:
 * bounded in size, an object, `x402Version` 2, an `accepted` object. `invalid` throws the scheme's own error.
 */
export function decodeV2Envelope(
  input: unknown,
  invalid: (message: string) => never,
): { raw: Record<string, unknown>; accepted: Record<string, unknown> } {
  let obj: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_PAYLOAD_BYTES) invalid('larger than a payment payload');
    try {
      obj = JSON.parse(input.trimStart().startsWith('{') ? input : Buffer.from(input, 'base64').toString('utf8'));
    } catch {
      invalid('not JSON nor base64 JSON');
    }
  } else if (isObject(input) && JSON.stringify(input).length > MAX_PAYLOAD_BYTES) {
    invalid('larger than a payment payload');
  }
  if (!isObject(obj)) invalid('not an object');
  const raw = obj as Record<string, unknown>;
  if (raw.x402Version !== 2) invalid('x402Version must be 2');
  if (!isObject(raw.accepted)) invalid('accepted is missing');
  return { raw, accepted: raw.accepted as Record<string, unknown> };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const UINT256_MAX = (1n << 256n) - 1n;

export type Address = `0x${string}`;
export type Hex = `0x${string}`;

export interface ExactAuthorization {
  /** Lower-case 0x addresses: comparisons are case-free, and what was signed is the 20 bytes, not the spelling. */
  from: Address;
  to: Address;
  value: bigint;
  validAfter: bigint;
  validBefore: bigint;
  /** Lower-case 0x + 64 hex. */
  nonce: Hex;
}

/** What the v2 payload says the client accepted (v1 payloads carry only scheme and network). */
export interface AcceptedRequirements {
  scheme: string;
  network: string;
  amount: bigint;
  asset: Address;
  payTo: Address;
  maxTimeoutSeconds: number | null;
  extra: { name?: string; version?: string };
}

export interface ExactPayment {
  x402Version: 1 | 2;
  scheme: string;
  /** CAIP-2, or the text as sent when the name is unknown (refused later as a network mismatch). */
  network: string;
  accepted: AcceptedRequirements | null;
  authorization: ExactAuthorization;
  /** Lower-case 0x + 130 hex (r, s, v). */
  signature: Hex;
  /** The payload as received (parsed JSON): forwarded to the facilitator untouched. */
  raw: Record<string, unknown>;
}

function invalid(message: string): SluiceError {
  return new SluiceError('ERR_X402_PAYLOAD_INVALID', `x402 payload: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The payload object from an object, a JSON string, or base64 JSON (a PAYMENT-SIGNATURE header value). */
export function payloadObject(input: unknown): Record<string, unknown> {
  if (isRecord(input)) {
    // Bound what an object may cost to check: its JSON must be as small as a header would be.
    let size: number;
    try {
      size = JSON.stringify(input).length;
    } catch {
      throw invalid('not serialisable as JSON');
    }
    if (size > MAX_PAYLOAD_BYTES) throw invalid(`larger than ${MAX_PAYLOAD_BYTES} bytes`);
    return input;
  }
  if (typeof input !== 'string') throw invalid('must be an x402 PaymentPayload object or its base64 JSON');
  const text = input.trim();
  if (text.length === 0) throw invalid('is empty');
  if (text.length > MAX_PAYLOAD_BYTES * 2) throw invalid(`larger than ${MAX_PAYLOAD_BYTES} bytes`);
  let json = text;
  if (!text.startsWith('{')) {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw invalid('neither JSON nor base64');
    json = Buffer.from(text, 'base64').toString('utf8');
  }
  if (json.length > MAX_PAYLOAD_BYTES) throw invalid(`larger than ${MAX_PAYLOAD_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw invalid('not valid JSON');
  }
  if (!isRecord(parsed)) throw invalid('must be a JSON object');
  return parsed;
}

export function parseAddress(v: unknown, field: string): Address {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v))
    throw invalid(`${field} must be an address (0x and 40 hex digits)`);
  return v.toLowerCase() as Address;
}

function parseUint(v: unknown, field: string): bigint {
  // x402 puts every integer on the wire as a decimal string; numbers lose precision past 2^53 and are refused.
  if (typeof v !== 'string' || !/^[0-9]{1,78}$/.test(v)) throw invalid(`${field} must be a decimal integer string`);
  const n = BigInt(v);
  if (n > UINT256_MAX) throw invalid(`${field} exceeds uint256`);
  return n;
}

function parseString(v: unknown, field: string, max = 64): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw invalid(`${field} must be a string of 1 to ${max} characters`);
  return v;
}

function parseAuthorization(v: unknown): ExactAuthorization {
  if (!isRecord(v)) throw invalid('payload.authorization must be an object');
  const nonce = v.nonce;
  if (typeof nonce !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(nonce))
    throw invalid('authorization.nonce must be 32 bytes of hex');
  return {
    from: parseAddress(v.from, 'authorization.from'),
    to: parseAddress(v.to, 'authorization.to'),
    value: parseUint(v.value, 'authorization.value'),
    validAfter: parseUint(v.validAfter, 'authorization.validAfter'),
    validBefore: parseUint(v.validBefore, 'authorization.validBefore'),
    nonce: nonce.toLowerCase() as Hex,
  };
}

function parseAccepted(v: unknown): AcceptedRequirements {
  if (!isRecord(v)) throw invalid('accepted must be an object (x402 v2)');
  const extra = isRecord(v.extra) ? v.extra : {};
  const mts = v.maxTimeoutSeconds;
  return {
    scheme: parseString(v.scheme, 'accepted.scheme'),
    network: parseString(v.network, 'accepted.network'),
    amount: parseUint(v.amount, 'accepted.amount'),
    asset: parseAddress(v.asset, 'accepted.asset'),
    payTo: parseAddress(v.payTo, 'accepted.payTo'),
    maxTimeoutSeconds: typeof mts === 'number' && Number.isSafeInteger(mts) && mts >= 0 ? mts : null,
    extra: {
      ...(typeof extra.name === 'string' && { name: extra.name.slice(0, 128) }),
      ...(typeof extra.version === 'string' && { version: extra.version.slice(0, 32) }),
    },
  };
}

/** Parses an x402 exact payment payload (v2 or v1). Throws ERR_X402_PAYLOAD_INVALID naming the first bad field. */
export function parseExactPayment(input: unknown): ExactPayment {
  const raw = payloadObject(input);
  const version = raw.x402Version;
  if (version !== 1 && version !== 2) throw invalid('x402Version must be 1 or 2');
  if (!isRecord(raw.payload)) throw invalid('payload must be an object with signature and authorization');
  const sig = raw.payload.signature;
  if (typeof sig !== 'string' || !/^0x[0-9a-fA-F]*$/.test(sig)) throw invalid('payload.signature must be hex');
  if (sig.length !== 132) {
    // Smart-wallet signatures (EIP-1271/6492) can only be checked on chain; sluice checks every signature itself.
    throw new SluiceError(
      'ERR_X402_SIGNATURE_UNSUPPORTED',
      'x402 payload: only 65-byte ECDSA signatures (an EOA wallet) are accepted',
    );
  }
  const authorization = parseAuthorization(raw.payload.authorization);
  let scheme: string;
  let network: string;
  let accepted: AcceptedRequirements | null = null;
  if (version === 2) {
    accepted = parseAccepted(raw.accepted);
    scheme = accepted.scheme;
    network = accepted.network;
  } else {
    scheme = parseString(raw.scheme, 'scheme');
    network = parseString(raw.network, 'network');
  }
  return {
    x402Version: version,
    scheme,
    network: toCaip2(network) ?? network,
    accepted,
    authorization,
    signature: sig.toLowerCase() as Hex,
    raw,
  };
}

/** base64 of JSON, as x402 HTTP headers carry objects. bigint fields must already be strings. */
export function encodeHeader(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
}
