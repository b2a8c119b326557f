/**
 * The tokens the package's openNDS BinAuth (files/usr/lib/opennds/binauth_sluice.sh) keeps beside the portal's control
 * socket: at each auth openNDS runs it with the client's MAC and token, and it writes `<mac> <token>` to
 * `sluice-tokens/<mac>` in the socket's directory (a tmpfs); a deauth empties the file. That is the one place a token
 * shows up without a listing, and a listing is what sluice avoids while the kernel counts: with it the gate's deauth
 * is `ndsctl deauth <token>`, which openNDS finds by comparing strings, where a MAC costs it a hash of every listed
 * client first (10.3.1: three processes per client, ≈ 4 ms each; docs/captive-portal.md "What a call costs openNDS").
 *
 * A file is taken only when the portal's own BinAuth could have written it and nobody else: a regular file (not
 * followed through a link), owned by root or by this process's user, writable by its owner alone, small, naming the
 * MAC asked for, with a token of openNDS's form (tokens.ts). Anything else is no token, and the gate goes by the MAC.
 * A token that is stale all the same (openNDS restarted since) answers no, and the valve asks again by MAC
 * (token-calls.ts).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isPortalToken } from './tokens.ts';

/** The BinAuth's directory, beside the portal's control socket. */
export const BINAUTH_TOKENS_DIR = 'sluice-tokens';

/** `<mac> <token>` and a newline: well under this. */
const RECORD_MAX_BYTES = 64;

/** The token a BinAuth record (`<mac> <token>\n`) gives `mac` (canonical, lowercase), or undefined. Pure. */
export function parseBinauthRecord(text: string, mac: string): string | undefined {
  const fields = text.trim().split(' ');
  if (fields.length !== 2 || fields[0]!.toLowerCase() !== mac) return undefined;
  const token = fields[1]!;
  return isPortalToken(token) ? token : undefined;
}

/** Whether a file of this owner and mode may hold a token: root's or this process's, writable by its owner alone. */
export function trustedRecordFile(st: { uid: number; mode: number }, ownUid: number | undefined): boolean {
  if (st.uid !== 0 && st.uid !== ownUid) return false;
  return (st.mode & 0o022) === 0;
}

/**
 * The text of a BinAuth record file at `path` ('' for an emptied one: a deauth), or undefined when there is no file or
 * nothing it may be trusted for (a link, another owner, writable by others, too big). Never throws.
 */
export async function readBinauthRecord(path: string, ownUid = process.getuid?.()): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile() || st.size > RECORD_MAX_BYTES || !trustedRecordFile(st, ownUid)) return undefined;
    const buf = Buffer.alloc(RECORD_MAX_BYTES);
    const { bytesRead } = await handle.read(buf, 0, RECORD_MAX_BYTES, 0);
    return buf.toString('latin1', 0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Reads the BinAuth's token for a MAC (canonical) beside the socket `socketPath()` names; undefined when there is no
 * socket, no file, or nothing the file may be trusted for. Never throws.
 */
export function binauthTokenReader(socketPath: () => string | undefined): (mac: string) => Promise<string | undefined> {
  const ownUid = process.getuid?.();
  return async (mac) => {
    const socket = socketPath();
    if (socket === undefined) return undefined;
    const text = await readBinauthRecord(join(dirname(socket), BINAUTH_TOKENS_DIR, mac), ownUid);
    return text === undefined ? undefined : parseBinauthRecord(text, mac);
  };
}
