// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatRate, MAX_RATE_BPS, MIN_RATE_BPS, parseRate } from '../../src/portal/rates.ts';

test('parseRate: tc units and MikroTik shorthands, decimal bits per second', () => {
  const ok = (t: string) => {
    const p = parseRate(t);
    assert.ok(p.ok, t);
    return (p as { bps: number }).bps;
  };
  assert.is(ok('2mbit'), 2_000_000);
  assert.is(ok('2M'), 2_000_000);
  assert.is(ok('1.5mbit'), 1_500_000);
  assert.is(ok('512kbit'), 512_000);
  assert.is(ok('512K'), 512_000);
  assert.is(ok('1gbit'), 1e9);
  assert.is(ok('2000000'), 2_000_000, 'a bare number is bit/s');
  assert.is(ok(' 8 Mbps '), 8_000_000);
  assert.is(ok(String(MIN_RATE_BPS)), MIN_RATE_BPS);
});

test('parseRate: garbage and out-of-range rates refused, never thrown', () => {
  for (const t of [
    '',
    'fast',
    '2MiB',
    '-2mbit',
    '0',
    '7999',
    '11gbit',
    '1e6',
    '2 mbit/s',
    '0x10mbit',
    String(MAX_RATE_BPS + 1),
    '1'.repeat(400),
  ]) {
    const p = parseRate(t);
    assert.not.ok(p.ok, t);
  }
});

test('formatRate reads back exactly', () => {
  for (const bps of [8_000, 512_000, 2_000_000, 1_500_000, 12_345, 1e9, 10e9]) {
    const p = parseRate(formatRate(bps));
    assert.ok(p.ok && p.bps === bps, `${bps} → ${formatRate(bps)}`);
  }
  assert.is(formatRate(2_000_000), '2mbit');
  assert.is(formatRate(1_500_000), '1500kbit');
});

test.run();
