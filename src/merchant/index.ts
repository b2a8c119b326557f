/** Public surface of the merchant area: pricing, quotes, purchase orchestration. */
export type { PurchaseRequest, PurchaseResult, Quote } from './types.ts';
export { MAX_UNITS, parseUnits } from './amount.ts';
export { Pricing } from './pricing.ts';
export { Merchant } from './merchant.ts';
