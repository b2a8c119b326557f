/** Public surface of the merchant area: pricing, quotes, purchase orchestration. */
export type { GrantRequest, PaymentFields, PurchaseRequest, PurchaseResult, Quote, QuoteInput, Receipt } from './types.ts';
export { MAX_UNITS, formatUnits, parseUnits } from './amount.ts';
export { Pricing, quote } from './pricing.ts';
export { MAX_GRANT_BYTES, MAX_GRANT_SECONDS, Merchant } from './merchant.ts';
export type { MerchantOptions, SessionsPort } from './merchant.ts';
