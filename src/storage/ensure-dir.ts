/**
 * mkdir -p without `recursive: true`: Node's recursive mkdir retries forever where a parent exists but refuses the
 * child with ENOENT (anywhere under /proc), which spun the daemon at 80% CPU without a log line and never returned
 * (main.state_dir, then mqtt.queue_dir). Each level is tried once; the errno of the first refusal is thrown.
 */
import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Whether `dir` is a directory already (undefined: nothing there, or it cannot be told): asked first, as it nearly
 * always is (each start, each owner's open), where a mkdir refused with EEXIST cost an error built with its stack and a
 * stat.
 */
async function isDir(dir: string): Promise<boolean | undefined> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return undefined;
  }
}

function isDirSync(dir: string): boolean | undefined {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory();
  } catch {
    return undefined;
  }
}

const notADirectory = (dir: string): Error =>
  Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });

export async function ensureDir(dir: string, mode = 0o700, depth = 0): Promise<void> {
  const was = await isDir(dir);
  if (was === true) return;
  if (was === false) throw notADirectory(dir);
  try {
    await mkdir(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EEXIST') {
      if (!(await stat(dir)).isDirectory()) throw notADirectory(dir);
      return;
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir || depth > 64) throw err;
  }
  await ensureDir(dirname(dir), mode, depth + 1);
  try {
    await mkdir(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException | null)?.code !== 'EEXIST') throw err;
  }
}

/** `ensureDir` for an owner that opens synchronously (at the daemon's start, before anything is served). */
export function ensureDirSync(dir: string, mode = 0o700, depth = 0): void {
  const was = isDirSync(dir);
  if (was === true) return;
  if (was === false) throw notADirectory(dir);
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EEXIST') {
      if (!statSync(dir).isDirectory()) throw notADirectory(dir);
      return;
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir || depth > 64) throw err;
  }
  ensureDirSync(dirname(dir), mode, depth + 1);
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException | null)?.code !== 'EEXIST') throw err;
  }
}
