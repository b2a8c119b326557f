// tier: fast
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { storeSuite } from './store-suite.ts';

storeSuite('JournalStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-journal-'));
  return {
    open: (retention) => new JournalStore(retention ? { dir, retention } : { dir }),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
