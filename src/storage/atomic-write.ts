/**
 * Durable replace-by-rename, the pattern of libuci's uci_file_commit plus the directory fsync it omits:
 * write a temp file in the same directory (rename is atomic only within one file system), fsync it, rename it
 * over the target, fsync the directory so the rename itself survives a power cut. On any failure the temp file
 * is removed and the old file is untouched. The file system is injectable so tests can make any step fail.
 */
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { SluiceError } from '../errors.ts';

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
  stat(path: string): Promise<{ mode: number }>;
}

export interface WriteFileAtomicOptions {
  /** Mode of a newly created file; an existing file keeps its mode. Default 0o600 (configs hold secrets). */
  mode?: number;
  fs?: AtomicWriteFs;
}

const nodeFs: AtomicWriteFs = fsp;

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const fs = options.fs ?? nodeFs;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
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
