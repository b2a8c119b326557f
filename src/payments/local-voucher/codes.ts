/**
 * A printed voucher's code: 10 characters of a 32-letter alphabet (50 bits), printed in groups as XXXX-XXXX-XX.
 * The alphabet leaves out what is misread or misheard: 0/O, 1/I (and lower case l never appears: codes are upper case
 * and typing is case-blind). 32 letters make one letter 5 bits exactly, so a random byte's low 5 bits pick one
 * without bias. MikroTik's hotspot and openNDS's voucher theme print codes of the same kind (short, random, one use).
 *
 * Stored as a keyed hash (HMAC-SHA256 under a 256-bit key kept in its own file, voucher.key): the store file alone
 * does not let anyone test a guess offline, since every guess needs the key; and whoever can read the key is root on
 * the router, who could make codes anyway. A salted fast hash would not do: 2^50 guesses of a salted SHA-256 are
 * hours on one GPU, and fewer per hit when hundreds of codes are live.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const CODE_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
export const CODE_LENGTH = 10;
/** At least 40 bits; 50 keeps a full sheet of live codes far from guessable online. */
export const CODE_BITS = CODE_LENGTH * Math.log2(CODE_ALPHABET.length);
const GROUPS = [4, 4, 2];

/** A new code, grouped for reading (XXXX-XXXX-XX). */
export function newCode(): string {
  const bytes = randomBytes(CODE_LENGTH);
  let raw = '';
  for (const b of bytes) raw += CODE_ALPHABET[b & 31];
  return formatCode(raw);
}

/** XXXXXXXXXX → XXXX-XXXX-XX. */
export function formatCode(raw: string): string {
  const out: string[] = [];
  let at = 0;
  for (const n of GROUPS) {
    out.push(raw.slice(at, at + n));
    at += n;
  }
  return out.join('-');
}

/**
 * What a customer typed, as the code it may be: case, spaces and dashes do not matter. Null: it cannot be a local code
 * (wrong length, a letter outside the alphabet): a RADIUS voucher, or a wrong code.
 */
export function normalizeCode(typed: string): string | null {
  const raw = typed.toUpperCase().replace(/[\s-]/g, '');
  if (raw.length !== CODE_LENGTH) return null;
  for (const c of raw) if (!CODE_ALPHABET.includes(c)) return null;
  return raw;
}

/** The code's keyed hash (hex, 128 bits: a collision among even millions of codes is out of reach). */
export function codeHash(key: Buffer, raw: string): string {
  return createHmac('sha256', key).update(raw).digest('hex').slice(0, 32);
}

/** A batch id: 6 letters of the same alphabet (printed on the sheet and said on the phone). */
export function newBatchId(): string {
  let id = '';
  for (const b of randomBytes(6)) id += CODE_ALPHABET[b & 31];
  return id;
}
