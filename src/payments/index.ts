/**
 * Public surface of src/payments/: the PaymentMethod contract and its registry, and one adapter per method (grant,
 * x402 `exact`, the x402-session escrow method, the RADIUS voucher) over the leaf libraries x402/, escrow/, radius/.
 */
export type { GrantTerms, PaymentContext, PaymentFields, PaymentMethod, PaymentRef, PrecheckResult, PurchaseRequest, Quote, QuoteInput } from './types.ts';
export { PaymentRegistry } from './registry.ts';
export { grantMethod, grantReference } from './grant/grant.ts';
export { MAX_TRIAL_KEYS, TRIAL_METHOD_NAME, TRIALS_FILE, TrialMethod, trialKeys, type TrialFigures } from './trial/trial.ts';
export { builtinPaymentMethods, createPaymentRegistry } from './builtin.ts';
export type { X402Face } from './plugin.ts';
export { PaymentPlugins } from './plugin-host.ts';
export { PAYMENT_PLUGINS, X402_SCHEMES } from './plugins.ts';
export { grantLate, type LateGrantSessions } from './late-grant.ts';
export { DAMAGED_STATE_CODES, unlessStateDamaged } from './method-state.ts';
export { EndRecordsTap, type EndsWrittenListener } from './end-records.ts';
export {
  RESOLVE_INTERVAL_MS, WINDOW_MARGIN_SECONDS, X402Method,
  type ResolveReport, type X402MethodOptions, type X402SessionsPort,
} from './exact/x402-exact.ts';
export {
  CLOSE_RETRY_MS, CONSUME_DELAY_MS, MAX_DURATION_SECONDS, MAX_WINDOW_SECONDS, METHOD_NAME as X402_SESSION_METHOD,
  PENDING_MARGIN_SECONDS, X402SessionMethod, parseSessionTerms, type SessionDeposit, type X402SessionOptions,
} from './escrow-session/x402-session.ts';
export { VoucherMethod, termsFromAccept, type VoucherMethodOptions, type VoucherPayment, type VoucherTerms } from './voucher/voucher.ts';
// A CoA-Request's rates are read like an Accept's (upstream/radius/coa-rates.ts): one reader of those attributes.
export { ratesFromAccept, type VoucherRates } from './voucher/voucher-rates.ts';
export {
  EscrowCredit, escrowRefOf, openEscrowCredit, type CreditFigures, type EscrowCreditEvents, type EscrowCreditOptions, type EscrowSessionClosed,
  type HoldingGate,
} from './escrow-session/escrow-credit.ts';
export {
  BATCH_METHOD_NAME, BatchSettlementMethod, MIRROR_FRESH_MS, batchReference, channelOfReference, type BatchMethodOptions, type RefundOutcome, type BatchSettlementConfig,
} from './batch-settlement/x402-batch.ts';
export { channelView, type ChannelView } from './batch-settlement/x402-batch-refund.ts';
export { BatchSettler, CLAIM_BATCH_WINDOW_MS, SETTLE_RETRY_MS, type BatchSettlerOptions, type PassReport } from './batch-settlement/x402-batch-settler.ts';
export {
  BatchWithdrawalWatch, WATCH_MIN_INTERVAL_MS, watchIntervalMs, type BatchWithdrawalWatchOptions, type WatchReport,
} from './batch-settlement/x402-batch-watch.ts';
export {
  BatchSettlementEnds, openBatchSettlement, type BatchEndsOptions, type BatchSettlementPart, type OpenBatchSettlementOptions,
} from './batch-settlement/x402-batch-ends.ts';
export {
  UPTO_METHOD_NAME, UPTO_SETTLE_MARGIN_S, UPTO_SETTLE_RETRY_MS, UptoMethod, type UptoMethodOptions, type UptoSettleResult,
} from './upto/x402-upto.ts';
export { UptoEnds, allocateUsage, openUpto, type OpenUptoOptions, type UptoEndsOptions, type UptoPart } from './upto/x402-upto-ends.ts';
