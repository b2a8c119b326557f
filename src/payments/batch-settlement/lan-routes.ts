/**
 * The LAN endpoint's `batch-settlement` routes (docs/batch-settlement.md "The channel's state and the customer's refund
 * request"), this method's part of http/server.ts's route table (PluginRegistrars.lanRoute):
 *   GET /batch/channel?id=   what sluice knows of a channel (the pay page shows charged, ceiling, balance, refund)
 *   GET /batch/refund        without PAYMENT-SIGNATURE: 402 + PAYMENT-REQUIRED with the batch offer (the spec
 *                            client's probe, @x402/evm's refundChannel)
 *   GET|POST /batch/refund   with PAYMENT-SIGNATURE (or POST {payload}, ≤ 9 KiB): the customer's refund request; 200 +
 *                            PAYMENT-RESPONSE when done, 202 when on flash and not done yet
 * and the wallet a channel's session was paid from (a returning customer's restore).
 */
import { httpStatusOf, isSluiceError, SluiceError, toSluiceError } from '../../errors.ts';
import type { Session } from '../../sessions/index.ts';
import { encodeHeader } from '../../x402/index.ts';
import type { LanAnswer, LanFace, LanRequest, LanRoute } from '../plugin-faces.ts';
import { BATCH_METHOD_NAME } from './method-name.ts';
import type { BatchSettlementMethod } from './x402-batch.ts';

/** A refund request's body: {payload} with an x402 payload (the parser's own bound is 8 KiB). */
const MAX_REFUND_BYTES = 9 * 1024;
const ADDRESS = /^0x[0-9a-f]{40}$/;

const notEnabled = (): SluiceError =>
  new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'batch-settlement is not enabled on this router');

/**
 * A channel request's answer to the codes it answers its own way (each code's own status is errors.ts's): a refund's
 * unreadable payload is a bad request, not "pay again"; a deposit or settle still pending is a 402 here, not /buy's
 * 504.
 */
export function batchRouteStatus(code: string): number | undefined {
  if (code === 'ERR_BATCH_PAYLOAD_INVALID') return 400;
  if (code === 'ERR_X402_SETTLEMENT_PENDING' || code === 'ERR_BATCH_DEPOSIT_PENDING') return 402;
  return undefined;
}

/**
 * The spec's corrective fields for the batch-settlement offer of a refusal (`channelState`, `voucherState`, carried
 * in ERR_BATCH_CUMULATIVE_MISMATCH's details), or undefined when the refusal has none (/buy's 402 and the refund's).
 */
export function correctiveExtra(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  const { channelState, voucherState } = details;
  if (
    typeof channelState !== 'object' ||
    channelState === null ||
    typeof voucherState !== 'object' ||
    voucherState === null
  )
    return undefined;
  return { channelState, voucherState };
}

/**
 * The refund request. `offer`: the batch requirements of the channel's token, which a probe's 402 carries and a
 * refused voucher's corrective 402 extends.
 */
async function refundAnswer(
  batch: BatchSettlementMethod,
  payload: unknown,
  offer: Record<string, unknown>,
  resource: string,
): Promise<LanAnswer> {
  const required = (error?: string, extra?: Record<string, unknown>) => ({
    x402Version: 2,
    ...(error !== undefined && { error }),
    resource: {
      url: resource,
      description: 'refund of the unused balance of a batch-settlement channel',
      mimeType: 'application/json',
    },
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
    const status = batchRouteStatus(e.code) ?? httpStatusOf(e.code);
    if (!isSluiceError(err) || status !== 402) return { status, body: { error: { code: e.code, message: e.message } } };
    // The spec's reason (a client acts on it) and, for a voucher not at the charged amount, the corrective state.
    const reason = typeof e.details?.reason === 'string' ? e.details.reason : e.code;
    const extra = correctiveExtra(e.details as Record<string, unknown> | undefined);
    return {
      status,
      body: { ...required(reason, extra), error: { code: e.code, message: e.message } },
      headers: { 'payment-required': encodeHeader(required(reason, extra)) },
    };
  }
}

async function refund(req: LanRequest, face: LanFace | null, post: boolean): Promise<LanAnswer> {
  const batch = face?.batch;
  if (!batch) throw notEnabled();
  const header = req.header('payment-signature');
  const payload = post
    ? ((await req.json(MAX_REFUND_BYTES, 'ERR_BATCH_PAYLOAD_INVALID', '{payload}')).payload ?? header)
    : header;
  // The offer names the channel's token: the one of `?id=` (a router may sell plans in several), else the default
  // plan's.
  const id = req.url.searchParams.get('id');
  const asset = id !== null ? batch.channel(id).asset : req.quote({}).asset;
  return refundAnswer(
    batch,
    payload,
    batch.requirements(asset, 0n),
    `http://${req.header('host') ?? 'sluice'}/batch/refund${id !== null ? `?id=${id}` : ''}`,
  );
}

export const BATCH_LAN_ROUTES: readonly LanRoute[] = [
  {
    method: 'GET',
    path: '/batch/channel',
    statusOf: batchRouteStatus,
    async handler(req, face) {
      if (!face?.batch) throw notEnabled();
      return { status: 200, body: await face.batch.settledChannel(req.url.searchParams.get('id')) };
    },
  },
  {
    method: 'GET',
    path: '/batch/refund',
    paying: 'signed',
    statusOf: batchRouteStatus,
    handler: (req, face) => refund(req, face, false),
  },
  {
    method: 'POST',
    path: '/batch/refund',
    paying: true,
    statusOf: batchRouteStatus,
    handler: (req, face) => refund(req, face, true),
  },
];

/** The payers of a session's batch-settlement vouchers: each one's channel's (known while the method runs). */
export function batchPayersOf(session: Session, face: LanFace | null): string[] {
  const batch = face?.batch;
  if (!batch) return [];
  return session.payments.flatMap((p) => {
    if (p.method !== BATCH_METHOD_NAME) return [];
    const payer = (batch.settlementOf(p.reference)?.payer as string | undefined)?.toLowerCase();
    return typeof payer === 'string' && ADDRESS.test(payer) ? [payer] : [];
  });
}
