/**
 * Tokens for tests of the lab mint (test/peers/cashu-mint.ts): a wallet's side of minting (the outputs it asks the
 * mint to sign, the proofs it unblinds from the signatures), issuing proofs straight from a keyset's keys (for what a
 * wallet cannot ask a mint for: proofs on a keyset already rotated out, P2PK-locked secrets, a keyset the mint never
 * listed), forged proofs, and the two token encodings. cashu-ts 4.8.0 encodes only V4 (`cashuB`, CBOR, short keyset
 * ids), so V3 (`cashuA`, base64url JSON, full ids) is written here in the field order of cashubtc/nuts
 * tests/00-tests.md, which the test checks byte for byte.
 */
import {
  Amount,
  createP2PKsecret,
  createRandomSecretKey,
  getEncodedToken,
  getPubKeyFromPrivKey,
  type Proof,
} from '@cashu/cashu-ts';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { labMintKeys } from './cashu-mint-keys.ts';
import { blindSecrets, signSecrets, unblindWithKeys } from './cashu-mint-sign.ts';
import { signedPointOf, type WireBlindedMessage, type WireSignature } from './cashu-mint-wire.ts';

export type TokenVersion = 3 | 4;

const utf8 = new TextEncoder();

/** The powers of two that make `amount`, smallest first (how mints and wallets split amounts). */
export function splitAmount(amount: number): number[] {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error(`amount must be a positive integer, got ${amount}`);
  const parts: number[] = [];
  for (let bit = 0; amount > 0; bit++, amount = Math.floor(amount / 2)) if (amount % 2) parts.push(2 ** bit);
  return parts;
}

/** An output a wallet asks a mint to sign, with what it keeps to unblind the signature. */
export interface WalletOutput {
  wire: WireBlindedMessage;
  secret: string;
  r: bigint;
}

/**
 * The outputs cashu-ts's Wallet asks a mint to sign for `amount`: split largest first (its default), each with 32
 * random bytes, hex, as its secret and a blinding factor (blindSecrets: consecutive from a random start).
 */
export function walletOutputs(amount: number, keysetId: string): WalletOutput[] {
  const amounts = splitAmount(amount).reverse();
  const secrets = amounts.map(() => bytesToHex(randomBytes(32)));
  const blinded = blindSecrets(secrets.map((s) => utf8.encode(s)));
  return amounts.map((a, i) => {
    const { B_, r } = blinded[i]!;
    return { wire: { amount: a, id: keysetId, B_: B_.toHex(true) }, secret: secrets[i]!, r };
  });
}

/**
 * The proofs a wallet makes of the mint's `signatures` on `outputs`: each C_ unblinded with the keyset's key for its
 * amount, the signature's NUT-12 DLEQ kept with the blinding factor r (a proof's DLEQ, as cashu-ts's `toProof` writes
 * it).
 */
export function walletProofs(
  signatures: readonly WireSignature[],
  outputs: readonly WalletOutput[],
  privKeys: Readonly<Record<string, Uint8Array>>,
): Proof[] {
  if (signatures.length !== outputs.length) throw new Error(`${signatures.length} signatures for ${outputs.length}`);
  const Cs = unblindWithKeys(
    signatures.map((sig, i) => ({ C_: signedPointOf(sig), r: outputs[i]!.r, key: privKeys[String(sig.amount)]! })),
  );
  return signatures.map((sig, i) => {
    const { secret, r } = outputs[i]!;
    return {
      id: sig.id,
      amount: Amount.from(sig.amount),
      C: Cs[i]!.toHex(true),
      secret,
      dleq: { s: sig.dleq.s, e: sig.dleq.e, r: r.toString(16).padStart(64, '0') },
    };
  });
}

/**
 * Proofs signed by `privKeys` as a mint would: C = k·hash_to_curve(secret), what blinding the secret, signing B_ and
 * unblinding with r come to (NUT-00). `secret(i)` makes the i-th secret (default: 32 random bytes, hex, as NUT-00
 * recommends).
 */
export function issueProofs(
  amount: number,
  keysetId: string,
  privKeys: Record<string, Uint8Array>,
  secret: (i: number) => string = () => bytesToHex(randomBytes(32)),
): Proof[] {
  const amounts = splitAmount(amount);
  const secrets = amounts.map((_, i) => secret(i));
  const Cs = signSecrets(
    amounts.map((a, i) => {
      const key = privKeys[String(a)];
      if (!key) throw new Error(`keyset ${keysetId} has no key for ${a}`);
      return { secret: utf8.encode(secrets[i]!), key };
    }),
  );
  return amounts.map((a, i) => ({ id: keysetId, amount: Amount.from(a), secret: secrets[i]!, C: Cs[i]!.toHex(true) }));
}

/** A P2PK (NUT-11) secret per proof, each with its own nonce, locked to `pubkey` (33-byte compressed hex). */
export function p2pkSecret(pubkey: string): () => string {
  return () => createP2PKsecret(pubkey);
}

/** Proofs no mint signed: a random secret and a random point as C (what checkstate alone reads as UNSPENT). */
export function forgedProofs(amount: number, keysetId: string): Proof[] {
  return splitAmount(amount).map((a) => ({
    id: keysetId,
    amount: Amount.from(a),
    secret: bytesToHex(randomBytes(32)),
    C: bytesToHex(getPubKeyFromPrivKey(createRandomSecretKey())),
  }));
}

/** A keyset this mint never made or listed, and proofs properly signed by it. */
export function foreignProofs(amount: number, unit: string): { keysetId: string; proofs: Proof[] } {
  const pair = labMintKeys(32, { unit });
  return { keysetId: pair.keysetId, proofs: issueProofs(amount, pair.keysetId, pair.privKeys) };
}

export function encodeToken(
  mint: string,
  unit: string,
  proofs: Proof[],
  version: TokenVersion = 4,
  memo?: string,
): string {
  if (version === 4) return getEncodedToken({ mint, unit, proofs, ...(memo !== undefined && { memo }) });
  // V3, in tests/00-tests.md's order: token[{mint, proofs[{amount, id, secret, C}]}], unit, memo.
  const v3 = {
    token: [
      {
        mint,
        proofs: proofs.map((p) => ({
          amount: p.amount.toNumber(),
          id: p.id,
          secret: p.secret,
          C: p.C,
          ...(p.dleq && { dleq: p.dleq }),
          ...(p.witness !== undefined && { witness: p.witness }),
        })),
      },
    ],
    unit,
    ...(memo !== undefined && { memo }),
  };
  return 'cashuA' + Buffer.from(JSON.stringify(v3)).toString('base64url');
}
