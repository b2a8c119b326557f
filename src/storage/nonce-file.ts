/**
 * The file of used nonces that keeps a signed call from running twice across a restart (PC-sync logouts:
 * `pcsync-nonces.json`; MQTT commands: `nonces.json`). One policy for both, here: a file that is missing was never
 * written (nothing was seen); a file that is there but cannot be read back (torn by a bad flash, edited by hand,
 * unreadable) is **damage**, never "nothing seen": its owner then refuses every call signed up to a bound (the
 * `refused_up_to` floor) instead of running a replay. The floor is written with the nonces, so a restart after the
 * first sound save still refuses what the damaged file may have held; it is dropped once the window alone refuses
 * what it covers.
 *
 * Format: `{"refused_up_to": <ms> | null, "nonces": [[nonce, ts], …]}`; a bare list of pairs (the format before the
 * floor) still reads.
 */
import { readFile } from 'node:fs/promises';
import { toSluiceError } from '../errors.ts';

export interface SeenNonces {
  /** nonce → the call's signed timestamp (ms). */
  nonces: Array<[string, number]>;
  /** Calls signed at or before this (ms) are refused: the record of their nonces was lost. Null: none lost. */
  refusedUpTo: number | null;
}

export type NonceFileRead =
  | { state: 'absent' }
  | { state: 'read'; seen: SeenNonces }
  | { state: 'damaged'; reason: string };

function isPair(e: unknown): e is [string, number] {
  return Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'number' && Number.isFinite(e[1]);
}

/** The file's content, or why it cannot be trusted; a bad entry makes the whole file damaged (what else it lost is unknown). */
export function parseNonceFile(text: string, name: string): NonceFileRead {
  let saved: unknown;
  try {
    saved = JSON.parse(text) as unknown;
  } catch {
    return { state: 'damaged', reason: `${name} is not JSON` };
  }
  const body = Array.isArray(saved) ? { nonces: saved, refused_up_to: null } : saved;
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { nonces?: unknown }).nonces)) {
    return { state: 'damaged', reason: `${name} is not a list of used nonces` };
  }
  const { nonces, refused_up_to: floor } = body as { nonces: unknown[]; refused_up_to?: unknown };
  if (!nonces.every(isPair)) return { state: 'damaged', reason: `${name} holds an entry that is not [nonce, timestamp]` };
  if (floor !== null && floor !== undefined && (typeof floor !== 'number' || !Number.isFinite(floor))) {
    return { state: 'damaged', reason: `${name}'s refused_up_to is not a timestamp` };
  }
  return { state: 'read', seen: { nonces, refusedUpTo: typeof floor === 'number' ? floor : null } };
}

/**
 * Reads `file` (named `name` in reasons). Missing, or a path whose directory is not one (ENOTDIR: no save can succeed
 * there either, so nothing runs that would need one), is `absent`; any other read error is damage.
 */
export async function readNonceFile(file: string, name: string): Promise<NonceFileRead> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent' };
    return { state: 'damaged', reason: `cannot read ${name}: ${toSluiceError(err).message}` };
  }
  return parseNonceFile(text, name);
}

/** The file's text (its owner drops the floor once the window alone refuses what it covers). */
export function nonceFileText(seen: SeenNonces): string {
  return JSON.stringify({ refused_up_to: seen.refusedUpTo, nonces: seen.nonces });
}
