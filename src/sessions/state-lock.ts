/**
 * One daemon per state_dir: a lock file `sluice.lock` holding the owner's pid, created with O_EXCL before recovery
 * reads anything. A second daemon on the same config would otherwise replay (and truncate, compact) the journal the
 * first is appending to. Pure JS has no flock(2), so a stale lock (the owner was kill -9'd, or the router rebooted)
 * is recognised by its pid: not running, or running something that is not sluice (a pid reused after a reboot).
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError } from '../errors.ts';
import { processAlive as alive } from '../storage/index.ts';

export const LOCK_FILE = 'sluice.lock';

/**
 * Removes the lock file; gone already is no failure. One unlink: rmSync walks its path first (an lstat, and its own
 * checks), at each start and stop.
 */
function removeLock(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function looksLikeSluice(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /sluice|node/.test(cmdline);
  } catch {
    // No /proc (not Linux) or it went away: trust kill(0).
    return alive(pid);
  }
}

/**
 * Takes the lock or throws ERR_STATE_LOCKED naming the owner. Returns the release function. Taken synchronously: the
 * journal store takes it once, at the daemon's start before anything is served, where each thread-pool hop only costs.
 */
export function lockStateDir(dir: string): () => Promise<void> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        // Not fsynced: the lock speaks only for a live owner, and every process that could read it sees it at once
        // through the page cache. What a power cut leaves of it (nothing, an empty file, the pid) names no live
        // owner after the reboot and is taken over as stale below; a flash sync at each start would only cost.
        const pid = Buffer.from(`${process.pid}\n`);
        if (writeSync(fd, pid) !== pid.length) throw new Error(`a short write of ${path}`);
      } finally {
        closeSync(fd);
      }
      // Released at the stop, after the journal's last write: a small read and an unlink, synchronous as the lock was
      // taken, where fs/promises took a thread-pool hop for each open, stat, read, close and unlink, which only costs.
      return async () => {
        let owner = '';
        try {
          owner = readFileSync(path, 'utf8');
        } catch {
          // Gone or unreadable: not ours to remove.
        }
        if (Number.parseInt(owner, 10) === process.pid) removeLock(path);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // Gone or unreadable: stale, removed below.
    }
    const pid = Number.parseInt(text, 10);
    // Our own pid: a store reopened in this process (tests model a restart that way); an unreadable or stale lock.
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) && looksLikeSluice(pid)) {
      throw new SluiceError('ERR_STATE_LOCKED', `state_dir ${dir} is in use by another sluice (pid ${pid})`, {
        details: { pid, dir },
      });
    }
    removeLock(path);
  }
  throw new SluiceError('ERR_STATE_LOCKED', `cannot take the lock ${path}`, { details: { dir } });
}
