// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pricing, parseUnits } from '../../src/merchant/index.ts';
import { formatUnits } from '../../src/merchant/amount.ts';
import { quote } from '../../src/merchant/pricing.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import { thrownCode } from '../helpers/assert.ts';

const hourly: PricingPlan = {
  id: 'hourly',
  metric: 'seconds',
  stepSize: 3600n,
  pricePerStep: 500_000n,
  asset: 'USDC',
  currency: 'USD',
  decimals: 6,
  minSteps: 1n,
  maxSteps: 24n,
};
const data: PricingPlan = {
  id: 'data',
  metric: 'bytes',
  stepSize: 100n * 1024n * 1024n,
  pricePerStep: 10n ** 16n,
  asset: 'WETH',
  currency: 'ETH',
  decimals: 18,
  minSteps: 2n,
  maxSteps: 0n,
};
const free: PricingPlan = { ...hourly, id: 'free', stepSize: 900n, pricePerStep: 0n, minSteps: 1n, maxSteps: 1n };

test('amount = steps × price per step; allotment = steps × step size', () => {
  const q = quote(hourly, { steps: 3n });
  assert.equal(q, {
    plan: 'hourly',
    metric: 'seconds',
    steps: 3n,
    allotment: 10_800n,
    price: 1_500_000n,
    asset: 'USDC',
    currency: 'USD',
    decimals: 6,
    stepSize: 3600n,
    pricePerStep: 500_000n,
  });
  for (const steps of [1n, 7n, 24n]) {
    const byAmount = quote(hourly, { amount: (steps * 500_000n).toString() });
    assert.is(byAmount.steps, steps);
    assert.is(byAmount.price, steps * hourly.pricePerStep);
    assert.is(byAmount.allotment, steps * hourly.stepSize);
  }
  assert.is(quote(hourly, { steps: '5' }).steps, 5n);
  assert.is(quote(hourly, { steps: 5 }).steps, 5n);
  assert.is(quote(hourly, { amount: 1_000_000 }).steps, 2n);
  assert.is(quote(hourly).steps, 1n, 'neither amount nor steps quotes the minimum purchase');
  assert.is(quote(data).steps, 2n);
});

test('an amount between steps buys the whole steps it covers and is charged only for them', () => {
  const q = quote(hourly, { amount: '1499999' });
  assert.is(q.steps, 2n);
  assert.is(q.price, 1_000_000n);
  assert.ok(q.price <= 1_499_999n);
  assert.is(q.allotment, 7200n);
});

test('huge values stay exact in bigint', () => {
  const q = quote(data, { steps: 10n ** 9n });
  assert.is(q.price, 10n ** 25n);
  assert.is(q.allotment, 10n ** 9n * 104_857_600n);
  const huge: PricingPlan = { ...data, stepSize: 1n, pricePerStep: 3n };
  const big = quote(huge, { amount: (2n ** 81n).toString() });
  assert.is(big.steps, 2n ** 81n / 3n);
  assert.ok(big.price <= 2n ** 81n && 2n ** 81n - big.price < 3n);
  assert.is(big.allotment, big.steps);
});

test('each error has its code', () => {
  assert.is(
    thrownCode(() => quote(hourly, { amount: '499999' })),
    'ERR_AMOUNT_TOO_SMALL',
  );
  assert.is(
    thrownCode(() => quote(hourly, { steps: 0n })),
    'ERR_AMOUNT_TOO_SMALL',
  );
  assert.is(
    thrownCode(() => quote(data, { steps: 1n })),
    'ERR_AMOUNT_TOO_SMALL',
  );
  assert.is(
    thrownCode(() => quote(hourly, { steps: 25n })),
    'ERR_AMOUNT_TOO_LARGE',
  );
  assert.is(
    thrownCode(() => quote(hourly, { amount: (25n * 500_000n).toString() })),
    'ERR_AMOUNT_TOO_LARGE',
  );
  assert.is(
    thrownCode(() => quote(data, { amount: (2n ** 128n).toString() })),
    'ERR_AMOUNT_TOO_LARGE',
    'no cap configured: the allotment bound applies',
  );
  for (const amount of [
    '-1',
    '1.5',
    '1.',
    '.5',
    '',
    '   ',
    'abc',
    '1e6',
    '0x10',
    '+5',
    '١٢',
    (2n ** 128n + 1n).toString(),
    '9'.repeat(100),
  ]) {
    assert.is(
      thrownCode(() => quote(hourly, { amount })),
      'ERR_INVALID_AMOUNT',
      `amount ${JSON.stringify(amount)}`,
    );
  }
  for (const amount of [-1n, -1, 1.5, Number.NaN, Infinity, 2 ** 60, {} as never, [] as never, true as never]) {
    assert.is(
      thrownCode(() => quote(hourly, { amount })),
      'ERR_INVALID_AMOUNT',
      `amount ${String(amount)}`,
    );
  }
  assert.is(
    thrownCode(() => quote(hourly, { steps: '-3' })),
    'ERR_INVALID_AMOUNT',
  );
  assert.is(
    thrownCode(() => quote(hourly, { amount: '500000', steps: 1n })),
    'ERR_INVALID_AMOUNT',
  );
  const pricing = new Pricing([hourly, data]);
  assert.is(
    thrownCode(() => pricing.quote('monthly')),
    'ERR_UNKNOWN_PLAN',
  );
  assert.is(
    thrownCode(() => new Pricing([]).quote(undefined)),
    'ERR_UNKNOWN_PLAN',
  );
  assert.is(
    thrownCode(() => quote({ ...hourly, stepSize: 0n })),
    'ERR_PLAN_INVALID',
  );
});

test('plans are selected by id, the first is the default', () => {
  const pricing = new Pricing([hourly, data]);
  assert.is(pricing.quote(undefined).plan, 'hourly');
  assert.is(pricing.quote('').plan, 'hourly');
  assert.is(pricing.quote('data', { steps: 3n }).metric, 'bytes');
  pricing.setPlans([data]);
  assert.is(pricing.quote(null).plan, 'data');
});

test('free plans quote by steps at price 0 and refuse an amount', () => {
  const q = quote(free, { steps: 1n });
  assert.is(q.price, 0n);
  assert.is(q.allotment, 900n);
  assert.is(quote(free).price, 0n);
  assert.is(
    thrownCode(() => quote(free, { amount: '0' })),
    'ERR_INVALID_AMOUNT',
  );
});

test('parseUnits and formatUnits', () => {
  assert.is(parseUnits('0001500000'), 1_500_000n);
  assert.is(parseUnits(' 42 '), 42n);
  assert.is(parseUnits((2n ** 128n).toString()), 2n ** 128n);
  assert.is(formatUnits(1_500_000n, 6), '1.5');
  assert.is(formatUnits(1n, 6), '0.000001');
  assert.is(formatUnits(10n ** 18n, 18), '1');
  assert.is(formatUnits(42n, 0), '42');
});

test.run();
