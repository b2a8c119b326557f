/**
 * fsync of a directory: makes a rename or a new file in it survive a power cut (the step uci's commit omits).
 * The journal does its own temp + fsync + rename between crash-test points, then calls this.
 */
import { open } from 'node:fs/promises';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
