/**
 * NUT-05 (bolt11 melt) beside mint-client.ts's routes, for payout: a melt quote for an invoice, the quote's state read
 * again (what every retry is decided on: never a second melt), the melt itself with NUT-08 blank outputs for the
 * fee reserve's change. The same answer kinds as MintClient (ok / refused / unsent / unknown).
 */
import { MintClient, type BlindSignature, type MintAnswer, type MintClientOptions } from './mint-client.ts';
import type { StoredProof, SwapOutput } from './token.ts';

export type MeltState = 'UNPAID' | 'PENDING' | 'PAID';

export interface MeltQuote {
  quote: string;
  /** What the invoice pays, in the unit. */
  amount: number;
  /** The most the Lightning fee may be: the inputs must cover amount + fee_reserve (+ the NUT-02 input fee). */
  feeReserve: number;
  state: MeltState;
  /** NUT-08: signatures on the blank outputs, once PAID (the part of the reserve not spent). */
  change: BlindSignature[];
}

const isPoint = (v: unknown): boolean => typeof v === 'string' && /^0[23][0-9a-fA-F]{64}$/.test(v);
const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

function quoteOf(json: unknown): MeltQuote | null {
  if (typeof json !== 'object' || json === null) return null;
  const j = json as Record<string, unknown>;
  const amount = count(j.amount);
  const feeReserve = count(j.fee_reserve);
  // Mints before NUT-05's `state` said `paid: boolean` (no PENDING then).
  const state =
    j.state === 'UNPAID' || j.state === 'PENDING' || j.state === 'PAID'
      ? j.state
      : typeof j.paid === 'boolean'
        ? j.paid
          ? 'PAID'
          : 'UNPAID'
        : null;
  if (
    typeof j.quote !== 'string' ||
    j.quote === '' ||
    j.quote.length > 256 ||
    amount === null ||
    feeReserve === null ||
    state === null
  )
    return null;
  const change: BlindSignature[] = [];
  if (Array.isArray(j.change)) {
    for (const s of j.change as Array<Record<string, unknown>>) {
      const a = count(s.amount);
      if (a === null || typeof s.id !== 'string' || !isPoint(s.C_)) return null;
      change.push({ amount: a, id: s.id, C_: s.C_ as string });
    }
  }
  return { quote: j.quote, amount, feeReserve, state, change };
}

export class MeltClient extends MintClient {
  private readonly readTimeoutMs: number;

  constructor(url: string, options: MintClientOptions) {
    super(url, options);
    this.readTimeoutMs = options.timeoutMs;
  }

  /** POST /v1/melt/quote/bolt11. */
  meltQuote(invoice: string, unit: string): Promise<MintAnswer<MeltQuote>> {
    return this.exchange('POST', '/v1/melt/quote/bolt11', { request: invoice, unit }, this.readTimeoutMs, quoteOf);
  }

  /** GET /v1/melt/quote/bolt11/{id}: the quote's state now (and its change once PAID). */
  meltState(quote: string): Promise<MintAnswer<MeltQuote>> {
    return this.exchange(
      'GET',
      `/v1/melt/quote/bolt11/${encodeURIComponent(quote)}`,
      undefined,
      this.readTimeoutMs,
      quoteOf,
    );
  }

  /** POST /v1/melt/bolt11: sent once per quote; what happened after an unclear answer is read with meltState. */
  melt(
    quote: string,
    inputs: readonly StoredProof[],
    blanks: readonly SwapOutput[],
    timeoutMs: number,
  ): Promise<MintAnswer<MeltQuote>> {
    const body = {
      quote,
      inputs: inputs.map(({ id, amount, secret, C }) => ({ id, amount, secret, C })),
      outputs: blanks.map(({ id, amount, B_ }) => ({ id, amount, B_ })),
    };
    return this.exchange('POST', '/v1/melt/bolt11', body, timeoutMs, quoteOf);
  }
}
