/**
 * x402 as a leaf library: `exact` (EIP-3009) payment payloads and their local verification, the networks and token
 * domains sluice knows, the facilitator client (and the one JSON-over-HTTP request it shares with escrow/), the
 * chain reads that tell a paid authorization from a canceled one, and the durable store of purchases between
 * /settle and the grant. The payment method itself is src/payments/exact/x402-exact.ts.
 */
export { authorizationFate, type AuthorizationFate, type SearchWindow } from './authorization-fate.ts';
export { rpcReader, type ChainReader } from './chain.ts';
export { FacilitatorClient, isNonceUsedReason, refusalOf, type FacilitatorRequest } from './facilitator.ts';
export { jsonClient } from './http-json.ts';
export {
  DEFAULT_RPC_URLS,
  chainIdOf,
  defaultRpcUrl,
  knownTokenDomain,
  toCaip2,
  v1NameOf,
  type TokenDomain,
} from './networks.ts';
export { encodeHeader, parseExactPayment, type Address, type ExactPayment, type Hex } from './payload.ts';
export { isLowS } from './signature.ts';
export { evm, loadEvm } from './evm-loader.ts';
export { recoverPersonalSigner } from './personal-sign.ts';
export { X402Store, type PurchaseRecord } from './store.ts';
export { verifyLocally } from './verify.ts';
export {
  BATCH_SETTLEMENT_SCHEME,
  MAX_WITHDRAW_DELAY,
  MIN_WITHDRAW_DELAY,
  checkChannel,
  claimBatchTypedData,
  parseBatchPayment,
  refundTypedData,
  verifyVoucher,
  type BatchPayment,
  type ClaimRow,
} from './batch-settlement.ts';
export { BatchFacilitatorClient, type ChannelSnapshot } from './batch-facilitator.ts';
export {
  UPTO_SCHEME,
  checkUptoTerms,
  parseUptoPayment,
  uptoReference,
  verifyUptoSignature,
  type UptoPayment,
} from './upto.ts';
export { UptoStore, type UptoRecord } from './upto-store.ts';
