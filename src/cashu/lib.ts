/**
 * The Cashu and secp256k1 code TollGate's door and the `cashu` method call: cashu-ts's token decoding and NUT-00
 * blinding, and noble's BIP-340 Schnorr for the Nostr events (cashu-ts computes on the same @noble/curves, so one
 * copy serves both). The one module of src/ that imports them, loaded by loader.ts when the tollgate section
 * opens its door or its method: in the bundle it is a file of its own, dist/cashu.mjs (scripts/build.mjs), so a router
 * without the section never loads it (docs/performance.md, "Bundle"). No sluice code here: the two files share nothing.
 */
export {
  blindMessage,
  getDecodedToken,
  getTokenMetadata,
  hashToCurve,
  pointFromHex,
  unblindSignature,
} from '@cashu/cashu-ts';
// The pay page's NUT-18 payment request (payments/cashu/lan-face.ts: `new (cashuLib().PaymentRequest)(…)`).
export { PaymentRequest } from '@cashu/cashu-ts';
// secp256k1: the compressed public key a NUT-20 mint quote is locked to (quote-lock.ts).
export { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
// One inversion for a batch of points made affine before encoding (token.ts: outputs, unblinded proofs).
export { normalizeZ } from '@noble/curves/abstract/curve.js';
