/**
 * The router's Nostr key: what signs TollGate's advertisement, sessions and notices. A reseller checks the
 * advertisement's signature, and a client that saw this router before knows it by the key, so it is made once (first
 * start) and kept: a file of 64 hex characters in the state directory, 0600, written atomically, and on sysupgrade's
 * keep list (the package's conffiles, Makefile). A file that is there but cannot be read back is refused, never
 * replaced: a silent new key would be a different router to every client (the operator moves it aside to start afresh).
 * Sealed beside (nostr.key.seal): a key deleted after it was made is refused too, not made anew; to start afresh, the
 * operator moves both aside.
 */
import { join } from 'node:path';
import { cashuLib, loadCashuLib } from '../../../cashu/index.ts';
import { SluiceError } from '../../../errors.ts';
import { ensureDir, readKeyFile, sealKey, writeKeyFile } from '../../../storage/index.ts';
import { publicKeyOf } from './event.ts';

/**
 * The key file's name in main.state_dir (Makefile's conffiles names /etc/sluice/nostr.key, the default state_dir's).
 */
export const NOSTR_KEY_FILE = 'nostr.key';

export interface RouterKey {
  /** 32 bytes. */
  readonly secretKey: Uint8Array;
  /** x-only, lowercase hex. */
  readonly pubkey: string;
  /** Whether this start made it (logged once). */
  readonly created: boolean;
}

function keyError(path: string, reason: string, cause?: unknown): SluiceError {
  return new SluiceError(
    'ERR_NOSTR_KEY',
    `the router's Nostr key ${path} ${reason}: move it aside to make a new key (clients will see a new router)`,
    { details: { path }, ...(cause !== undefined && { cause }) },
  );
}

/** A secret key is 32 bytes in 1 … n−1 (noble's getPublicKey refuses the rest). */
function parseKey(text: string, path: string): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw keyError(path, 'is not 64 lowercase hex characters');
  const key = Uint8Array.from(Buffer.from(hex, 'hex'));
  try {
    cashuLib().schnorr.getPublicKey(key);
  } catch (err) {
    throw keyError(path, 'is not a valid secp256k1 secret key', err);
  }
  return key;
}

/**
 * The key in `stateDir`, made (0600, atomically, sealed: storage/key-file.ts) if it never was. Throws ERR_NOSTR_KEY
 * when it cannot; a key its seal says was made and is gone or changed is refused (`details.damaged`), never made anew.
 */
export async function openRouterKey(stateDir: string): Promise<RouterKey> {
  // noble's Schnorr is in the cashu chunk, loaded here, with the door: a router without the tollgate section never
  // reads it. ERR_MODULE_LOAD when the file is missing (the door is left out).
  await loadCashuLib();
  const path = join(stateDir, NOSTR_KEY_FILE);
  const read = readKeyFile(path, 'ERR_NOSTR_KEY', (text) => /^[0-9a-f]{64}\n?$/.test(text));
  if (read !== null) {
    const secretKey = parseKey(read.text, path);
    if (!read.sealed) await sealKey(path, read.text).catch(() => undefined);
    return { secretKey, pubkey: publicKeyOf(secretKey), created: false };
  }
  const secretKey = cashuLib().schnorr.utils.randomSecretKey();
  try {
    await ensureDir(stateDir);
    await writeKeyFile(path, `${Buffer.from(secretKey).toString('hex')}\n`);
  } catch (err) {
    throw keyError(path, 'cannot be written', err);
  }
  return { secretKey, pubkey: publicKeyOf(secretKey), created: true };
}
