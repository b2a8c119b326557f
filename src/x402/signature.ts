/**
 * ECDSA malleability, checked in one place for every signature sluice verifies (x402 authorizations, escrow receipts).
 * For each valid secp256k1 signature (r, s) the twin (r, n − s) recovers to the same signer; EIP-2 and OpenZeppelin's
 * ECDSA (hence USDC and the SessionEscrow contract) accept only the low one, s ≤ n/2. A high-s twin accepted here
 * would be refused on chain after sluice had already acted on it (a receipt the close can never submit), so sluice
 * refuses it before recovering anything.
 */

/** secp256k1n / 2 (SEC 2 §2.4.1: n = 0xffff…d0364141), the largest s EIP-2 accepts. */
export const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * Whether a 65-byte `r ‖ s ‖ v` signature (0x + 130 hex digits) has s ≤ n/2. Anything not of that shape is not low-s
 * (false): the caller refuses it like a bad signature.
 */
export function isLowS(signature: string): boolean {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return false;
  return BigInt(`0x${signature.slice(66, 130)}`) <= SECP256K1_HALF_N;
}
