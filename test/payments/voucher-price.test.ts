// tier: fast
// Printed vouchers sold for cash (docs/vouchers.md "Price"): a batch may carry a price (amount in the currency's
// smallest unit, currency, decimals); a redeemed code's payment carries it (method voucher, asset the currency,
// reference the batch), so `sales` counts it like any other payment; a batch without a price stays 0; revoked and
// unsold codes are never revenue; a book written before prices existed still loads. Fake time, the real plugin,
// merchant and session manager (voucher-rig.ts); the sales reply the ubus method sends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { salesReply } from '../../src/api/sales.ts';
import { LEGACY_VOUCHERS_FILE, VoucherStore, VOUCHERS_FILE } from '../../src/payments/local-voucher/store.ts';
import { sealOf, sealPath, writeSeal } from '../../src/storage/index.ts';
import { codeOf, rig } from './voucher-rig.ts';

test('a priced batch: a redeemed code pays its price in its currency; revoked and unsold codes none', async () => {
  const r = await rig();
  const priced = await r.book.create({
    plan: 'hour',
    count: 3n,
    steps: 2n,
    note: 'counter',
    price: 250n,
    currency: 'EUR',
  });
  assert.equal(priced.price, { amount: '250', currency: 'EUR', decimals: 2 });
  const free = await r.book.create({ plan: 'hour', count: 1n, steps: 1n });
  assert.is(free.price, null);
  const revoked = await r.book.create({ plan: 'hour', count: 1n, steps: 1n, price: 400n, currency: 'EUR' });
  const [a] = priced.codes as string[];
  const sold = await r.redeem('02:00:00:00:2a:01', a!);
  assert.equal(
    [sold.receipt.method, sold.receipt.paid, sold.receipt.asset],
    ['voucher', 250n, 'EUR'],
    "the sale's payment carries the batch's price",
  );
  assert.match(sold.receipt.reference, new RegExp(`^${priced.batch}/[0-9a-f]{32}$`), 'and names the batch');
  await r.redeem('02:00:00:00:2a:02', (free.codes as string[])[0]!);
  await r.book.revoke(revoked.batch as string);
  const refused = await codeOf(r.redeem('02:00:00:00:2a:03', (revoked.codes as string[])[0]!));
  assert.is(refused.details?.reason, 'revoked');
  const sales = salesReply(r.manager.salesBook, 0, r.time.now() + 1);
  assert.equal(
    sales.totals.filter((t) => t.method === 'voucher'),
    [
      { method: 'voucher', asset: '', amount: '0', payments: 1 },
      { method: 'voucher', asset: 'EUR', amount: '250', payments: 1 },
    ],
    'one sold ticket of 2.50 EUR; the unpriced one 0; the revoked and the two unsold nothing',
  );
  const rows = r.book.list().batches as Array<Record<string, unknown>>;
  assert.equal(
    rows.map((b) => b.price),
    [{ amount: '400', currency: 'EUR', decimals: 2 }, null, { amount: '250', currency: 'EUR', decimals: 2 }],
  );
  // The price is on flash with the batch: the book read again sells at the same price.
  const again = await rig(r.dir);
  const [, b] = priced.codes as string[];
  assert.equal((await again.redeem('02:00:00:00:2a:04', b!)).receipt.paid, 250n);
  await again.close();
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test('voucher_create refuses a price without a currency, a currency without a price, a bad currency', async () => {
  const r = await rig();
  for (const args of [
    { price: 250n },
    { currency: 'EUR' },
    { price: 250n, currency: 'E U R' },
    { price: 250n, currency: 'EUR', decimals: 19n },
  ]) {
    const e = await codeOf(r.book.create({ plan: 'hour', count: 1n, steps: 1n, ...args }));
    assert.is(
      e.code,
      'ERR_INVALID_ARGUMENT',
      JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? `${v}` : v)),
    );
  }
  assert.is((r.book.list().batches as unknown[]).length, 0, 'nothing printed');
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test('a book written before batches had prices (vouchers.json) loads, its batches unpriced (0, as sold)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lv-old-'));
  // As an earlier release wrote it: no `price` on the batch.
  const r0 = await rig(dir);
  const made = await r0.book.create({ plan: 'hour', count: 1n, steps: 1n });
  await r0.close();
  const old = {
    version: 1,
    batches: [
      {
        id: made.batch,
        plan: 'hour',
        metric: 'seconds',
        steps: '1',
        allotment: '3600',
        count: 1,
        created: 1764061200000,
        expires: null,
        note: '',
        revoked: null,
        used: 0,
      },
    ],
    codes: Object.fromEntries([[VoucherStore.open(dir).find((made.codes as string[])[0]!)!.hash, { b: made.batch }]]),
  };
  const text = JSON.stringify(old);
  const legacy = join(dir, LEGACY_VOUCHERS_FILE);
  writeFileSync(legacy, text);
  await writeSeal(sealPath(legacy), [sealOf(Buffer.from(text))]);
  for (const f of [VOUCHERS_FILE, `${VOUCHERS_FILE}.seal`]) rmSync(join(dir, f));
  const r = await rig(dir);
  const sold = await r.redeem('02:00:00:00:2b:01', (made.codes as string[])[0]!);
  assert.equal([sold.receipt.paid, sold.receipt.asset], [0n, '']);
  assert.is((r.book.list().batches as Array<Record<string, unknown>>)[0]!.price, null);
  await r.close();
  // Its first change wrote it as a log: the old file and its seal are gone, the sale kept.
  assert.equal(
    [existsSync(legacy), existsSync(sealPath(legacy)), existsSync(join(dir, VOUCHERS_FILE))],
    [false, false, true],
  );
  assert.ok(VoucherStore.open(dir).find((made.codes as string[])[0]!)!.used, 'the sale read back from the log');
  rmSync(dir, { recursive: true, force: true });
});

test.run();
