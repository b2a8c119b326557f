/**
 * Cashu as a leaf library: tokens and the swap's cryptography (NUT-00/02/03/10), the mint's HTTP API (keysets, swap,
 * checkstate, restore, melt, NUT-20 locked mint quotes), LNURL-pay for a payout, one spelling per mint URL, and
 * cashu-ts with noble's secp256k1 loaded on first use (a bundle file of its own, cashu.mjs). The payment method, its
 * custody of ecash and TollGate's door are the cashu plugin's (src/payments/cashu/).
 */
export { cashuLib, loadCashuLib } from './loader.ts';
export {
  MAX_PROOFS,
  decodeToken,
  inputFee,
  makeOutputs,
  referenceOf,
  splitAmount,
  tokenHeader,
  unblind,
  unblindAll,
  yOf,
  type DecodedToken,
  type KeysetEntry,
  type StoredProof,
  type SwapOutput,
} from './token.ts';
export { MintClient, type MintAnswer } from './mint-client.ts';
export { MeltClient, type MeltQuote } from './melt-client.ts';
export { MintQuoteClient } from './mint-quote-client.ts';
export { QUOTE_SIGNATURE_REFUSED, newQuoteKey, signQuote } from './quote-lock.ts';
export { invoiceFor, payRequestOf, type LnurlOptions } from './lnurl.ts';
