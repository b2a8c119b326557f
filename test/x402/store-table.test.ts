// tier: fast
/**
 * x402.json (x402/store.ts) on storage/json-table: the table suite through the store's own methods, and the file the
 * code of 6ffb9b9 wrote (before the shared table) opens after the upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X402Store, type PurchaseRecord } from '../../src/x402/index.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const record = (n: number): PurchaseRecord => ({
  key: `0xfrom:0x${n.toString(16)}`,
  state: n % 2 ? 'settling' : 'applied',
  validBefore: '1900000000',
  at: 1_750_000_000_000 + n,
  network: 'eip155:84532',
  asset: '0xusdc',
  value: `${n}000`,
  mac: '02:00:00:00:00:01',
  plan: 'hour',
  metric: 'seconds',
  steps: '1',
  allotment: '3600',
  ...(n % 2 ? { request: { x402Version: 2 as const, paymentPayload: { n }, paymentRequirements: {} } } : {}),
});

jsonTableSuite<X402Store>('x402.json (x402 store)', {
  file: 'x402.json',
  open: (dir, atStart) => X402Store.open(dir, undefined, { atStart: atStart === true }),
  put: (store, n) => store.put(record(n)),
  get: (store, n) => store.get(record(n).key),
  delete: (store, n) => store.remove(record(n).key),
  damaged: { code: 'ERR_X402_STORE' },
});

const tempDir = tempDirs('sluice-x402-old-', test.after);

test('an x402.json written by the code of 6ffb9b9 opens after the upgrade', async () => {
  const dir = withOldFile(
    tempDir(),
    new URL('../storage/fixtures/6ffb9b9/tables/x402.json', import.meta.url).pathname,
    'x402.json',
  );
  const store = await X402Store.open(dir);
  assert.equal(
    store.list().map((r) => [r.key, r.state, r.request !== undefined]),
    [
      ['0xaa:0x01', 'applied', false],
      ['0xbb:0x02', 'settling', true],
    ],
  );
  assert.is(store.get('0xaa:0x01')!.payTo, '0xpay');
  assert.equal(store.get('0xbb:0x02')!.request, {
    x402Version: 2,
    paymentPayload: { p: 1 },
    paymentRequirements: { r: 1 },
  });
});

test.run();
