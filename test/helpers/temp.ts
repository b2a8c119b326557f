import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A maker of fresh temporary directories named `<prefix>XXXXXX`, all removed by the hook it registers with `after`
 * (a uvu suite's `after`): `const tempDir = tempDirs('sluice-outbox-', test.after);`.
 */
export function tempDirs(prefix: string, after: (hook: () => void) => void): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
