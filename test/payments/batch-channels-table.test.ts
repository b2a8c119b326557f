// tier: fast
/**
 * batch-channels.json (payments/batch-settlement/batch-channels.ts) on storage/json-table: the table suite through the
 * store's own methods, and the file the code of 6ffb9b9 wrote (escrow/batch-channels.ts then) opens after the upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchChannelStore, type ChannelRecord } from '../../src/payments/batch-settlement/batch-channels.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const config = {
  payer: '0xp',
  payerAuthorizer: '0xpa',
  receiver: '0xr',
  receiverAuthorizer: '0xra',
  token: '0xusdc',
  withdrawDelay: 900,
  salt: '0x00',
};
const channel = (n: number): ChannelRecord => ({
  channelId: `0xchan${n}`,
  network: 'eip155:84532',
  chainId: 84532,
  config,
  charged: BigInt(n),
  signedMax: 10n ** 30n,
  signature: '0xsig',
  balance: 5000n,
  totalClaimed: 0n,
  withdrawRequestedAt: 0,
  refundNonce: 0n,
  syncedAt: n,
  lastRequestAt: n,
  purchases: n,
});

jsonTableSuite<BatchChannelStore>('batch-channels.json (batch-settlement channels)', {
  file: 'batch-channels.json',
  open: (dir, atStart) => BatchChannelStore.open(dir, { atStart: atStart === true }),
  put: (store, n) => store.put(channel(n)),
  get: (store, n) => store.get(`0xchan${n}`),
  damaged: { code: 'ERR_BATCH_STORE' },
});

const tempDir = tempDirs('sluice-batch-old-', test.after);

test('a batch-channels.json written by the code of 6ffb9b9 opens after the upgrade, its intents with it', async () => {
  const dir = withOldFile(
    tempDir(),
    new URL('../storage/fixtures/6ffb9b9/tables/batch-channels.json', import.meta.url).pathname,
    'batch-channels.json',
  );
  const store = await BatchChannelStore.open(dir);
  const c = store.get('0xCHAN1')!;
  assert.equal(
    [c.charged, c.signedMax, c.balance, c.open?.limit, c.refund],
    [300n, 1000n, 5000n, 1000n, { state: 'requested', requestedAt: 1_750_000_007_000, amount: 4700n }],
  );
  assert.equal(
    store.intents().map((i) => [i.channelId, i.ceiling, i.mac]),
    [['0xchan2', 2000n, '02:00:00:00:00:08']],
  );
  // A write keeps the intent (it is the table's, beside the channels).
  await store.put({ ...c, charged: 400n });
  const again = await BatchChannelStore.open(dir);
  assert.is(again.get('0xchan1')!.charged, 400n);
  assert.is(again.intent('0xchan2')?.price, 2000n);
});

test.run();
