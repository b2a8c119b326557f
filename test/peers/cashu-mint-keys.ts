/**
 * A lab mint keyset's keys: cashu-ts's createNewMintKeys with its own key derivation. createNewMintKeys draws each of a
 * keyset's 32–64 private keys at random and multiplies the generator by each (one constant-time scalar multiplication
 * a key: ~32 ms of CPU a keyset, for every mint, rotation and foreign keyset of every Cashu test file). Here a keyset's
 * keys are consecutive scalars from one random start, k, k+1, …, so each public key is the one before it plus G: one
 * multiplication a keyset, one point addition a key and one field inversion for them all. The lab mint's keys are
 * test keys; every key is still a distinct random-looking scalar, each keyset's start is drawn anew, and signatures,
 * DLEQ proofs and keyset ids are made and checked from them exactly as from createNewMintKeys's.
 */
import { createNewMintKeys, deriveKeysetId, serializeMintKeys } from '@cashu/cashu-ts';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { rememberPublicPoint } from './cashu-mint-sign.ts';

type MintKeys = ReturnType<typeof createNewMintKeys>;
type MintKeyOptions = NonNullable<Parameters<typeof createNewMintKeys>[2]>;

const { Point } = secp256k1;
const Fn = Point.Fn;

/** Keys for amounts 2^0 … 2^(orders-1), as createNewMintKeys(orders, undefined, options) makes them. */
export function labMintKeys(orders: number, options: MintKeyOptions = {}): MintKeys {
  // A start that leaves room for `orders` more without wrapping past the group order.
  let start = Fn.fromBytes(secp256k1.utils.randomSecretKey());
  if (start > Fn.ORDER - BigInt(orders) - 1n) start -= BigInt(orders) + 1n;
  const points = [Point.BASE.multiply(start)];
  for (let i = 1; i < orders; i++) points.push(points[i - 1]!.add(Point.BASE));
  const affine = normalizeZ(Point, points);
  const privKeys: Record<string, Uint8Array> = {};
  const pubKeys: Record<string, Uint8Array> = {};
  for (let i = 0; i < orders; i++) {
    const amount = (2n ** BigInt(i)).toString();
    privKeys[amount] = Fn.toBytes(start + BigInt(i));
    pubKeys[amount] = affine[i]!.toBytes(true);
    rememberPublicPoint(privKeys[amount], affine[i]!);
  }
  const { unit = 'sat', versionByte = 1 } = options;
  const keysetId = deriveKeysetId(serializeMintKeys(pubKeys), { ...options, unit, versionByte });
  return { pubKeys, privKeys, keysetId } as MintKeys;
}
