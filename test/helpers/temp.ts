import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Removes a test's temporary directory. A store's last write (a file written beside its target, then renamed) may
 * still land in it while it goes: rm retries a directory that is not empty yet (rmdir ENOTEMPTY failed a test once).
 */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
}

/**
 * A maker of fresh temporary directories named `<prefix>XXXXXX`, all removed by the hook it registers with `after`
 * (a uvu suite's `after`): `const tempDir = tempDirs('sluice-outbox-', test.after);`.
 */
export function tempDirs(prefix: string, after: (hook: () => void) => void): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs.splice(0)) removeTempDir(dir);
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
