/** Shapes the merchant trades in. Amounts are bigint in the asset's smallest unit (10^-decimals). */
import type { Metric } from '../config/types.ts';
import type { PaymentRef, Session } from '../sessions/model.ts';

export interface Quote {
  plan: string;
  metric: Metric;
  steps: bigint;
  /** Bytes or seconds this purchase buys: steps × stepSize. */
  allotment: bigint;
  /** What is charged: steps × pricePerStep (never more than the amount offered). */
  price: bigint;
  asset: string;
  currency: string;
  decimals: number;
  stepSize: bigint;
  pricePerStep: bigint;
}

export interface QuoteInput {
  /** Smallest-unit integer: a decimal string of digits ("1500000"), a bigint, or a safe integer number. */
  amount?: string | bigint | number | undefined;
  steps?: string | bigint | number | undefined;
}

/** `method` picks the payment method; the other fields are that method's (signature, voucher code, …). */
export interface PaymentFields {
  method: string;
  [field: string]: unknown;
}

/**
 * A purchase, the one type from the API edge (ubus `purchase`, the LAN endpoint's routes) to the payment methods. The
 * edge checks its types (src/api/args.ts, src/api/payment.ts) and the merchant trusts them; what the fields say (a
 * unicast MAC, an IP address, lengths) sessions.prepare checks.
 */
export interface PurchaseRequest {
  mac: string;
  ip?: string;
  user?: string;
  plan?: string;
  /** Smallest units offered; the plan's price per step decides how many steps that buys. */
  amount?: bigint;
  steps?: bigint;
  payment: PaymentFields;
  /** The caller's retry key (`payment.idempotency_key` on the wire). */
  idempotencyKey?: string;
}

export interface GrantRequest {
  mac: string;
  seconds?: string | bigint | number | undefined;
  bytes?: string | bigint | number | undefined;
  ip?: string | undefined;
  user?: string | undefined;
  /** The admin's retry key: a second grant with the same key is refused (ERR_PAYMENT_REPLAYED), not granted twice. */
  idempotencyKey?: string | undefined;
}

export interface Receipt {
  sessionId: string;
  mac: string;
  plan: string | null;
  metric: Metric;
  /** Added by this purchase. */
  allotment: bigint;
  /** The session's allotment after it (differs on a top-up). */
  totalAllotment: bigint;
  expiresAt: number | null;
  toppedUp: boolean;
  method: string;
  reference: string;
  paid: bigint;
  asset: string;
  at: number;
}

export interface PurchaseResult {
  session: Session;
  toppedUp: boolean;
  quote: Quote | null;
  receipt: Receipt;
}

export type { PaymentRef };
