/**
 * Escrow sessions as a leaf library: buyer-signed usage receipts and the credit rule (pure), the ledger of what the
 * router holds per escrow session (one JSON file), and the escrow facilitator's sessions API client. The payment
 * method that uses them is src/payments/escrow-session/x402-session.ts.
 */
export { EscrowFacilitatorClient, type Outcome } from './client.ts';
export { EscrowLedger, type EscrowClose, type EscrowEntry, type PendingGrant } from './ledger.ts';
export { creditState, meteredSteps, sessionIdOf, termsNonce, type CreditState, type SessionTerms } from './receipt.ts';
