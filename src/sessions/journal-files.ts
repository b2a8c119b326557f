/**
 * The session journal's file steps (journal.ts says what the files are and in what order the steps go): a journal
 * opened for appending with its header, the snapshot written to its temp file and renamed over, a damaged file's
 * evidence copy. Each made with the calls it is given: on the thread pool while the daemon serves, at once at its start
 * (storage/file-calls.ts).
 */
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { appendWhole, atomicWriteFs, fdAppendTarget, fsyncDir, writeAll } from '../storage/index.ts';
import type { FileCalls } from '../storage/index.ts';
import { encodeLine } from './journal-codec.ts';
import { SNAPSHOT, journalName } from './journal-start.ts';

/** How many evidence copies of one file are kept (a flash partition is small; the first ones tell the story). */
const MAX_COPIES = 5;

/** Copies `name` to `name.corrupt` (or `.corrupt-2`…), never over an earlier copy; null when none was made. */
export async function keepCopy(calls: FileCalls, dir: string, name: string): Promise<string | null> {
  for (let n = 1; n <= MAX_COPIES; n++) {
    const copy = n === 1 ? `${name}.corrupt` : `${name}.corrupt-${n}`;
    try {
      await calls.copyFile(join(dir, name), join(dir, copy), fsConstants.COPYFILE_EXCL);
      return copy;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code !== 'EEXIST') return null;
    }
  }
  return null;
}

/** Removes `path`; nothing there is no failure. */
export async function unlinkIfThere(calls: FileCalls, path: string): Promise<void> {
  try {
    await calls.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Opens journal `gen` of `dir` for appending; an empty one (new, or a compaction cut short before it was started)
 * first gets its header (`fresh`), on flash before the directory entry is made durable. `size`: its length.
 */
export async function openJournalFile(
  calls: FileCalls,
  dir: string,
  gen: number,
  now: number,
): Promise<{ fd: number; size: number; fresh: boolean }> {
  const fd = await calls.open(join(dir, journalName(gen)), 'a', 0o600);
  try {
    let size = await calls.size(fd);
    const fresh = size === 0;
    if (fresh) {
      const header = Buffer.from(encodeLine({ t: 'jnl', v: 1, gen, at: now }, 0));
      size = await appendWhole(fdAppendTarget(calls, fd), header, 0, 'data');
    }
    await fsyncDir(dir, atomicWriteFs(calls));
    return { fd, size, fresh };
  } catch (err) {
    await calls.close(fd).catch(() => undefined);
    throw err;
  }
}

/** Writes the snapshot's lines to its temp file in `dir`, on flash (nothing replaced yet); its path. */
export async function writeSnapshotTemp(calls: FileCalls, dir: string, lines: string[]): Promise<string> {
  const tmp = join(dir, `${SNAPSHOT}.tmp`);
  const fd = await calls.open(tmp, 'w', 0o600);
  try {
    await writeAll(calls, fd, Buffer.from(lines.join('')));
    await calls.fsync(fd);
  } finally {
    await calls.close(fd);
  }
  return tmp;
}

/** Renames the temp snapshot over the snapshot, the rename made durable. */
export async function replaceSnapshot(calls: FileCalls, dir: string, tmp: string): Promise<void> {
  await calls.rename(tmp, join(dir, SNAPSHOT));
  await fsyncDir(dir, atomicWriteFs(calls));
}
