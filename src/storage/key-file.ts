/**
 * A secret key file (voucher.key, nostr.key: the `secret-key` verdict, verdicts.ts): written once, atomically, then
 * sealed beside (`<file>.seal`, seal.ts), so that a key deleted, emptied, cut, flipped or replaced by another is
 * refused instead of read as "never made" (a new key would be a different router to every client, or make every
 * printed code unknown). The key is written before its seal: a crash between the two leaves a key without a seal,
 * which is read as it is and sealed then (as a key written before seals existed). Neither there: never made.
 */
import { readFileSync } from 'node:fs';
import type { ErrorCode, SluiceError } from '../errors.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { fileDamage } from './damage.ts';
import { matchSeal, readSealSync, sealOf, sealPath, writeSeal } from './seal.ts';

export interface KeyRead {
  /** The file's text. */
  text: string;
  /** false: a key without a seal (call sealKey once it is read as good). */
  sealed: boolean;
}

/**
 * The key at `path` (`valid`: whether its text is a key of its kind), or null when it was never made; a key that is
 * not one, or that its seal says was there and is not (deleted, cut, emptied, flipped, another one), throws the
 * owner's `code` as damage (counted in damaged_tables, `details.damaged`; no copy: it is a secret).
 */
export function readKeyFile(path: string, code: ErrorCode, valid: (text: string) => boolean): KeyRead | null {
  const refuse = (reason: string): SluiceError => fileDamage('secret-key', path, code, 'a key', reason, null);
  let seal;
  try {
    seal = readSealSync(sealPath(path));
  } catch (err) {
    throw refuse((err as Error).message);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' && seal === null) return null;
    throw refuse(
      errno === 'ENOENT'
        ? 'it is missing, and its seal says it was made (a new key would be another router): refused, never made anew'
        : `it cannot be read (${(err as Error).message})`,
    );
  }
  if (seal !== null && matchSeal(bytes, seal, 'whole') === null)
    throw refuse(`it is not the key its seal says was written (${bytes.length} bytes: cut, changed or another key)`);
  const text = bytes.toString('utf8');
  if (!valid(text)) throw refuse('it is not a key');
  return { text, sealed: seal !== null };
}

/** Seals the key at `path` as it reads (`text`); resolves once the seal is on flash. */
export function sealKey(path: string, text: string): Promise<void> {
  return writeSeal(sealPath(path), [sealOf(Buffer.from(text, 'utf8'))]);
}

/** Writes a new key (atomically, 0600) and then its seal. */
export async function writeKeyFile(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text, { mode: 0o600 });
  await sealKey(path, text);
}
