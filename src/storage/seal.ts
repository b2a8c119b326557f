/**
 * The seal: a small file kept beside a state file that says what that file held when it was last written, so that a
 * file cut short, emptied, deleted, or replaced by an older copy of itself is told from a crash's leftovers. A crash
 * can only leave the write in flight unfinished; it cannot take away what an earlier write made durable, and the seal
 * remembers what that was.
 *
 * The seal holds one or two states, each the file's length and the CRC-32 of those bytes:
 *   - an append-only log (sealed-log.ts: the Cashu ledger, the voucher book) reseals after each append is on flash: the
 *     file must begin with the
 *     sealed bytes (`prefix`); whatever follows is appended since (a crash between the append and its seal) and may
 *     end in a torn record. A cut below the sealed length is damage, never a torn write.
 *   - a whole-file rewrite (the log's compaction, a table) seals the old and the new state first, then renames the new
 *     file in: after a crash either is the file (`whole`, or `prefix` for a log), anything else is damage.
 *
 * Where it lives and what it cannot see (the trade-off, docs/operations.md "State files"): beside its file in the same
 * file system, so it costs one small atomic write per sealed write and survives what the file survives. On a router
 * the state directory is on the overlay (jffs2/ubifs): a bad block, a hand edit, a copy from a backup of the one file
 * or a file system repair that cuts a file are seen; a firstboot (the overlay wiped) takes both and is a new router; a
 * whole-directory restore from an older backup brings back a matching older seal and is not seen (nothing on the same
 * flash can see it). A file without a seal (written by a version that kept none) is taken as it reads and sealed then,
 * unless it says itself that it was sealed (the Cashu ledger's first record: payments/cashu/store.ts).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { writeFileAtomic, type AtomicWriteFs } from './atomic-write.ts';
import { crc32 } from './crc32.ts';
import { poolCalls } from './file-calls.ts';

/** A file's length and the CRC-32 of its bytes. */
export interface SealState {
  bytes: number;
  crc: number;
}

/** The seal of a file's bytes. */
export function sealOf(data: Uint8Array, from: SealState = { bytes: 0, crc: 0 }): SealState {
  return { bytes: from.bytes + data.length, crc: crc32(data, from.crc) };
}

/**
 * The sealed state `data` holds, or null (damage): `whole`, it is exactly one of them; `prefix`, it begins with one
 * (the longest that matches).
 */
export function matchSeal(data: Uint8Array, states: readonly SealState[], how: 'whole' | 'prefix'): SealState | null {
  let best: SealState | null = null;
  for (const s of states) {
    if (how === 'whole' ? data.length !== s.bytes : data.length < s.bytes) continue;
    if (crc32(data.subarray(0, s.bytes)) !== s.crc) continue;
    if (!best || s.bytes > best.bytes) best = s;
  }
  return best;
}

/** A seal file's text. */
export function encodeSeal(states: readonly SealState[]): string {
  return `${JSON.stringify({ states: states.map((s) => ({ bytes: s.bytes, crc: s.crc })) })}\n`;
}

/** Parses a seal file's text; throws why it is not one. */
export function decodeSeal(text: string): SealState[] {
  const json = JSON.parse(text) as { states?: unknown };
  const states = json?.states;
  if (!Array.isArray(states) || states.length === 0 || states.length > 2) throw new TypeError('not a seal');
  return states.map((s: unknown) => {
    const { bytes, crc } = (s ?? {}) as { bytes?: unknown; crc?: unknown };
    if (!Number.isSafeInteger(bytes) || (bytes as number) < 0 || !Number.isSafeInteger(crc) || (crc as number) < 0)
      throw new TypeError('a seal state that is not a length and a CRC');
    return { bytes: bytes as number, crc: crc as number };
  });
}

/**
 * Where a state file's seal is kept: beside it (`<file>.seal`), unless its kind keeps it higher up, out of a directory
 * an operator may remove whole (the Cashu ledger's, in the state directory).
 */
export const sealPath = (file: string): string => `${file}.seal`;

/** A seal file's text read back: its states, or null when there is none; throws why one there cannot be read. */
function sealRead(seal: string, read: () => string): SealState[] | null {
  let text: string;
  try {
    text = read();
  } catch (err) {
    // ENOTDIR: a path whose directory is not one, where nothing can have been sealed.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new Error(`its seal ${basename(seal)} cannot be read (${(err as Error).message})`);
  }
  try {
    return decodeSeal(text);
  } catch (err) {
    throw new Error(`its seal ${basename(seal)} is damaged (${(err as Error).message})`);
  }
}

/**
 * The seal at `seal`: its states, or null when there is none (never sealed). A seal that is there but cannot be read
 * back throws (its message says why): the caller treats that as damage to the file it guards.
 */
export async function readSeal(seal: string): Promise<SealState[] | null> {
  let text: string | Error;
  try {
    text = (await poolCalls.readFile(seal)).toString('utf8');
  } catch (err) {
    text = err as Error;
  }
  return sealRead(seal, () => {
    if (text instanceof Error) throw text;
    return text;
  });
}

/** `readSeal` for an owner whose open is synchronous. */
export function readSealSync(seal: string): SealState[] | null {
  return sealRead(seal, () => readFileSync(seal, 'utf8'));
}

/** Replaces the seal at `seal` atomically; resolves once it is on flash. */
export function writeSeal(seal: string, states: readonly SealState[], fs?: AtomicWriteFs): Promise<void> {
  return writeFileAtomic(seal, encodeSeal(states), { mode: 0o600, ...(fs && { fs }) });
}
