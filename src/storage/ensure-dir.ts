/**
 * mkdir -p without `recursive: true`: Node's recursive mkdir retries forever where a parent exists but refuses the
 * child with ENOENT (anywhere under /proc), which spun the daemon at 80% CPU without a log line and never returned
 * (main.state_dir, then mqtt.queue_dir). Each level is tried once; the errno of the first refusal is thrown.
 */
import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function ensureDir(dir: string, mode = 0o700, depth = 0): Promise<void> {
  try {
    await mkdir(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EEXIST') {
      if (!(await stat(dir)).isDirectory())
        throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
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
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EEXIST') {
      if (!statSync(dir).isDirectory())
        throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
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
