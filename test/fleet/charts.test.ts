// tier: fast
/** The revenue chart's axis: labels are amounts, exact in the asset's unit. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stackedBars } from '../../src/fleet/dashboard/charts.ts';

const axis = (svg: string): string[] => [...svg.matchAll(/text-anchor="end">([^<]*)</g)].map((m) => m[1]!);

test('an ETH chart of tiny amounts labels its axis in decimals, not in float exponents (5e-9)', () => {
  const eth = { unit: { name: 'ETH', decimals: 18 }, label: 'ETH' };
  const svg = stackedBars(
    'Revenue',
    ['2026-11-01', '2026-11-02'],
    [{ name: 'r1', values: [20_000_000_000n, 7n] }],
    eth,
  );
  assert.equal(axis(svg), ['0', '0.000000005', '0.00000001', '0.000000015', '0.00000002']);
});

test('axis labels: whole units, thousands shortened exactly, and the smallest unit where no unit is known', () => {
  const usdc = { unit: { name: 'USDC', decimals: 6 }, label: 'USDC' };
  const days = ['2026-11-01', '2026-11-02'];
  assert.equal(axis(stackedBars('R', days, [{ name: 'r', values: [30_250_000n, 0n] }], usdc)), [
    '0',
    '10',
    '20',
    '30',
    '40',
  ]);
  assert.equal(axis(stackedBars('R', days, [{ name: 'r', values: [56_000_000_000n, 1n] }], usdc)), [
    '0',
    '20k',
    '40k',
    '60k',
  ]);
  assert.equal(axis(stackedBars('R', days, [{ name: 'r', values: [5_500_000n, 1n] }], { unit: null, label: 'sat' })), [
    '0',
    '2M',
    '4M',
    '6M',
  ]);
  assert.equal(axis(stackedBars('R', days, [{ name: 'r', values: [0n, 0n] }], usdc)), ['0', '1']);
});

test.run();
