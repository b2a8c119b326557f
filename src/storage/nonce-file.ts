/**
 * The file of used nonces that keeps a signed call from running twice across a restart (PC-sync logouts:
 * `pcsync-nonces.json`; MQTT commands: `nonces.json`), a table on json-table.ts. One policy for both, here: a file
 * that is missing was never written (nothing was seen); a file that is there but cannot be read back (torn by a bad
 * flash, edited by hand, unreadable) is **damage**, never "nothing seen": counted and kept aside like every table's
 * (json-table.ts), and its owner then refuses every call signed up to a bound (the `refused_up_to` floor) instead of
 * running a replay. The floor is written with the nonces, so a restart after the first sound save still refuses what
 * the damaged file may have held; it is dropped once the window alone refuses what it covers.
 *
 * Format: `{"refused_up_to": <ms> | null, "nonces": [[nonce, ts], …]}`; a bare list of pairs (the format before the
 * floor) still reads.
 */
import type { ErrorCode } from '../errors.ts';
import { isSluiceError } from '../errors.ts';
import { JsonTable, type JsonTableFormat } from './json-table.ts';

export interface SeenNonces {
  /** nonce → the call's signed timestamp (ms). */
  nonces: Array<[string, number]>;
  /** Calls signed at or before this (ms) are refused: the record of their nonces was lost. Null: none lost. */
  refusedUpTo: number | null;
}

type Pair = [string, number];

/** Where its owner saves the nonces it keeps (its own map, or the MQTT verifier's): saveNonces writes them whole. */
export type NonceTable = JsonTable<Pair, number | null>;

function format(code: ErrorCode, name: string): JsonTableFormat<Pair, number | null> {
  return {
    code,
    what: `${name}, a list of used nonces`,
    key: (p) => p[0],
    split(json) {
      const body = Array.isArray(json) ? { nonces: json, refused_up_to: null } : json;
      if (typeof body !== 'object' || body === null || !Array.isArray((body as { nonces?: unknown }).nonces))
        throw new TypeError('not a list of used nonces');
      const { nonces, refused_up_to: floor } = body as { nonces: unknown[]; refused_up_to?: unknown };
      if (floor !== null && floor !== undefined && (typeof floor !== 'number' || !Number.isFinite(floor)))
        throw new TypeError('its refused_up_to is not a timestamp');
      return { rows: nonces, extra: typeof floor === 'number' ? floor : null };
    },
    // A bad entry makes the whole file damaged (what else it lost is unknown).
    row(e) {
      if (!(
        Array.isArray(e) &&
        e.length === 2 &&
        typeof e[0] === 'string' &&
        typeof e[1] === 'number' &&
        Number.isFinite(e[1])
      )) {
        throw new TypeError('an entry that is not [nonce, timestamp]');
      }
      return e as Pair;
    },
    join: (nonces, floor) => ({ refused_up_to: floor, nonces }),
    empty: () => null,
  };
}

/**
 * Reads `file` (named `name` in reasons; `code` names the damage in the table's count and error). Missing (or a path
 * whose directory is not one: no save can succeed there either, so nothing runs that would need one) reads as
 * nothing seen; damage gives `damaged` (the reason) and an empty table whose first save replaces the damaged file.
 * `atStart`: read synchronously (json-table.ts JsonTableOpen).
 */
export async function openNonceFile(
  file: string,
  name: string,
  code: ErrorCode,
  { atStart = false }: { atStart?: boolean } = {},
): Promise<{ table: NonceTable; seen: SeenNonces; damaged: string | null }> {
  const f = format(code, name);
  try {
    const table = await JsonTable.open(file, f, { atStart });
    return { table, seen: { nonces: table.list(), refusedUpTo: table.extra }, damaged: null };
  } catch (err) {
    if (!isSluiceError(err, code) || err.details?.['damaged'] !== true) throw err;
    return { table: JsonTable.over(file, f), seen: { nonces: [], refusedUpTo: null }, damaged: err.message };
  }
}

/**
 * Writes `seen` whole (its owner drops the floor once the window alone refuses what it covers); resolves once on flash.
 */
export function saveNonces(table: NonceTable, seen: SeenNonces): Promise<void> {
  table.replace(seen.nonces, seen.refusedUpTo);
  return table.flush();
}
