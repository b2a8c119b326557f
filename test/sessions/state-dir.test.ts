// tier: daemon
/**
 * An unusable `main.state_dir` at start. Under /proc the daemon used to spin at 80% CPU with no log
 * line; EISDIR/ENOTDIR/EROFS came out as ERR_INTERNAL. Each is now ERR_STATE_DIR with the errno, at once (the daemon
 * test in test/daemon/single-instance.test.ts shows the exit 1).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { isSluiceError } from '../../src/errors.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-statedir-', test.after);

async function loadError(dir: string): Promise<{ code: string; errno: unknown }> {
  const store = new JournalStore({ dir });
  try {
    await store.load();
  } catch (err) {
    return {
      code: isSluiceError(err) ? err.code : String(err),
      errno: (err as { details?: { errno?: unknown } }).details?.errno,
    };
  } finally {
    await store.close();
  }
  return { code: 'started', errno: undefined };
}

test(
  'state_dir under /proc, a file, below a file, or /proc itself: ERR_STATE_DIR with the errno, not a spin or ' +
    'ERR_INTERNAL',
  async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    for (const dir of ['/proc/sluice-state', file, join(file, 'below'), '/proc', '/proc/self/fd/0']) {
      const { code, errno } = await loadError(dir);
      assert.is(code, 'ERR_STATE_DIR', dir);
      assert.type(errno, 'string', `${dir}: the errno is named`);
    }
  },
);

test('state_dir on a read-only filesystem (a tmpfs mounted ro; root only): ERR_STATE_DIR with EROFS', async () => {
  const mount = join(tempDir(), 'ro');
  mkdirSync(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', mount], { stdio: 'ignore' });
  } catch {
    console.log('skipped: cannot mount a tmpfs (not root)');
    return;
  }
  try {
    for (const dir of [mount, join(mount, 'state')]) {
      const { code, errno } = await loadError(dir);
      assert.is(code, 'ERR_STATE_DIR', dir);
      assert.is(errno, 'EROFS', dir);
    }
  } finally {
    execFileSync('umount', [mount]);
  }
});

test.run();
