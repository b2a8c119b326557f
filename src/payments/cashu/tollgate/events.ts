/**
 * TollGate's three events as sluice answers with them (OpenTollGate/tollgate TIP-01, TIP-02, HTTP-01 @ 0c242a1; what
 * the clients read is in docs/tollgate.md): the advertisement (kind 10021), a session (1022) and a
 * notice (21023), and which notice each refusal is. Pure: the caller signs (nostr/) and sends.
 *
 * Units: sluice's time plans count seconds, TollGate milliseconds (`step_size` 60 s is "60000"; allotments and
 * /usage in ms); data plans are bytes on both sides. Every tag value is a string: clients unmarshal `[]string`.
 */
import type { PricingPlan, TollgateConfig } from '../../../config/index.ts';
import type { NostrTag } from '../nostr/index.ts';
import type { Session } from '../../../sessions/index.ts';

export const KIND_ADVERTISEMENT = 10021;
export const KIND_SESSION = 1022;
export const KIND_NOTICE = 21023;
/** The legacy payment event TollGate's own portal still posts (kind 21000 with a `payment` tag). */
export const KIND_PAYMENT = 21000;

/** The TIPs implemented, as TollGate's Go router announces them. */
const TIPS: NostrTag = ['tips', '1', '2'];

export type TollgateMetric = 'milliseconds' | 'bytes';

export function tollgateMetric(plan: Pick<PricingPlan, 'metric'>): TollgateMetric {
  return plan.metric === 'seconds' ? 'milliseconds' : 'bytes';
}

/** A quantity of the plan's metric (seconds or bytes) in TollGate's unit (milliseconds or bytes). */
export function toTollgateUnits(metric: PricingPlan['metric'], amount: bigint): bigint {
  return metric === 'seconds' ? amount * 1000n : amount;
}

export interface EventBody {
  kind: number;
  created_at: number;
  tags: NostrTag[];
  content: string;
}

const unixSeconds = (ms: number): number => Math.floor(ms / 1000);

/**
 * The 10021: one metric and step size (the plan's), one `price_per_step` per mint in `mints` (the accepted mints that
 * answer; a mint down is left out, the advertisement itself always served), six elements each as the reseller needs.
 */
export function advertisement(
  settings: Pick<TollgateConfig, 'pricePerStep' | 'unit' | 'minSteps'>,
  plan: Pick<PricingPlan, 'metric' | 'stepSize'>,
  mints: readonly string[],
  now: number,
): EventBody {
  const tags: NostrTag[] = [
    ['metric', tollgateMetric(plan)],
    ['step_size', toTollgateUnits(plan.metric, plan.stepSize).toString()],
    ...mints.map((mint) => [
      'price_per_step',
      'cashu',
      settings.pricePerStep.toString(),
      settings.unit,
      mint,
      settings.minSteps.toString(),
    ]),
    TIPS,
  ];
  return { kind: KIND_ADVERTISEMENT, created_at: unixSeconds(now), tags, content: '' };
}

/**
 * The 1022 for a purchase's session: `allotment` is the session's whole allotment so far (top-ups included), as the
 * Go router reports it; `p` is the 21000's payer key when the payment came in one, else the MAC (what the Go router
 * puts there; no client reads it).
 */
export function sessionEvent(
  session: Pick<Session, 'mac' | 'metric' | 'allotment' | 'startedAt' | 'createdAt'>,
  payer: string | null,
  now: number,
): EventBody {
  return {
    kind: KIND_SESSION,
    created_at: unixSeconds(now),
    content: '',
    tags: [
      ['p', payer ?? session.mac],
      ['device-identifier', 'mac', session.mac],
      ['allotment', toTollgateUnits(session.metric, session.allotment).toString()],
      ['metric', session.metric === 'seconds' ? 'milliseconds' : 'bytes'],
      ['start-time', String(unixSeconds(session.startedAt ?? session.createdAt))],
    ],
  };
}

export type NoticeLevel = 'error' | 'warning' | 'info' | 'debug';

/** A 21023: `code` is TollGate's (spec or Go router), `content` the human text. */
export function noticeEvent(
  level: NoticeLevel,
  code: string,
  content: string,
  payer: string | null,
  now: number,
): EventBody {
  return {
    kind: KIND_NOTICE,
    created_at: unixSeconds(now),
    content,
    tags: [['level', level], ['code', code], ...(payer !== null ? [['p', payer]] : [])],
  };
}

export interface Refusal {
  status: number;
  level: NoticeLevel;
  code: string;
}

/**
 * sluice's error codes → TollGate's notice codes (spec: payment-error-token-spent, payment-error-mint-not-accepted,
 * session-error; Go router: the rest) and an HTTP status. 402 for a payment refused (the portal shows "token not
 * accepted"), 5xx where paying again later may work. Anything not listed is internal-error, 500.
 */
const REFUSALS: Readonly<Record<string, Refusal>> = {
  ERR_CASHU_TOKEN_SPENT: { status: 402, level: 'error', code: 'payment-error-token-spent' },
  ERR_PAYMENT_REPLAYED: { status: 402, level: 'error', code: 'payment-error-token-spent' },
  ERR_CASHU_MINT_NOT_ACCEPTED: { status: 402, level: 'error', code: 'payment-error-mint-not-accepted' },
  ERR_CASHU_UNIT: { status: 402, level: 'error', code: 'payment-error-invalid-token' },
  ERR_CASHU_KEYSET_UNKNOWN: { status: 402, level: 'error', code: 'payment-error-invalid-token' },
  ERR_CASHU_TOKEN_LOCKED: { status: 402, level: 'error', code: 'payment-error-invalid-token' },
  ERR_CASHU_TOKEN_INVALID: { status: 402, level: 'error', code: 'payment-error-invalid-token' },
  ERR_CASHU_TOO_LARGE: { status: 413, level: 'error', code: 'payment-error-invalid-token' },
  ERR_TOLLGATE_REQUEST: { status: 400, level: 'error', code: 'payment-error-invalid-token' },
  ERR_CASHU_UNDERPAID: { status: 402, level: 'error', code: 'payment-processing-failed' },
  ERR_AMOUNT_TOO_SMALL: { status: 402, level: 'error', code: 'payment-processing-failed' },
  ERR_AMOUNT_TOO_LARGE: { status: 402, level: 'error', code: 'payment-processing-failed' },
  ERR_PAYMENT_INSUFFICIENT: { status: 402, level: 'error', code: 'payment-processing-failed' },
  // The outcome is not known yet: the payment goes on, and /usage shows the session when it lands.
  ERR_CASHU_PENDING: { status: 504, level: 'warning', code: 'payment-processing-timeout' },
  ERR_TOLLGATE_PENDING: { status: 504, level: 'warning', code: 'payment-processing-timeout' },
  ERR_PAYMENT_IN_PROGRESS: { status: 409, level: 'warning', code: 'payment-processing-timeout' },
  ERR_CASHU_MINT_UNAVAILABLE: { status: 503, level: 'error', code: 'service-unavailable' },
  ERR_CASHU_BALANCE_FULL: { status: 503, level: 'error', code: 'service-unavailable' },
  ERR_PAYMENT_METHOD_UNAVAILABLE: { status: 503, level: 'error', code: 'service-unavailable' },
  ERR_UNKNOWN_PAYMENT_METHOD: { status: 503, level: 'error', code: 'service-unavailable' },
  ERR_HTTP_RATE_LIMITED: { status: 429, level: 'warning', code: 'service-unavailable' },
  ERR_HTTP_CLIENT_UNKNOWN: { status: 403, level: 'error', code: 'mac-address-lookup-failed' },
  ERR_HTTP_CLIENT_AMBIGUOUS: { status: 409, level: 'error', code: 'mac-address-lookup-failed' },
  ERR_SESSION_METRIC_MISMATCH: { status: 409, level: 'error', code: 'session-error' },
  ERR_SESSION_LIMIT: { status: 503, level: 'error', code: 'session-error' },
  ERR_UNKNOWN_PLAN: { status: 503, level: 'error', code: 'service-unavailable' },
};

const INTERNAL: Refusal = { status: 500, level: 'error', code: 'internal-error' };

export function refusalOf(code: string): Refusal {
  return REFUSALS[code] ?? INTERNAL;
}
