/**
 * Durable file replacement, the uci commit recipe plus the step uci omits: write `<path>.tmp`, fsync it, rename over
 * `<path>`, fsync the directory so the rename itself survives a power cut. A crash leaves either the old file or the
 * new one, never a mix; a stray `.tmp` is ignored by readers and overwritten by the next write.
 */
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}
