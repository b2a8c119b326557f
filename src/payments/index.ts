/**
 * Public surface of src/payments/: the PaymentMethod contract and its registry, and one adapter per method (grant,
 * x402 `exact`, the x402-session escrow method, the RADIUS voucher) over the leaf libraries x402/, escrow/, radius/.
 */
export type { PaymentFields, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from './types.ts';
export { PaymentRegistry } from './registry.ts';
export { grantReference } from './grant.ts';
export { TrialMethod } from './trial.ts';
export { createPaymentRegistry } from './builtin.ts';
export { unlessStateDamaged } from './method-state.ts';
export { EndRecordsTap } from './end-records.ts';
export { X402Method } from './x402-exact.ts';
export { VoucherMethod } from './voucher.ts';
export { EscrowCredit, openEscrowCredit } from './escrow-credit.ts';
export { BatchSettlementMethod } from './x402-batch.ts';
export { openBatchSettlement, type BatchSettlementPart } from './x402-batch-ends.ts';
export { UptoMethod } from './x402-upto.ts';
export { openUpto, type UptoPart } from './x402-upto-ends.ts';
