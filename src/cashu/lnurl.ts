/**
 * Payout's Lightning side: a Lightning address (LUD-16, `name@host`) or a bech32 LNURL (LUD-01, `lnurl1…`) turned into
 * a BOLT11 invoice for an amount (LUD-06 payRequest): GET the pay URL → `{tag: 'payRequest', callback, minSendable,
 * maxSendable}` → GET callback?amount=<msat> → `{pr}`. Every exchange bounded (http-client.ts); the invoice's own
 * amount is read from its human-readable part and must be the one asked for (a server handing out a larger invoice
 * would have the mint pay more than the router meant to).
 *
 * https only (LUD-01), except a loopback host, which is the router itself (and the lab's LNURL server).
 */
import { SluiceError } from '../errors.ts';
import { boundedFetch } from '../http-client.ts';

const MAX_ANSWER_BYTES = 64 * 1024;
const lnurlError = (message: string): SluiceError => new SluiceError('ERR_CASHU_PAYOUT_LNURL', message.slice(0, 300));

export interface PayRequest {
  callback: string;
  minSendableMsat: bigint;
  maxSendableMsat: bigint;
}

export interface LnurlOptions {
  timeoutMs: number;
  signal: AbortSignal;
}

/** The LUD-06 pay URL a payout address names. */
export function payUrlOf(address: string): string {
  const at = address.indexOf('@');
  if (at > 0) return `https://${address.slice(at + 1)}/.well-known/lnurlp/${encodeURIComponent(address.slice(0, at))}`;
  if (/^lnurl1/i.test(address)) return new TextDecoder().decode(bech32Payload(address.toLowerCase(), 'lnurl'));
  throw lnurlError(`${address.slice(0, 80)} is neither a Lightning address nor an LNURL`);
}

function checkedUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw lnurlError('the Lightning address server named a URL that is not one');
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw lnurlError(`LNURL needs https (${url.protocol} refused)`);
  return url;
}

async function getJson(url: URL, o: LnurlOptions): Promise<Record<string, unknown>> {
  const answer = await boundedFetch(url.href, {
    method: 'GET',
    timeoutMs: o.timeoutMs,
    maxBytes: MAX_ANSWER_BYTES,
    signal: o.signal,
    headers: { accept: 'application/json' },
  });
  if (answer.kind !== 'answer')
    throw lnurlError(`the Lightning address server ${url.host} did not answer (${answer.message})`);
  let json: unknown;
  try {
    json = JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw lnurlError(`the Lightning address server ${url.host} answered HTTP ${answer.status} without JSON`);
  }
  const body = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  // LUD-06: an error is {status: 'ERROR', reason}, whatever the HTTP status.
  if (body.status === 'ERROR')
    throw lnurlError(`the Lightning address server refused: ${String(body.reason ?? '').slice(0, 200)}`);
  if (answer.status !== 200)
    throw lnurlError(`the Lightning address server ${url.host} answered HTTP ${answer.status}`);
  return body;
}

const msat = (v: unknown): bigint | null =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;

/** Step 1: the pay request the address serves. */
export async function payRequestOf(address: string, o: LnurlOptions): Promise<PayRequest> {
  const body = await getJson(checkedUrl(payUrlOf(address)), o);
  const min = msat(body.minSendable);
  const max = msat(body.maxSendable);
  if (body.tag !== 'payRequest' || typeof body.callback !== 'string' || min === null || max === null || min > max) {
    throw lnurlError("the Lightning address server's answer is not a LUD-06 payRequest");
  }
  checkedUrl(body.callback);
  return { callback: body.callback, minSendableMsat: min, maxSendableMsat: max };
}

/** Step 2: an invoice of exactly `amountSat` (within the request's min/max sendable). */
export async function invoiceFor(request: PayRequest, amountSat: bigint, o: LnurlOptions): Promise<string> {
  const amount = amountSat * 1000n;
  if (amount < request.minSendableMsat || amount > request.maxSendableMsat) {
    throw lnurlError(
      `the Lightning address takes ${request.minSendableMsat / 1000n}–${request.maxSendableMsat / 1000n} ` +
        `sat; ${amountSat} asked`,
    );
  }
  const url = checkedUrl(request.callback);
  url.searchParams.set('amount', amount.toString());
  const body = await getJson(url, o);
  if (typeof body.pr !== 'string' || body.pr.length > 4096)
    throw lnurlError("the Lightning address server's callback gave no invoice (pr)");
  const got = bolt11AmountMsat(body.pr);
  if (got !== amount)
    throw lnurlError(`the invoice is for ${got === null ? 'any amount' : `${got} msat`}, not the ${amount} msat asked`);
  return body.pr;
}

/** BOLT11's amount in msat, from the human-readable part (`ln` + network + amount + multiplier); null: none given. */
export function bolt11AmountMsat(invoice: string): bigint | null {
  const lower = invoice.toLowerCase();
  const sep = lower.lastIndexOf('1');
  const hrp = /^ln(?:bcrt|bc|tbs|tb|sb)(\d*)([munp]?)$/.exec(lower.slice(0, sep));
  if (sep < 0 || !hrp) throw lnurlError('the invoice is not a bolt11 invoice');
  const [, digits = '', multiplier = ''] = hrp;
  if (digits === '') return null;
  const n = BigInt(digits);
  // 1 BTC = 10^11 msat; p (pico-BTC) is a tenth of a msat, so it must be a multiple of 10.
  switch (multiplier) {
    case '':
      return n * 100_000_000_000n;
    case 'm':
      return n * 100_000_000n;
    case 'u':
      return n * 100_000n;
    case 'n':
      return n * 100n;
    default:
      if (n % 10n !== 0n) throw lnurlError('the invoice asks for a fraction of a msat');
      return n / 10n;
  }
}

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

function polymod(values: readonly number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i]!;
  }
  return chk;
}

/** BIP-173 bech32 without the 90-character limit (LUD-01 LNURLs are longer): the payload bytes, checksum checked. */
export function bech32Payload(text: string, prefix: string): Uint8Array {
  const sep = text.lastIndexOf('1');
  if (text.slice(0, sep) !== prefix || text.length - sep < 7) throw lnurlError('not a bech32 LNURL');
  const data: number[] = [];
  for (const c of text.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) throw lnurlError('not a bech32 LNURL');
    data.push(v);
  }
  const expand = [...prefix]
    .map((c) => c.charCodeAt(0) >> 5)
    .concat(
      [0],
      [...prefix].map((c) => c.charCodeAt(0) & 31),
    );
  if (polymod([...expand, ...data]) !== 1) throw lnurlError("the LNURL's checksum is wrong");
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const v of data.slice(0, -6)) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(bytes);
}

/** The encoder, for the lab's LNURL server and tests (a router never makes one). */
export function bech32Encode(prefix: string, payload: Uint8Array): string {
  const data: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of payload) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >> bits) & 31);
    }
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const expand = [...prefix]
    .map((c) => c.charCodeAt(0) >> 5)
    .concat(
      [0],
      [...prefix].map((c) => c.charCodeAt(0) & 31),
    );
  const mod = polymod([...expand, ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return `${prefix}1${[...data, ...checksum].map((v) => CHARSET[v]).join('')}`;
}
