import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';

/**
 * The stand-in's stand-in for ndsctl's lockf() lock: a lock file created with O_EXCL holding the owner's pid.
 * The kernel drops a real lockf lock when its owner dies; here a lock whose pid is gone is stale and taken over,
 * so a stand-in killed by a timeout (SIGKILL) does not leave the "portal" busy forever.
 */

/** A just-created lock may not have its pid written yet; only call it stale after this long. */
const PIDLESS_STALE_MS = 5000;

export function tryLock(lockPath: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (!isStale(lockPath)) return false;
    try {
      unlinkSync(lockPath);
    } catch {
      // Someone else took it over first.
    }
  }
  return false;
}

export function unlock(lockPath: string): void {
  try {
    if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
  } catch {
    // Already gone.
  }
}

/** Waits (synchronously, in small sleeps) for the lock; for test helpers, not for the stand-in itself. */
export function lockBlocking(lockPath: string, timeoutMs = 15_000): void {
  const deadline = Date.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!tryLock(lockPath)) {
    if (Date.now() > deadline) throw new Error(`ndsctl stand-in lock ${lockPath} still held after ${timeoutMs} ms`);
    Atomics.wait(cell, 0, 0, 5);
  }
}

function isStale(lockPath: string): boolean {
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(lockPath, 'utf8');
    mtimeMs = statSync(lockPath).mtimeMs;
  } catch {
    return true; // vanished: try again
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return Date.now() - mtimeMs > PIDLESS_STALE_MS;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
