/**
 * A full flash for a test (root): a small tmpfs mounted for the call, a filler file that takes every byte left
 * (`fill`: 4 KiB writes, then single bytes, until write() says ENOSPC) and gives them back (`free`).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function onFullFlash(
  fn: (mount: string, fill: () => void, free: () => void) => Promise<void>,
  size = '256k',
): Promise<void> {
  const mount = mkdtempSync(join(tmpdir(), 'sluice-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mount], { stdio: 'ignore' });
  const filler = join(mount, 'filler');
  try {
    await fn(
      mount,
      () => fillUp(filler),
      () => rmSync(filler, { force: true }),
    );
  } finally {
    execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    rmSync(mount, { recursive: true, force: true });
  }
}

/** Writes `path` until the file system has not one byte left. */
export function fillUp(path: string): void {
  const fd = openSync(path, 'a');
  try {
    for (const chunk of [Buffer.alloc(4096, 0x55), Buffer.alloc(1, 0x55)]) {
      try {
        for (;;) if (writeSync(fd, chunk) < chunk.length) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}
