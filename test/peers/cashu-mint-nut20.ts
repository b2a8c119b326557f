/**
 * The lab mint's NUT-20 (signature on mint quote, cashubtc/nuts 20.md): a quote asked with a `pubkey` is minted only
 * for a request whose `signature` is a BIP-340 Schnorr signature by that key on the SHA-256 of the message the spec
 * names. Written here from the spec's text, apart from sluice's own (src/cashu/quote-lock.ts), and checked
 * against the spec's test vector (cashu-mint-vectors.test.ts), so neither side can agree with the other by mistake.
 *   v1:     b"Cashu_MintQuoteSig_v1" || len32(quote) || quote || per output: len32(amount) || amount || len32(B_) || B_
 *   legacy: the UTF-8 of quote || B_0 || … || B_n (hex strings), what mints verified before v1 (cashu-ts's fallback)
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CODES, MintError } from './cashu-mint-wire.ts';

export type QuoteSigFormat = 'v1' | 'legacy';

const utf8 = new TextEncoder();

function be32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

function hexBytes(hex: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

/** msg_to_sign for `quote` and the request's outputs, in request order. */
export function nut20Message(
  quote: string,
  outputs: ReadonlyArray<{ amount: number; B_: string }>,
  format: QuoteSigFormat,
): Uint8Array {
  if (format === 'legacy') return utf8.encode(quote + outputs.map((o) => o.B_).join(''));
  const bytes: number[] = [...utf8.encode('Cashu_MintQuoteSig_v1')];
  const q = [...utf8.encode(quote)];
  bytes.push(...be32(q.length), ...q);
  for (const o of outputs) {
    // Minimal big-endian: 0 is no bytes at all.
    const amount: number[] = [];
    for (let a = o.amount; a > 0; a = Math.floor(a / 256)) amount.unshift(a % 256);
    const b = hexBytes(o.B_);
    bytes.push(...be32(amount.length), ...amount, ...be32(b.length), ...b);
  }
  return Uint8Array.from(bytes);
}

/** A compressed secp256k1 point (33 bytes hex), as NUT-20's `pubkey`; else 20009. */
export function quotePubkey(v: unknown): string {
  if (typeof v !== 'string' || !/^0[23][0-9a-f]{64}$/i.test(v))
    throw new MintError(CODES.quotePubkeyInvalid, 'pubkey: a compressed secp256k1 public key is required');
  try {
    schnorr.utils.lift_x(BigInt(`0x${v.slice(2)}`));
  } catch {
    throw new MintError(CODES.quotePubkeyInvalid, 'pubkey: not a point on secp256k1');
  }
  return v.toLowerCase();
}

/** Whether `signature` is `pubkey`'s on the request (in the formats this mint verifies); else 20008. */
export function checkQuoteSignature(
  pubkey: string,
  quote: string,
  outputs: ReadonlyArray<{ amount: number; B_: string }>,
  signature: unknown,
  formats: readonly QuoteSigFormat[],
): void {
  if (typeof signature !== 'string' || !/^[0-9a-f]{128}$/i.test(signature))
    throw new MintError(CODES.quoteSignatureInvalid, 'mint quote with pubkey but no valid signature provided');
  const xOnly = Uint8Array.from(hexBytes(pubkey.slice(2)));
  const sig = Uint8Array.from(hexBytes(signature));
  const ok = formats.some((f) => {
    try {
      return schnorr.verify(sig, sha256(nut20Message(quote, outputs, f)), xOnly);
    } catch {
      return false;
    }
  });
  if (!ok) throw new MintError(CODES.quoteSignatureInvalid, 'mint quote with pubkey but no valid signature provided');
}
