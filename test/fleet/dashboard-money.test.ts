// tier: fast
/**
 * Amounts in their asset's own unit (fleet/dashboard/money.ts): exact decimal text from the smallest unit (no float,
 * 18 decimals and 78 digits included), the unit only where every router that prices an asset agrees on its name and
 * decimals, and otherwise the smallest unit, labelled as such.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decimalText, money, unitsOf } from '../../src/fleet/dashboard/money.ts';
import { revenueTable, totalsTable } from '../../src/fleet/dashboard/views.ts';

test('decimal text is exact: 6 and 18 decimals, 78 digits, thousands grouped', () => {
  assert.is(decimalText('30250000', 6), '30.25');
  assert.is(decimalText('25000', 0), '25,000');
  assert.is(decimalText('1', 18), '0.000000000000000001');
  assert.is(decimalText('1234567890123456789012', 18), '1,234.567890123456789012');
  const big = '9'.repeat(78);
  assert.is(decimalText(big, 0).replace(/,/g, ''), big);
  assert.is(decimalText('0', 6), '0');
  assert.is(decimalText('1000000', 6), '1');
});

test("an asset's unit only where the routers' pricing agrees; otherwise the smallest unit, said", () => {
  const units = unitsOf([
    { asset: 'USDC', currency: 'USDC', decimals: 6 },
    { asset: 'USDC', currency: 'USDC', decimals: '6' },
    { asset: 'sat', currency: 'sat', decimals: 0 },
    { asset: 'ETH', currency: 'ETH', decimals: 18 },
    { asset: 'ETH', currency: 'ETH', decimals: 9 },
    { asset: 'bad', currency: 'X', decimals: 99 },
  ]);
  assert.is(money('30250000', 'USDC', units), '30.25 USDC');
  assert.is(money('25000', 'sat', units), '25,000 sat');
  assert.is(money('5', 'ETH', units), '5 ETH (smallest unit)', 'two routers disagree: not guessed');
  assert.is(money('5', 'bad', units), '5 bad (smallest unit)');
  assert.is(money('7', 'EUR', units), '7 EUR (smallest unit)', 'no router prices it');
  assert.is(money('7', '', units), '7 (no asset) (smallest unit)');
});

test('the revenue tables show the unit and keep the smallest unit beside it (the CSV has both)', () => {
  const units = unitsOf([{ asset: 'USDC', currency: 'USDC', decimals: 6 }]);
  const t = revenueTable(
    [{ day: '2026-11-27', router: 'r1', method: 'x402', asset: 'USDC', payments: '2', amount: '30250000' }],
    units,
    'UTC',
  );
  assert.equal(t.rows[0], ['2026-11-27', 'r1', 'x402', 'USDC', '2', '30.25 USDC', '30250000']);
  const totals = totalsTable([{ key: 'cashu', asset: 'sat', payments: '1', amount: '2100' }], 'method', units);
  assert.equal(totals.rows[0], ['cashu', 'sat', '1', '2,100 sat (smallest unit)', '2100']);
});

test.run();
