// tier: daemon
/**
 * On a real full filesystem (a small tmpfs; CI runs as root): "after a journal write failure, ended
 * sessions come back". An end that cannot be written keeps the session ended in memory and is retried; the journal
 * recovers by itself once space returns (new grants accepted again without a restart); stats say so meanwhile; after
 * a restart every session that was ended stays ended.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { Grant } from '../../src/sessions/grant.ts';
import { SluiceError } from '../../src/errors.ts';
import { until } from '../helpers/until.ts';

const mount = mkdtempSync(join(tmpdir(), 'sluice-enospc-'));
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mount], { stdio: 'ignore' });
  mounted = true;
} catch {
  // Not root (a developer's machine): the test below says so instead of passing silently.
}

function grant(i: number): Grant {
  return {
    mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    metric: 'seconds',
    allotment: 3600n,
    payment: { method: 'test', reference: `ref-${i}`, amount: 1n, asset: 'USDC', at: Date.now() },
  };
}

/** Fills the filesystem with a file until write() says ENOSPC. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 0x55);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

test(
  'journal write failure (ENOSPC): ended sessions stay ended, ends are retried, the journal recovers when space ' +
    'returns',
  async () => {
    assert.ok(mounted, 'needs root to mount a small tmpfs (CI runs as root)');
    const dir = join(mount, 'state');
    const store = new JournalStore({ dir });
    const manager = new SessionManager({ store, endRetryMs: 100 });
    const warnings: string[] = [];
    manager.on('warning', (e) => warnings.push(e.code));
    await manager.recover();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await manager.activate(grant(i))).session.id);

    const filler = join(mount, 'filler');
    fill(filler);
    // Ends while the disk is full: each is TERMINATED at once in memory; some cannot be written.
    const ended = ids.slice(0, 50);
    for (const id of ended) assert.is((await manager.end(id, 'admin'))!.state, 'TERMINATED');
    for (const id of ended) assert.is(manager.get(id)!.state, 'TERMINATED', 'ended in memory, gate stays closed');
    assert.ok(manager.stats().unwrittenEnds > 0, 'some ends could not be written (the test filled the disk)');
    assert.ok(store.stats().failing !== null, 'stats show the journal is failing');
    assert.ok(store.stats().writeFailures > 0);
    let refused: unknown;
    try {
      await manager.activate(grant(100));
    } catch (err) {
      refused = err;
    }
    assert.is(
      (refused as SluiceError).code,
      'ERR_JOURNAL_WRITE',
      'a new purchase is refused while nothing can be written',
    );
    assert.is(manager.byMac(grant(100).mac), null);

    rmSync(filler);
    await until(() => manager.stats().unwrittenEnds === 0, 20_000, 'the ends to be written after space returned', 50);
    await until(() => store.stats().failing === null, 20_000, 'the journal to recover', 50);
    assert.ok(store.stats().recoveries >= 1);
    const after = await manager.activate(grant(101));
    assert.is(after.session.state, 'ACTIVE', 'purchases accepted again without a restart');
    await manager.close();

    // A restart: every end stays ended, every acknowledged purchase is there.
    const again = await SessionManager.open({ store: new JournalStore({ dir }) });
    for (const id of ended) assert.is(again.get(id)?.state, 'TERMINATED', `session ${id} came back after a restart`);
    for (const id of ids.slice(50)) assert.is(again.get(id)?.state, 'ACTIVE');
    assert.is(again.byMac(grant(101).mac)?.state, 'ACTIVE');
    assert.is(again.byMac(grant(100).mac), null);
    await again.close();
    console.log(
      `enospc: ${ended.length} ends while full, write failures ${store.stats().writeFailures}, ` +
        `recoveries ${store.stats().recoveries}`,
    );
  },
);

test.after(() => {
  if (mounted) execFileSync('umount', [mount], { stdio: 'ignore' });
  rmSync(mount, { recursive: true, force: true });
});

test.run();
