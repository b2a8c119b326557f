/**
 * Escrow sessions as a leaf library: buyer-signed usage receipts and the credit rule (pure), the ledger of what the
 * router holds per escrow session (one JSON file), and the escrow facilitator's sessions API client. The payment
 * method that uses them is src/payments/escrow-session/x402-session.ts.
 */
export {
  EscrowFacilitatorClient,
  type CloseResult, type ConsumeResult, type CreateRequest, type CreateResult, type EscrowClientOptions,
  type EscrowSessionView, type EscrowStats, type Outcome,
} from './client.ts';
export { EscrowLedger, KEEP_CLOSED, type EscrowClose, type EscrowEntry, type PendingGrant } from './ledger.ts';
export {
  RECEIPT_TYPES, creditState, keepHighest, meteredSteps, parseReceipt, receiptDomain, receiptTypedData, sessionIdOf,
  termsNonce, verifyReceipt,
  type CreditState, type EscrowDomain, type SessionTerms, type UsageReceipt,
} from './receipt.ts';
export {
  BATCH_CHANNELS_FILE, BatchChannelStore, type BatchChannelConfig, type ChannelRecord, type OpenCharge, type PurchaseIntent, type RefundState,
} from './batch-channels.ts';
