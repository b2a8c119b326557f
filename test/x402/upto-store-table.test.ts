// tier: fast
/**
 * upto.json (x402/upto-store.ts) on storage/json-table: the table suite through the store's own methods, and the file
 * the code of 6ffb9b9 wrote (before the shared table) opens after the upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UptoStore, type UptoRecord } from '../../src/x402/index.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const record = (n: number): UptoRecord => ({
  reference: `0xpayer:${n}`,
  state: n % 2 ? 'open' : 'settled',
  network: 'eip155:84532',
  asset: '0xusdc',
  payTo: '0xpay',
  maxAmount: '500000',
  deadline: '1900000000',
  pricePerStep: '1000',
  stepSize: '1048576',
  mac: '02:00:00:00:00:03',
  at: 1_750_000_000_000 + n,
  ...(n % 2
    ? { request: { x402Version: 2 as const, paymentPayload: { n }, paymentRequirements: {} } }
    : { amount: '3000', transaction: '0xtx' }),
});

jsonTableSuite<UptoStore>('upto.json (upto store)', {
  file: 'upto.json',
  open: (dir, atStart) => UptoStore.open(dir, { atStart: atStart === true }),
  put: (store, n) => store.put(record(n)),
  get: (store, n) => store.get(record(n).reference),
  damaged: { code: 'ERR_UPTO_STORE' },
});

const tempDir = tempDirs('sluice-upto-old-', test.after);

test('an upto.json written by the code of 6ffb9b9 opens after the upgrade', async () => {
  const dir = withOldFile(
    tempDir(),
    new URL('../storage/fixtures/6ffb9b9/tables/upto.json', import.meta.url).pathname,
    'upto.json',
  );
  const store = await UptoStore.open(dir);
  assert.equal(
    store.list().map((r) => [r.reference, r.state, r.request !== undefined]),
    [
      ['0xcc:7', 'open', true],
      ['0xdd:8', 'settled', false],
    ],
  );
  assert.is(store.get('0xdd:8')!.covered, '3145728');
  assert.equal(store.list('open')[0]!.request, {
    x402Version: 2,
    paymentPayload: { p: 2 },
    paymentRequirements: { r: 2 },
  });
});

test.run();
