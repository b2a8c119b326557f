/**
 * NUT-20 (signature on mint quote): a Lightning quote asked with the public key of a secret only the router holds, so
 * the mint signs its ecash for nobody else — not a reader of the log, not the customer who paid it. The secret is
 * made per quote (NUT-20: one key per quote, so the mint cannot link them) and kept in the quote's intent on flash,
 * beside the outputs' own secrets (store.ts). The mint request carries a BIP-340 Schnorr signature on the SHA-256 of
 * the message below; a mint that answers 20008 to it is asked once more with the older message (what cashu-ts does).
 *   v1:     "Cashu_MintQuoteSig_v1" || len32(quote) || quote
 *           || for each output: len32(amount) || amount || len32(B_) || B_
 *           (len32: 4-byte big-endian length; amount: minimal big-endian bytes, 0 → none; B_: the point's bytes)
 *   legacy: quote || B_0 || … || B_n  (the quote id and the outputs' hex strings, as UTF-8)
 */
import { createHash, randomBytes } from 'node:crypto';
import { cashuLib } from './loader.ts';

export type QuoteSigFormat = 'v1' | 'legacy';

/** NUT-00's error code for a mint request whose quote signature is missing or wrong. */
export const QUOTE_SIGNATURE_REFUSED = 20008;

const TAG = Buffer.from('Cashu_MintQuoteSig_v1', 'ascii');

function len32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function amountBytes(amount: number): Buffer {
  if (amount === 0) return Buffer.alloc(0);
  const hex = amount.toString(16);
  return Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex');
}

/** The bytes NUT-20 signs for `quote` and `outputs`, in request order. */
export function quoteSigMessage(
  quote: string,
  outputs: ReadonlyArray<{ amount: number; B_: string }>,
  format: QuoteSigFormat = 'v1',
): Buffer {
  if (format === 'legacy') return Buffer.from(quote + outputs.map((o) => o.B_).join(''), 'utf8');
  const id = Buffer.from(quote, 'utf8');
  const parts: Buffer[] = [TAG, len32(id.length), id];
  for (const o of outputs) {
    const a = amountBytes(o.amount);
    const b = Buffer.from(o.B_, 'hex');
    parts.push(len32(a.length), a, len32(b.length), b);
  }
  return Buffer.concat(parts);
}

/** A fresh quote key: the secret (hex, kept in the intent) and its compressed public key (hex, sent to the mint). */
export function newQuoteKey(): { secret: string; pubkey: string } {
  const secret = cashuLib().schnorr.utils.randomSecretKey();
  const pubkey = cashuLib().secp256k1.getPublicKey(secret, true);
  return { secret: Buffer.from(secret).toString('hex'), pubkey: Buffer.from(pubkey).toString('hex') };
}

/** The mint request's `signature` (64-byte BIP-340 Schnorr, hex). */
export function signQuote(
  secret: string,
  quote: string,
  outputs: ReadonlyArray<{ amount: number; B_: string }>,
  format: QuoteSigFormat = 'v1',
): string {
  const digest = createHash('sha256')
    .update(quoteSigMessage(quote, outputs, format))
    .digest();
  return Buffer.from(cashuLib().schnorr.sign(digest, Buffer.from(secret, 'hex'), randomBytes(32))).toString('hex');
}
