/**
 * Durable replace-by-rename, the pattern of libuci's uci_file_commit plus the directory fsync it omits:
 * write a temp file in the same directory (rename is atomic only within one file system), fsync it, rename it
 * over the target, fsync the directory so the rename itself survives a power cut. On any failure the temp file
 * is removed and the old file is untouched. The file system is injectable so tests can make any step fail.
 * A temp file a crash left mid-write (`.name.tmp-<pid>-<hex>`) is removed by the next process's first write of that
 * file (sweepStaleTemps): flash is small, and nothing else would ever remove it.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { SluiceError } from '../errors.ts';
import { poolCalls, writeAll, type FileCalls } from './file-calls.ts';

export interface AtomicFileHandle {
  writeFile(data: string | Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The subset of node:fs/promises used here. */
export interface AtomicWriteFs {
  open(path: string, flags: string, mode?: number): Promise<AtomicFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  stat(path: string): Promise<{ mode: number; mtimeMs?: number }>;
  /** Lists a directory, for the sweep of stale temp files; a file system without it is not swept. */
  readdir?(path: string): Promise<string[]>;
}

export interface WriteFileAtomicOptions {
  /** Mode of a newly created file; an existing file keeps its mode. Default 0o600 (configs hold secrets). */
  mode?: number;
  fs?: AtomicWriteFs;
}

/** A file descriptor written with `calls`. */
function fdHandle(calls: FileCalls, fd: number): AtomicFileHandle {
  return {
    writeFile: (data) => writeAll(calls, fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data),
    sync: () => calls.fsync(fd),
    close: () => calls.close(fd),
  };
}

/**
 * writeFileAtomic's file system made of `calls`: on the thread pool (the default), or at once, synchronously, for a
 * write at the daemon's start (storage/file-calls.ts). Descriptors, not FileHandles: a FileHandle's promise machinery
 * cost a table's write (a seal and its file, each open, write, sync, close, and the directory's open, sync, close) a
 * fifth more CPU, in the router as here.
 */
export function atomicWriteFs(calls: FileCalls): AtomicWriteFs {
  return {
    open: async (path, flags, mode) => fdHandle(calls, await calls.open(path, flags, mode)),
    rename: (from, to) => calls.rename(from, to),
    unlink: (path) => calls.unlink(path),
    stat: (path) => calls.stat(path),
    readdir: (path) => calls.readdir(path),
  };
}

const nodeFs = atomicWriteFs(poolCalls);

/** A temp file older than this is no write in flight, whichever process its name says wrote it. */
export const STALE_TEMP_MS = 60 * 60_000;
/** The files whose directory this process has swept of their stale temp files (the first write of each). */
const swept = new Set<string>();

/**
 * The tags of this process's temp files: a random start (a crash's leftover of an earlier process that had this pid is
 * not met by design, only by chance, as with a random tag per write), then one more per write, unique within the
 * process without a call into the random source each time.
 */
let nextTag: number | undefined;

/** The temp file of one write of `path`: in its directory, named after it, this process and a tag. */
function tempName(path: string): string {
  nextTag = ((nextTag ?? randomBytes(4).readUInt32BE(0)) + 1) >>> 0;
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${nextTag.toString(16).padStart(8, '0')}`);
}

/** The pid in `name` when it is one of tempName's for a file named `base`, else undefined. */
function tempPid(name: string, base: string): number | undefined {
  const prefix = `.${base}.tmp-`;
  if (!name.startsWith(prefix)) return undefined;
  const tail = /^([1-9][0-9]*)-[0-9a-f]{8}$/.exec(name.slice(prefix.length));
  return tail === null ? undefined : Number(tail[1]);
}

/** Whether a process `pid` runs (kill(pid, 0): EPERM is one of another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files a crash left beside `path`: only its own temp files (tempName's pattern), never this
 * process's (a write of the same file may be in flight), and of another process only when that process is gone or
 * the file is older than STALE_TEMP_MS. Once per file and process; a failure here never fails the write.
 */
async function sweepStaleTemps(path: string, fs: AtomicWriteFs): Promise<void> {
  if (swept.has(path) || fs.readdir === undefined) return;
  swept.add(path);
  const base = basename(path);
  try {
    for (const name of await fs.readdir(dirname(path))) {
      const pid = tempPid(name, base);
      if (pid === undefined || pid === process.pid) continue;
      const temp = join(dirname(path), name);
      const mtimeMs = await fs.stat(temp).then(
        (st) => st.mtimeMs,
        () => undefined,
      );
      if (!processAlive(pid) || (mtimeMs !== undefined && Date.now() - mtimeMs > STALE_TEMP_MS))
        await fs.unlink(temp).catch(() => undefined);
    }
  } catch {
    // A directory that cannot be listed is the write's to report.
  }
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const fs = options.fs ?? nodeFs;
  const dir = dirname(path);
  await sweepStaleTemps(path, fs);
  const temp = tempName(path);
  let mode = options.mode ?? 0o600;
  try {
    mode = (await fs.stat(path)).mode & 0o7777;
  } catch {
    // No old file: use the default mode.
  }
  let handle: AtomicFileHandle | undefined;
  let created = false;
  try {
    // 'wx': never follow or clobber something already sitting at the temp name.
    handle = await fs.open(temp, 'wx', mode);
    created = true;
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, path);
    created = false;
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    if (created) await fs.unlink(temp).catch(() => undefined);
    throw new SluiceError(
      'ERR_WRITE_FAILED',
      `cannot write ${path}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        details: { path },
      },
    );
  }
  // The data is safely in place; failing to persist the directory entry is still reported, as the caller may
  // have promised durability.
  try {
    await fsyncDir(dir, fs);
  } catch (err) {
    throw new SluiceError(
      'ERR_WRITE_FAILED',
      `cannot fsync directory ${dir}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        details: { path },
      },
    );
  }
}

/**
 * fsync of a directory: makes a rename or a new file in it survive a power cut (the step uci's commit omits).
 * The session journal calls it directly: it does its own temp + fsync + rename with crash-test points between.
 */
export async function fsyncDir(dir: string, fs: Pick<AtomicWriteFs, 'open'> = nodeFs): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    // After a successful sync the entry is durable; a failing close of a read-only directory handle changes nothing.
    await handle.close().catch(() => undefined);
  }
}
