/**
 * NUT-04 (bolt11 mint) beside mint-client.ts's routes, for the pay page's "Pay with Lightning": a
 * mint quote for an amount (the mint's Lightning invoice), the quote's state read again (UNPAID → PAID → ISSUED),
 * and the mint itself with the router's blinded outputs. The same answer kinds as MintClient (ok / refused / unsent /
 * unknown): an `unknown` mint may have signed, so its outputs must already be on flash and what happened is read back
 * with the quote's state (ISSUED) and a NUT-09 restore of those outputs, never by minting with new ones.
 */
import { MintClient, type BlindSignature, type MintAnswer, type MintClientOptions } from './mint-client.ts';
import type { SwapOutput } from './token.ts';

export type MintQuoteState = 'UNPAID' | 'PAID' | 'ISSUED';

export interface MintQuote {
  quote: string;
  /** The bolt11 invoice the customer pays. */
  request: string;
  amount: number;
  state: MintQuoteState;
  /** Unix seconds after which an unpaid quote is worth nothing; null when the mint gives none. */
  expiry: number | null;
}

const isPoint = (v: unknown): boolean => typeof v === 'string' && /^0[23][0-9a-fA-F]{64}$/.test(v);
const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

function quoteOf(json: unknown): MintQuote | null {
  if (typeof json !== 'object' || json === null) return null;
  const j = json as Record<string, unknown>;
  // Mints before NUT-04's `state` said `paid: boolean` (ISSUED unknown to them).
  const state =
    j.state === 'UNPAID' || j.state === 'PAID' || j.state === 'ISSUED'
      ? j.state
      : typeof j.paid === 'boolean'
        ? j.paid
          ? 'PAID'
          : 'UNPAID'
        : null;
  if (typeof j.quote !== 'string' || j.quote === '' || j.quote.length > 256 || state === null) return null;
  // An invoice is a few hundred characters; one far longer is not one.
  if (typeof j.request !== 'string' || !/^ln[a-z0-9]{10,4000}$/i.test(j.request)) return null;
  const amount = count(j.amount);
  const expiry = j.expiry === null || j.expiry === undefined ? null : count(j.expiry);
  if (expiry === null && j.expiry !== null && j.expiry !== undefined) return null;
  return { quote: j.quote, request: j.request, amount: amount ?? 0, state, expiry };
}

function signaturesOf(json: unknown, n: number): BlindSignature[] | null {
  const list = (json as { signatures?: unknown })?.signatures;
  if (!Array.isArray(list) || list.length !== n) return null;
  const out: BlindSignature[] = [];
  for (const s of list as Array<Record<string, unknown>>) {
    const a = count(s.amount);
    if (a === null || typeof s.id !== 'string' || !isPoint(s.C_)) return null;
    out.push({ amount: a, id: s.id, C_: s.C_ as string });
  }
  return out;
}

export class MintQuoteClient extends MintClient {
  private readonly readTimeoutMs: number;

  constructor(url: string, options: MintClientOptions) {
    super(url, options);
    this.readTimeoutMs = options.timeoutMs;
  }

  /** GET /v1/info (NUT-06): whether the mint locks a quote to a key (NUT-20 `supported`). */
  quoteLocks(): Promise<MintAnswer<boolean>> {
    return this.exchange('GET', '/v1/info', undefined, this.readTimeoutMs, (json) => {
      if (typeof json !== 'object' || json === null) return null;
      const nuts = (json as { nuts?: Record<string, unknown> }).nuts;
      const n20 = nuts && typeof nuts === 'object' ? (nuts['20'] as { supported?: unknown } | undefined) : undefined;
      return n20?.supported === true;
    });
  }

  /** POST /v1/mint/quote/bolt11: an invoice for `amount` in `unit`; `pubkey`: locked to it (NUT-20). */
  mintQuote(amount: number, unit: string, description?: string, pubkey?: string): Promise<MintAnswer<MintQuote>> {
    return this.exchange(
      'POST',
      '/v1/mint/quote/bolt11',
      { amount, unit, ...(description !== undefined && { description }), ...(pubkey !== undefined && { pubkey }) },
      this.readTimeoutMs,
      quoteOf,
    );
  }

  /** GET /v1/mint/quote/bolt11/{id}: whether the invoice was paid, and whether its ecash was issued. */
  mintQuoteState(quote: string): Promise<MintAnswer<MintQuote>> {
    return this.exchange(
      'GET',
      `/v1/mint/quote/bolt11/${encodeURIComponent(quote)}`,
      undefined,
      this.readTimeoutMs,
      quoteOf,
    );
  }

  /**
   * POST /v1/mint/bolt11: the signatures on `outputs` (on flash before this is sent); `signature`: the NUT-20 one, for
   * a locked quote.
   */
  mint(
    quote: string,
    outputs: readonly SwapOutput[],
    timeoutMs: number,
    signature?: string,
  ): Promise<MintAnswer<BlindSignature[]>> {
    const body = {
      quote,
      outputs: outputs.map(({ id, amount, B_ }) => ({ id, amount, B_ })),
      ...(signature !== undefined && { signature }),
    };
    return this.exchange('POST', '/v1/mint/bolt11', body, timeoutMs, (json) => signaturesOf(json, outputs.length));
  }
}
