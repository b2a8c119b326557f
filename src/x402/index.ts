/**
 * x402 as a leaf library: `exact` (EIP-3009) payment payloads and their local verification, the networks and token
 * domains sluice knows, the facilitator client (and the one JSON-over-HTTP request it shares with escrow/), the
 * chain reads that tell a paid authorization from a canceled one, and the durable store of purchases between
 * /settle and the grant. The payment method itself is src/payments/exact/x402-exact.ts.
 */
export {
  AUTHORIZATION_CANCELED_TOPIC, AUTHORIZATION_USED_TOPIC, MAX_LOG_BLOCK_RANGE, TRANSFER_TOPIC, authorizationFate,
  blockAtOrBefore, isPaymentTransfer, type AuthorizationFate, type AuthorizationQuery, type SearchWindow,
} from './authorization-fate.ts';
export { MAX_RPC_ANSWER_BYTES, addressWord, rpcReader, type BlockHeader, type ChainLog, type ChainReader, type LogFilter, type RpcReaderOptions } from './chain.ts';
export {
  FacilitatorClient, isNonceUsedReason, refusalOf,
  type FacilitatorClientOptions, type FacilitatorRequest, type SettleOutcome, type SupportedKind, type VerifyOutcome,
} from './facilitator.ts';
export { MAX_RESPONSE_BYTES, jsonClient, type JsonAnswer, type JsonClientOptions } from './http-json.ts';
export { DEFAULT_RPC_URLS, chainIdOf, defaultRpcUrl, knownTokenDomain, toCaip2, v1NameOf, type TokenDomain } from './networks.ts';
export {
  MAX_PAYLOAD_BYTES, encodeHeader, parseAddress, parseExactPayment, payloadObject,
  type AcceptedRequirements, type Address, type ExactAuthorization, type ExactPayment, type Hex,
} from './payload.ts';
export { SECP256K1_HALF_N, isLowS } from './signature.ts';
export { evm, loadEvm, type Evm } from './evm-loader.ts';
export { recoverPersonalSigner } from './personal-sign.ts';
export { STORE_FILE, UNCONFIRMED_KEEP_SECONDS, X402Store, type PurchaseRecord, type RecordState } from './store.ts';
export {
  AUTHORIZATION_TYPES, checkTerms, recoverSigner, verifyLocally, type AuthorizationType, type LocalRequirements,
} from './verify.ts';
export {
  BATCH_SETTLEMENT_CONTRACT, BATCH_SETTLEMENT_SCHEME, CLAIM_BATCH_TYPES, MAX_WITHDRAW_DELAY, MIN_WITHDRAW_DELAY, REFUND_TYPES, batchDomain,
  channelIdOf, checkChannel, claimBatchTypedData, parseBatchPayment, refundTypedData, verifyVoucher, voucherDigest,
  type BatchPayment, type ChannelConfig, type ChannelTerms, type ClaimRow, type SignedVoucher,
} from './batch-settlement.ts';
export {
  BatchFacilitatorClient, snapshotOf,
  type BatchFacilitatorRequest, type BatchSettleOutcome, type BatchVerifyOutcome, type ChannelSnapshot,
} from './batch-facilitator.ts';
export {
  PERMIT2_CONTRACT, UPTO_PERMIT2_TYPES, UPTO_PROXY_CONTRACT, UPTO_SCHEME, checkUptoTerms, parseUptoPayment, uptoDigest, uptoReference,
  verifyUptoSignature, type UptoAuthorization, type UptoPayment, type UptoTerms,
} from './upto.ts';
export { UPTO_STORE_FILE, UptoStore, type UptoRecord, type UptoState } from './upto-store.ts';
