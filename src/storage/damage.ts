/**
 * What every reader does with a state file it finds damaged, by its kind's verdict (verdicts.ts): count it (ubus
 * `stats` → `damaged_tables`), keep a copy of its bytes aside when the kind allows one, and say so in the owner's
 * error (`details.damaged: true`, the reason, the copy), which the owner logs at error where it closes its door.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { refusalWithoutStack, type ErrorCode, type SluiceError } from '../errors.ts';
import { crc32 } from './crc32.ts';
import { FILE_KINDS, type FileKind } from './verdicts.ts';

const damaged = new Map<string, number>();

/** Files found damaged since start, by name, and how many times (ubus `stats` → `damaged_tables`). */
export function damagedTables(): Record<string, number> {
  return Object.fromEntries(damaged);
}

/** Counts a damaged state file under the `damaged_tables` figure (a reader that reads past its damage). */
export function countDamaged(path: string): void {
  const name = basename(path);
  damaged.set(name, (damaged.get(name) ?? 0) + 1);
}

/**
 * Keeps `bytes` beside `path` as `<file>.damaged-<crc32>`: one copy per distinct damage, so a respawn loop does not
 * fill the flash. Its name, or null when it could not be written (a full or read-only flash: the refusal stands).
 * `crc`: the bytes' CRC-32, when the reader made it already (checking them against their seal).
 */
export function keepAside(path: string, bytes: Uint8Array, crc = crc32(bytes)): string | null {
  const kept = `${path}.damaged-${crc.toString(16).padStart(8, '0')}`;
  try {
    // Synchronous (a start, rarely): the copy is there when the refusal is logged. Temp and rename: never a torn copy.
    if (!existsSync(kept)) {
      writeFileSync(`${kept}.tmp`, bytes, { mode: 0o600 });
      renameSync(`${kept}.tmp`, kept);
    }
    return kept;
  } catch {
    return null;
  }
}

/**
 * The refusal of a damaged file of `kind`: counted, a copy kept aside where the verdict allows (and there are bytes),
 * thrown by the caller with the owner's `code`. `crc`: the bytes' CRC-32, when the reader made it already.
 */
export function fileDamage(
  kind: FileKind,
  path: string,
  code: ErrorCode,
  what: string,
  reason: string,
  bytes: Uint8Array | null,
  crc?: number,
): SluiceError {
  countDamaged(path);
  const verdict = FILE_KINDS[kind];
  const kept = verdict.copy && bytes !== null && bytes.length > 0 ? keepAside(path, bytes, crc) : null;
  const consequence =
    verdict.copy || bytes === null
      ? 'refused, never read as empty'
      : 'refused, never read as empty; no copy is kept (it holds money) and the file is left as it is';
  // Without its stack: its owner logs the code, the message and the details, never the frames.
  return refusalWithoutStack(
    code,
    `${path} is not ${what} that can be read back: ${reason}; ${consequence}` +
      (kept ? ` (a copy is kept as ${basename(kept)})` : ''),
    { details: { path, damaged: true, reason, kind, ...(kept && { kept }) } },
  );
}
