/**
 * The lab mint's own signing (NUT-00 blind signature with a NUT-12 DLEQ) and proof check, in variable time, and the
 * blinding and unblinding its funding helpers do in a wallet's place (cashu-mint-tokens.ts), and a proof's DLEQ checked
 * as a wallet checks it (cashu-mint.test.ts, on the proofs its Wallet unblinded). cashu-ts's
 * mint-side primitives multiply in constant time with a blinded scalar (a real mint's key must not leak through
 * timing), ~3× the work of noble's variable-time multiply: the lab mint's keys are test keys, and its signing was most
 * of the Cashu test files' CPU. The DLEQ nonce is random (NUT-12 asks only that it be secret and new); the wallet
 * (cashu-ts) checks every signature and DLEQ as it would a real mint's, and cashu-mint-vectors.test.ts checks these
 * functions against the spec's vectors.
 */
import { hash_e, hashToCurve } from '@cashu/cashu-ts';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

type Point = ReturnType<typeof hashToCurve>;
const { Point: P } = secp256k1;
const Fn = P.Fn;
const utf8 = new TextEncoder();

/**
 * k·G through noble's constant-time multiply: its table of the generator's multiples (for blinded scalars) is the one
 * cashu-ts and the router build anyway (NUT-00 blinding, keys, Nostr signatures). multiplyUnsafe of the generator
 * builds a second table, for unblinded scalars, that only the lab mint would use: 66–87 ms of CPU in each file, for a
 * multiplication 0.5–0.9 ms faster, where a Cashu test file multiplies the generator 5 to 200 times.
 */
function timesG(k: bigint): Point {
  return P.BASE.multiply(k);
}

// Each key's public point K = k·G, as its keyset was made with it (cashu-mint-keys.ts), or made at its first use.
const publicPoints = new WeakMap<Uint8Array, Point>();

/** Keeps K, already made, as the public point of `key` (K must be k·G). */
export function rememberPublicPoint(key: Uint8Array, K: Point): void {
  publicPoints.set(key, K);
}

/** K = k·G for a private key (the keyset's public key for its amount). */
export function publicPointOf(key: Uint8Array): Point {
  let K = publicPoints.get(key);
  if (K === undefined) publicPoints.set(key, (K = timesG(Fn.fromBytes(key))));
  return K;
}

/**
 * C_ = k·B_ and its DLEQ proof (e, s) that the same k is behind the public key K = k·G. C_ and r·B_ come out of the
 * multiplication in projective form; one shared inversion makes them affine, where each serialization (hash_e's, the
 * answer's) would otherwise invert Z twice (its validity check, then its encoding).
 */
export function signBlinded(B_: Point, key: Uint8Array): { C_: Point; e: Uint8Array; s: Uint8Array } {
  const k = Fn.fromBytes(key);
  const r = Fn.fromBytes(secp256k1.utils.randomSecretKey());
  const [C_, rB_] = normalizeZ(P, [B_.multiplyUnsafe(k), B_.multiplyUnsafe(r)]) as [Point, Point];
  const e = hash_e([timesG(r), rB_, publicPointOf(key), C_]);
  const s = Fn.toBytes(Fn.add(r, Fn.mul(Fn.fromBytes(e), k)));
  return { C_, e, s };
}

/**
 * Whether a proof's DLEQ (NUT-12, as a wallet keeps it with its blinding factor r) shows that the key of K signed it:
 * B_ = Y + r·G and C_ = C + r·K made again, then e = hash_e(s·G − e·K, s·B_ − e·C_, K, C_). What cashu-ts's
 * hasValidDleq checks, in variable time (every value in it is public): each R one double multiplication sharing its
 * doublings, where hasValidDleq multiplies six times in constant time. A proof without a DLEQ has none that holds.
 */
export function dleqHolds(
  proof: { secret: string; C: string; dleq?: { e: string; s: string; r?: string } | undefined },
  keyHex: string,
): boolean {
  const { dleq } = proof;
  if (dleq?.r === undefined) return false;
  try {
    const K = P.fromHex(keyHex);
    const r = Fn.fromBytes(hexToBytes(dleq.r));
    const minusE = Fn.neg(Fn.fromBytes(hexToBytes(dleq.e)));
    const s = Fn.fromBytes(hexToBytes(dleq.s));
    const B_ = hashToCurve(utf8.encode(proof.secret)).add(timesG(r));
    const C_ = P.fromHex(proof.C).add(K.multiplyUnsafe(r));
    const e = hash_e([P.BASE.mulAddUnsafe(s, K, minusE), B_.mulAddUnsafe(s, C_, minusE), K, C_]);
    return bytesToHex(e) === dleq.e.toLowerCase();
  } catch {
    return false;
  }
}

/** C = k·hash_to_curve(secret): the proof's C that blinding, signing and unblinding come to (NUT-00). */
export function signSecret(secret: Uint8Array, key: Uint8Array): Point {
  return signY(hashToCurve(secret), key);
}

/** signSecret for each of `signed`, made affine with one shared inversion (each C would invert twice to encode). */
export function signSecrets(signed: ReadonlyArray<{ secret: Uint8Array; key: Uint8Array }>): Point[] {
  return normalizeZ(
    P,
    signed.map(({ secret, key }) => signSecret(secret, key)),
  );
}

/** C = k·Y for Y = hash_to_curve(secret), already mapped (the mint maps each input's secret once). */
export function signY(Y: Point, key: Uint8Array): Point {
  return Y.multiplyUnsafe(Fn.fromBytes(key));
}

/** Whether C is k·hash_to_curve(secret): the proof is one this key signed. */
export function signedBy(secret: Uint8Array, C: Point, key: Uint8Array): boolean {
  return signSecret(secret, key).equals(C);
}

/**
 * A wallet's blinded messages for `secrets` (NUT-00): B_ = hash_to_curve(secret) + r·G, and each blinding factor r.
 * The factors of one call are consecutive from a random start, r, r+1, …, so each r·G is the one before plus G (one
 * multiplication a call, not one an output), and the B_ are made affine with one shared inversion. A wallet of a
 * real payer draws each factor on its own so that a mint cannot link its outputs; the lab wallet funds tests, and each
 * B_ is still a point its mint reads, signs and checks as any other.
 */
export function blindSecrets(secrets: readonly Uint8Array[]): { B_: Point; r: bigint }[] {
  let start = Fn.fromBytes(secp256k1.utils.randomSecretKey());
  if (start > Fn.ORDER - BigInt(secrets.length) - 1n) start -= BigInt(secrets.length) + 1n;
  const blinded: Point[] = [];
  let rG = timesG(start);
  for (let i = 0; i < secrets.length; i++, rG = rG.add(P.BASE)) blinded.push(hashToCurve(secrets[i]!).add(rG));
  return normalizeZ(P, blinded).map((B_, i) => ({ B_, r: start + BigInt(i) }));
}

/**
 * The unblindings C = C_ − r·K (NUT-00) where the mint funds its own tokens: it holds K's private key k, so r·K is
 * (r·k)·G, a multiple of the generator (noble keeps a table of its multiples) rather than of an arbitrary point. The
 * same C as a wallet's unblinding, made affine with one shared inversion; a wallet's own is cashu-ts's, which the
 * tests' wallets and the router run.
 */
export function unblindWithKeys(signed: ReadonlyArray<{ C_: Point; r: bigint; key: Uint8Array }>): Point[] {
  return normalizeZ(
    P,
    signed.map(({ C_, r, key }) => C_.subtract(timesG(Fn.mul(r, Fn.fromBytes(key))))),
  );
}
