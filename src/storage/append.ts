/**
 * The one rule every file sluice appends to follows (the Cashu ledger, the session journal, the outbox's segments, the
 * logs of marks): an append is whole or not at all. The bytes go to the end of a file opened O_APPEND, every byte
 * counted (a write may take fewer than it was given: on a full flash it takes what fits), then, if the owner asks,
 * fsync; should anything fall short — a short write that cannot be finished, a failed write, a failed fsync — the
 * file is cut back to the length it had before (`whole`, the end of the last whole record), that cut made durable,
 * and the append fails: no one is told yes for bytes that may not be there, and the next append never lands after a
 * torn record (which a reader would take for damage, with every record after it behind it).
 *
 * Should the cut itself fail, `AppendError.cut` is false: the file's tail is unknown and its owner appends no more
 * to it (a reopen reads it and cuts a torn tail as a crash's leftover).
 */
import { fdatasyncSync, fsyncSync, ftruncateSync, writeSync, writevSync } from 'node:fs';
import { nothingWritten, type FileCalls } from './file-calls.ts';

/** After the bytes: `data` fdatasync (the length is metadata fdatasync keeps), `full` fsync, `none` (a later one). */
export type AppendSync = 'data' | 'full' | 'none';

/** An append that failed: the file is back at `whole` bytes (`cut`), or its tail is unknown (not `cut`). */
export class AppendError extends Error {
  override readonly name = 'AppendError';
  constructor(
    message: string,
    readonly cut: boolean,
    /** The errno code of the failure (ENOSPC, EIO, …), or `SHORT` for a write that took nothing and said nothing. */
    readonly errno: string,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

function failure(err: unknown, whole: number, cut: unknown): AppendError {
  const errno = (err as NodeJS.ErrnoException).code ?? 'SHORT';
  const why = err instanceof Error ? err.message : String(err);
  return cut === null
    ? new AppendError(`${why}; cut back to its last whole length (${whole} bytes)`, true, errno, { cause: err })
    : new AppendError(`${why}; and it could not be cut back to ${whole} bytes (${String(cut)})`, false, errno, {
        cause: err,
      });
}

/** What `appendWhole` writes to: a FileHandle, or a descriptor and the calls it is written with (`fdAppendTarget`). */
export interface AppendTarget {
  write(data: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
}

/** The descriptor `fd` as an append's target, written with `calls` (on the pool, or at once at the start). */
export function fdAppendTarget(calls: FileCalls, fd: number): AppendTarget {
  return {
    write: async (data, offset, length) => ({ bytesWritten: await calls.write(fd, data, offset, length) }),
    datasync: () => calls.fdatasync(fd),
    sync: () => calls.fsync(fd),
    truncate: (length) => calls.ftruncate(fd, length),
  };
}

/**
 * Appends `data` to the file open for appending at `handle`, which is `whole` bytes long now; resolves with its new
 * length once the bytes (and, per `sync`, their fsync) are done. Rejects with an AppendError after cutting back.
 */
export async function appendWhole(
  handle: AppendTarget,
  data: Uint8Array,
  whole: number,
  sync: AppendSync,
): Promise<number> {
  try {
    for (let off = 0; off < data.length;) {
      const { bytesWritten } = await handle.write(data, off, data.length - off);
      if (bytesWritten <= 0) throw nothingWritten();
      off += bytesWritten;
    }
    if (sync === 'data') await handle.datasync();
    else if (sync === 'full') await handle.sync();
  } catch (err) {
    let cut: unknown = null;
    try {
      await handle.truncate(whole);
      await handle.sync();
    } catch (e) {
      cut = e instanceof Error ? e.message : e;
    }
    throw failure(err, whole, cut);
  }
  return whole + data.length;
}

/** `appendWhole` for an owner whose append is synchronous (one write() per mark, survives kill -9 at once). */
export function appendWholeSync(fd: number, data: Uint8Array, whole: number, sync: AppendSync): number {
  try {
    writeRestSync(fd, data, 0);
    syncSync(fd, sync);
  } catch (err) {
    throw failure(err, whole, cutBack(fd, whole));
  }
  return whole + data.length;
}

/**
 * `appendWholeSync` of several buffers (a record's head and its payload, a run of records) as one append, with one
 * writev and no copy of them (a copy only of what a short writev left).
 */
export function appendWholeSyncv(fd: number, parts: readonly Uint8Array[], whole: number, sync: AppendSync): number {
  let size = 0;
  for (const p of parts) size += p.length;
  try {
    const off = writevSync(fd, parts as Uint8Array[]);
    if (off < size) writeRestSync(fd, Buffer.concat(parts as Uint8Array[]), off);
    syncSync(fd, sync);
  } catch (err) {
    throw failure(err, whole, cutBack(fd, whole));
  }
  return whole + size;
}

/** Writes `data` from `off` to its end, every byte counted (a write may take fewer than it was given). */
function writeRestSync(fd: number, data: Uint8Array, off: number): void {
  while (off < data.length) {
    const n = writeSync(fd, data, off, data.length - off);
    if (n <= 0) throw nothingWritten();
    off += n;
  }
}

function syncSync(fd: number, sync: AppendSync): void {
  if (sync === 'data') fdatasyncSync(fd);
  else if (sync === 'full') fsyncSync(fd);
}

/** Cuts the file back to `whole` bytes, durably: null when done, else why not. */
function cutBack(fd: number, whole: number): unknown {
  try {
    ftruncateSync(fd, whole);
    fsyncSync(fd);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : e;
  }
}
