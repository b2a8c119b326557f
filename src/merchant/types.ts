/**
 * Shapes the merchant trades in. Amounts are bigint in the asset's smallest unit (10^-decimals). A quote and a purchase
 * request are what every payment method is handed, so they live with the methods (src/payments/types.ts).
 */
import type { Metric, PaymentRef, Session } from '../sessions/index.ts';
import type { PaymentFields, PurchaseRequest, Quote, QuoteInput } from '../payments/index.ts';

export type { PaymentFields, PurchaseRequest, Quote, QuoteInput };

export interface GrantRequest {
  mac: string;
  seconds?: string | bigint | number | undefined;
  bytes?: string | bigint | number | undefined;
  ip?: string | undefined;
  user?: string | undefined;
  /** A plan the grant is of (its speed tier applies; its price does not): must be a configured plan's id. */
  plan?: string | undefined;
  /** The admin's retry key: a second grant with the same key is refused (ERR_PAYMENT_REPLAYED), not granted twice. */
  idempotencyKey?: string | undefined;
  /** How many devices share the grant (several devices per purchase); absent = 1. */
  devices?: number | undefined;
  /** Only adds to the MAC's live session (Grant.liveOnly): never starts one. */
  liveOnly?: boolean | undefined;
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
