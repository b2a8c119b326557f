/**
 * The lab mint's own signing (NUT-00 blind signature with a NUT-12 DLEQ) and proof check, in variable time, and the
 * blinding and unblinding its funding helpers do in a wallet's place (cashu-mint-tokens.ts). cashu-ts's
 * mint-side primitives multiply in constant time with a blinded scalar (a real mint's key must not leak through
 * timing), ~3× the work of noble's variable-time multiply: the lab mint's keys are test keys, and its signing was most
 * of the Cashu test files' CPU. The DLEQ nonce is random (NUT-12 asks only that it be secret and new); the wallet
 * (cashu-ts) checks every signature and DLEQ as it would a real mint's, and cashu-mint-vectors.test.ts checks these
 * functions against the spec's vectors.
 */
import { hash_e, hashToCurve } from '@cashu/cashu-ts';
import { secp256k1 } from '@noble/curves/secp256k1.js';

type Point = ReturnType<typeof hashToCurve>;
const { Point: P } = secp256k1;
const Fn = P.Fn;

/** C_ = k·B_ and its DLEQ proof (e, s) that the same k is behind the public key K = k·G. */
export function signBlinded(B_: Point, key: Uint8Array): { C_: Point; e: Uint8Array; s: Uint8Array } {
  const k = Fn.fromBytes(key);
  const C_ = B_.multiplyUnsafe(k);
  const r = Fn.fromBytes(secp256k1.utils.randomSecretKey());
  const e = hash_e([P.BASE.multiplyUnsafe(r), B_.multiplyUnsafe(r), P.BASE.multiplyUnsafe(k), C_]);
  const s = Fn.toBytes(Fn.add(r, Fn.mul(Fn.fromBytes(e), k)));
  return { C_, e, s };
}

/** C = k·hash_to_curve(secret): the proof's C that blinding, signing and unblinding come to (NUT-00). */
export function signSecret(secret: Uint8Array, key: Uint8Array): Point {
  return hashToCurve(secret).multiplyUnsafe(Fn.fromBytes(key));
}

/** Whether C is k·hash_to_curve(secret): the proof is one this key signed. */
export function signedBy(secret: Uint8Array, C: Point, key: Uint8Array): boolean {
  return signSecret(secret, key).equals(C);
}

/** A wallet's blinded message for `secret` (NUT-00): B_ = hash_to_curve(secret) + r·G, and its blinding factor r. */
export function blindSecret(secret: Uint8Array): { B_: Point; r: bigint } {
  const r = Fn.fromBytes(secp256k1.utils.randomSecretKey());
  return { B_: hashToCurve(secret).add(P.BASE.multiplyUnsafe(r)), r };
}

/** A wallet's unblinding of the mint's C_ with the key K it was signed by: C = C_ − r·K (NUT-00). */
export function unblindSignature(C_: Point, r: bigint, K: Point): Point {
  return C_.subtract(K.multiplyUnsafe(r));
}
