/**
 * The lab mint's wire (test/peers/cashu-mint.ts): NUT-00 errors and their codes, the request shapes it parses (every
 * field checked before use; a bad one is a `MintError` with code 0, as Nutshell answers), and the fake bolt11 invoices
 * of its Lightning backend; its routes and the small HTTP helpers.
 */
import { pointFromHex } from '@cashu/cashu-ts';
import { randomBytes } from '@noble/hashes/utils.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** A refusal as NUT-00 specifies it: HTTP 400 with `{detail, code}`. */
export class MintError extends Error {
  constructor(
    readonly code: number,
    readonly detail: string,
    readonly status = 400,
  ) {
    super(`${detail} (${code})`);
  }
}

/** cashubtc/nuts error_codes.md. 0 is Nutshell's code for a request it cannot parse (no NUT names one). */
export const CODES = {
  malformed: 0,
  proofInvalid: 10001,
  spent: 11001,
  pending: 11002,
  outputsSigned: 11003,
  unbalanced: 11005,
  amountOutOfRange: 11006,
  duplicateInputs: 11007,
  duplicateOutputs: 11008,
  multipleUnits: 11009,
  unitMismatch: 11010,
  amountlessInvoice: 11011,
  unitUnsupported: 11013,
  maxInputs: 11014,
  maxOutputs: 11015,
  keysetUnknown: 12001,
  keysetInactive: 12002,
  keysetExpired: 12003,
  quoteNotPaid: 20001,
  quoteIssued: 20002,
  lightningFailed: 20004,
  quotePending: 20005,
  invoicePaid: 20006,
  quoteExpired: 20007,
  quoteSignatureInvalid: 20008,
  quotePubkeyInvalid: 20009,
} as const;

export interface WireBlindedMessage {
  amount: number;
  id: string;
  B_: string;
}
export interface WireSignature {
  amount: number;
  id: string;
  C_: string;
  dleq: { e: string; s: string };
}
export interface WireProof {
  amount: number;
  id: string;
  secret: string;
  C: string;
  witness?: unknown;
}

/** A fake bolt11 request: an amount the HRP carries (what bolt11AmountMsat reads), the rest random. Never payable. */
export function fakeInvoice(amountMsat: number): string {
  const chars = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const tail = Array.from(randomBytes(100), (b) => chars[b % 32]).join('');
  return `lnbcrt${amountMsat * 10}p1${tail}`;
}

/** BOLT11's amount, from the human-readable part (`ln` + network + amount + multiplier, up to the last `1`). */
export function invoiceAmountMsat(invoice: string): number | null {
  const lower = invoice.toLowerCase();
  const hrp = /^ln[a-z]+?(\d*)([munp]?)$/.exec(lower.slice(0, lower.lastIndexOf('1')));
  if (!lower.startsWith('ln') || !hrp) throw new MintError(CODES.malformed, 'request: not a bolt11 invoice');
  const [, digits = '', multiplier = ''] = hrp;
  if (digits === '') return null;
  // BOLT11: the amount is in bitcoin times the multiplier; 1 BTC = 10^11 msat, p (pico) = 0.1 msat.
  const perUnit: Record<string, number> = { '': 1e11, m: 1e8, u: 1e5, n: 100, p: 0.1 };
  return Math.round(Number(digits) * perUnit[multiplier]!);
}

export function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new MintError(CODES.malformed, 'a JSON object is required');
  return body as Record<string, unknown>;
}

export function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new MintError(CODES.malformed, `${name}: a positive integer is required`);
  return v;
}

export function hexString(v: unknown, name: string): string {
  if (typeof v !== 'string' || !/^[0-9a-f]+$/i.test(v))
    throw new MintError(CODES.malformed, `${name}: a hex string is required`);
  return v;
}

export function wireProof(raw: unknown): WireProof {
  const p = object(raw);
  if (typeof p.secret !== 'string' || p.secret.length === 0)
    throw new MintError(CODES.malformed, 'proof secret: a string is required');
  return {
    amount: positiveInt(p.amount, 'proof amount'),
    id: hexString(p.id, 'proof id'),
    secret: p.secret,
    C: hexString(p.C, 'proof C'),
    ...(p.witness !== undefined && p.witness !== null && { witness: p.witness }),
  };
}

// The point each output's B_ was read as, kept for its signing: reading a compressed point is a square root.
const blindedPoints = new WeakMap<WireBlindedMessage, ReturnType<typeof pointFromHex>>();

export function wireBlindedMessage(raw: unknown, amountOpen = false): WireBlindedMessage {
  const o = object(raw);
  const amount = amountOpen && o.amount === 0 ? 0 : positiveInt(o.amount, 'output amount');
  const B_ = hexString(o.B_, 'output B_');
  let point: ReturnType<typeof pointFromHex>;
  try {
    point = pointFromHex(B_);
  } catch {
    throw new MintError(CODES.malformed, 'output B_: not a point on secp256k1');
  }
  const message = { amount, id: hexString(o.id, 'output id'), B_: B_.toLowerCase() };
  blindedPoints.set(message, point);
  return message;
}

/** The point of an output's B_: as wireBlindedMessage read it, or read now (an output copied since). */
export function blindedPointOf(o: WireBlindedMessage): ReturnType<typeof pointFromHex> {
  return blindedPoints.get(o) ?? pointFromHex(o.B_);
}

// The point each signature's C_ was made as, kept for the funding wallet that unblinds it in the same process.
const signedPoints = new WeakMap<WireSignature, ReturnType<typeof pointFromHex>>();

/** Keeps C_, already made, as the point of `signature`'s C_ (its hex must be C_'s). */
export function rememberSignedPoint(signature: WireSignature, C_: ReturnType<typeof pointFromHex>): void {
  signedPoints.set(signature, C_);
}

/** The point of a signature's C_: as the mint made it, or read now (a signature that came over the wire). */
export function signedPointOf(signature: WireSignature): ReturnType<typeof pointFromHex> {
  return signedPoints.get(signature) ?? pointFromHex(signature.C_);
}

/** Every route the mint serves: method, path pattern (a parameter captured), the name faults and calls() use. */
export const ROUTES: Array<[method: string, pattern: RegExp, key: string]> = [
  ['GET', /^\/v1\/info$/, 'GET /v1/info'],
  ['GET', /^\/v1\/keys$/, 'GET /v1/keys'],
  ['GET', /^\/v1\/keys\/([^/]+)$/, 'GET /v1/keys/:id'],
  ['GET', /^\/v1\/keysets$/, 'GET /v1/keysets'],
  ['POST', /^\/v1\/swap$/, 'POST /v1/swap'],
  ['POST', /^\/v1\/checkstate$/, 'POST /v1/checkstate'],
  ['POST', /^\/v1\/restore$/, 'POST /v1/restore'],
  ['POST', /^\/v1\/mint\/quote\/bolt11$/, 'POST /v1/mint/quote/bolt11'],
  ['GET', /^\/v1\/mint\/quote\/bolt11\/([^/]+)$/, 'GET /v1/mint/quote/bolt11/:id'],
  ['POST', /^\/v1\/mint\/bolt11$/, 'POST /v1/mint/bolt11'],
  ['POST', /^\/v1\/melt\/quote\/bolt11$/, 'POST /v1/melt/quote/bolt11'],
  ['GET', /^\/v1\/melt\/quote\/bolt11\/([^/]+)$/, 'GET /v1/melt/quote/bolt11/:id'],
  ['POST', /^\/v1\/melt\/bolt11$/, 'POST /v1/melt/bolt11'],
];
/** NUT-19: the routes whose answers are cached and replayed. */
export const CACHED = ['/v1/swap', '/v1/mint/bolt11', '/v1/melt/bolt11'];
export const MAX_BODY = 1 << 20;

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error(`over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
