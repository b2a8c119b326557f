/**
 * Client of the standard x402 facilitator HTTP API: POST /verify, POST /settle, GET /supported. Both error dialects:
 * the spec's (200 with isValid:false / success:false and `invalidReason`/`errorReason`) and x402-rs's (HTTP 400 with
 * a reason and `invalidReasonDetails`/`errorMessage`). Unknown reasons are kept as opaque strings.
 *
 * What the answers mean to sluice: a verify "no" refuses the purchase; a verify that cannot be had (down, 5xx,
 * timeout, garbage) refuses it too, as unavailable. A settle "no" is a failed payment; a settle without an answer
 * (timeout, reset, 5xx) is UNKNOWN: the money may have moved, so the caller keeps the purchase pending and resolves it.
 */
import { SluiceError } from '../errors.ts';
import { jsonClient } from './http-json.ts';

export interface FacilitatorRequest {
  x402Version: 1 | 2;
  paymentPayload: Record<string, unknown>;
  paymentRequirements: Record<string, unknown>;
}

export type VerifyOutcome = { ok: true; payer: string | null } | { ok: false; reason: string; message: string };
export type SettleOutcome =
  | { status: 'settled'; transaction: string; payer: string | null }
  | { status: 'failed'; reason: string; message: string }
  | { status: 'unknown'; message: string };

export interface SupportedKind {
  x402Version: number;
  scheme: string;
  network: string;
  /** The scheme's own metadata (upto: `facilitatorAddress`, the address that will call settle). */
  extra?: Record<string, unknown>;
}

export interface FacilitatorClientOptions {
  url: string;
  /** One exchange, body included (src/http-client.ts). */
  timeoutMs: number;
  /** Ends the exchanges in flight (the payment method closing). */
  signal?: AbortSignal;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v.slice(0, 200) : undefined;
}

/** The reason and message of a refusal in either dialect. */
export function refusalOf(body: Record<string, unknown>, status: number): { reason: string; message: string } {
  const reason =
    str(body.invalidReason) ?? str(body.errorReason) ?? str(body.reason) ?? str(body.error) ?? `http_${status}`;
  const message =
    str(body.invalidMessage) ?? str(body.errorMessage) ?? str(body.invalidReasonDetails) ?? str(body.message) ?? reason;
  return { reason, message };
}

export class FacilitatorClient {
  private readonly call: ReturnType<typeof jsonClient>;

  constructor(options: FacilitatorClientOptions) {
    this.call = jsonClient(options);
  }

  async verify(request: FacilitatorRequest): Promise<VerifyOutcome> {
    const a = await this.call('POST', '/verify', request);
    if (a.kind === 'none') throw unavailable('verify', a.message);
    if (a.status >= 500) throw unavailable('verify', `HTTP ${a.status}: ${refusalOf(a.body, a.status).message}`);
    if (a.status === 200 && a.body.isValid === true) return { ok: true, payer: str(a.body.payer) ?? null };
    if (a.status === 200 && a.body.isValid !== false) throw unavailable('verify', 'answer has no isValid');
    return { ok: false, ...refusalOf(a.body, a.status) };
  }

  async settle(request: FacilitatorRequest): Promise<SettleOutcome> {
    const a = await this.call('POST', '/settle', request);
    if (a.kind === 'none') return { status: 'unknown', message: a.message };
    if (a.status >= 500)
      return { status: 'unknown', message: `HTTP ${a.status}: ${refusalOf(a.body, a.status).message}` };
    if (a.status === 200 && a.body.success === true) {
      const transaction = str(a.body.transaction);
      // A success without the transaction hash is not evidence of anything on chain.
      if (!transaction) return { status: 'unknown', message: 'success without a transaction' };
      return { status: 'settled', transaction, payer: str(a.body.payer) ?? null };
    }
    if (a.status === 200 && a.body.success !== false)
      return { status: 'unknown', message: 'answer has no success field' };
    return { status: 'failed', ...refusalOf(a.body, a.status) };
  }

  async supported(): Promise<SupportedKind[]> {
    const a = await this.call('GET', '/supported');
    if (a.kind === 'none') throw unavailable('supported', a.message);
    if (a.status !== 200 || !Array.isArray(a.body.kinds))
      throw unavailable('supported', `HTTP ${a.status} without kinds`);
    return (a.body.kinds as unknown[]).flatMap((k) => {
      if (typeof k !== 'object' || k === null) return [];
      const r = k as Record<string, unknown>;
      return typeof r.scheme === 'string' && typeof r.network === 'string' && typeof r.x402Version === 'number'
        ? [
            {
              x402Version: r.x402Version,
              scheme: r.scheme,
              network: r.network,
              ...(typeof r.extra === 'object' &&
                r.extra !== null &&
                !Array.isArray(r.extra) && { extra: r.extra as Record<string, unknown> }),
            },
          ]
        : [];
    });
  }
}

function unavailable(what: string, message: string): SluiceError {
  return new SluiceError('ERR_X402_FACILITATOR_UNAVAILABLE', `x402 facilitator ${what}: ${message}`);
}

/** Refusal reasons (both dialects) meaning the authorization's nonce is already used on chain. */
export function isNonceUsedReason(reason: string): boolean {
  return /nonce.*(used|already)|already.*used|authorization.*used/i.test(reason);
}
