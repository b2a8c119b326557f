// tier: fast
/**
 * The Cashu ledger's reads at the daemon's start (the custody directory, the operator's accept file, the seal, the
 * ledger) are synchronous (payments/cashu/store.ts OpenReads says why): they take no request of the thread pool, each
 * of which is a hop there and back for every mkdir, stat, open, read and close. A whole ledger's open writes nothing
 * (storage/sealed-log.ts opens the file for appending at the first change), so it asks nothing of the pool; a
 * reload's open keeps every read on the pool. Counted by async_hooks: a count, not a time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { tempDirs } from '../helpers/temp.ts';
import { poolRequests } from '../helpers/pool-requests.ts';

const tempDir = tempDirs('sluice-ledger-reads-', test.after);
const MINT = 'https://mint.example';

async function ledgerDir(): Promise<string> {
  const dir = tempDir();
  const store = await CashuStore.open(dir);
  for (let n = 1; n <= 3; n++)
    await store.addProofs(
      MINT,
      [{ id: '00ad268c4d1f5826', amount: n, secret: `${n}`.padStart(64, 'a'), C: '02' }],
      't',
    );
  await store.close();
  return dir;
}

test("the start's open reads the ledger, its seal and its directory without the thread pool", async () => {
  const dir = await ledgerDir();
  let store: CashuStore | undefined;
  const n = await poolRequests(async () => (store = await CashuStore.open(dir, { atStart: true })));
  assert.is(store?.total(), 6n, 'read back whole');
  await store?.close();
  assert.is(n, 0, 'no request: nothing is written, and the ledger is opened for appending at its first change');
});

test("a reload's open reads on the thread pool", async () => {
  const dir = await ledgerDir();
  const n = await poolRequests(async () => {
    const store = await CashuStore.open(dir);
    await store.close();
  });
  assert.ok(n > 5, `${n} requests`);
});

test.run();
