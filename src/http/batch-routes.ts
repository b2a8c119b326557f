/**
 * The LAN endpoint's `batch-settlement` channel routes (docs/batch-settlement.md "The channel's state and the
 * customer's refund request"), as answers the server sends:
 *   GET /batch/channel?id=   what sluice knows of a channel (the pay page shows charged, ceiling, balance, refund)
 *   GET /batch/refund        without PAYMENT-SIGNATURE: 402 + PAYMENT-REQUIRED with the batch offer (the spec
 *                            client's probe, @x402/evm's refundChannel)
 *   GET|POST /batch/refund   with PAYMENT-SIGNATURE (or POST {payload}): the customer's refund request; 200 +
 *                            PAYMENT-RESPONSE when done, 202 when on flash and not done yet
 */
import { isSluiceError, toSluiceError } from '../errors.ts';
import type { BatchSettlementMethod } from '../payments/index.ts';
import { encodeHeader } from '../x402/index.ts';
import { correctiveExtra } from './x402-schemes.ts';

export interface RouteAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** The HTTP status of a refused channel request. */
export function batchRouteStatus(code: string): number {
  if (code === 'ERR_BATCH_REFUND_FORBIDDEN') return 403;
  if (code === 'ERR_BATCH_CHANNEL_UNKNOWN') return 404;
  if (code === 'ERR_BATCH_CHANNEL_BUSY' || code === 'ERR_BATCH_REFUND_NO_BALANCE') return 409;
  if (code === 'ERR_BATCH_PAYLOAD_INVALID' || code === 'ERR_INVALID_ARGUMENT') return 400;
  if (code === 'ERR_X402_FACILITATOR_UNAVAILABLE') return 503;
  if (code === 'ERR_BATCH_STORE') return 500;
  if (code.startsWith('ERR_BATCH_') || code.startsWith('ERR_X402_')) return 402;
  return 500;
}

export function channelRoute(batch: BatchSettlementMethod, url: URL): RouteAnswer {
  return { status: 200, body: batch.channel(url.searchParams.get('id')) };
}

/**
 * The refund request. `offer`: the batch requirements of the router's default plan (the token the channels hold),
 * which a probe's 402 carries and a refused voucher's corrective 402 extends.
 */
export async function refundRoute(batch: BatchSettlementMethod, payload: unknown, offer: Record<string, unknown>, resource: string): Promise<RouteAnswer> {
  const required = (error?: string, extra?: Record<string, unknown>) => ({
    x402Version: 2, ...(error !== undefined && { error }),
    resource: { url: resource, description: 'refund of the unused balance of a batch-settlement channel', mimeType: 'application/json' },
    accepts: [extra ? { ...offer, extra: { ...(offer.extra as Record<string, unknown>), ...extra } } : offer],
  });
  if (payload === undefined || payload === '') {
    const body = required();
    return { status: 402, body, headers: { 'payment-required': encodeHeader(body) } };
  }
  try {
    const out = await batch.requestRefund(payload);
    if (!out.settlement) return { status: 202, body: out.channel };
    return { status: 200, body: out.channel, headers: { 'payment-response': encodeHeader(out.settlement) } };
  } catch (err) {
    const e = toSluiceError(err);
    const status = batchRouteStatus(e.code);
    if (!isSluiceError(err) || status !== 402) return { status, body: { error: { code: e.code, message: e.message } } };
    // The spec's reason (a client acts on it) and, for a voucher not at the charged amount, the corrective state.
    const reason = typeof e.details?.reason === 'string' ? e.details.reason : e.code;
    const extra = correctiveExtra(e.details as Record<string, unknown> | undefined);
    return { status, body: { ...required(reason, extra), error: { code: e.code, message: e.message } }, headers: { 'payment-required': encodeHeader(required(reason, extra)) } };
  }
}
