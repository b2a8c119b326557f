// tier: fast
/**
 * A plan's `devices` (several devices per purchase): 1 … 16, default 1 (absent from the plan: the single-device
 * rules); a bad value is a problem naming `pricing[<id>].devices` and leaves the plan out. The quote carries it to the
 * grant, so the session sold takes that many devices.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { quote } from '../../src/merchant/pricing.ts';

const plan = (devices?: string) =>
  `config pricing 'family'\n\toption metric 'bytes'\n\toption price_per_step ` +
  `'1'\n${devices === undefined ? '' : `\toption devices '${devices}'\n`}`;

test('devices: absent or 1 is a single-device plan; 2 … 16 is kept; 0, 17 and text are refused', () => {
  assert.is(configFromUciPartial(parseUci(plan())).config.pricing[0]!.devices, undefined);
  assert.is(configFromUciPartial(parseUci(plan('1'))).config.pricing[0]!.devices, undefined);
  const three = configFromUciPartial(parseUci(plan('3')));
  assert.equal(three.problems, []);
  assert.is(three.config.pricing[0]!.devices, 3);
  assert.is(quote(three.config.pricing[0]!, { steps: 1n }).devices, 3, 'the quote carries it to the grant');
  for (const bad of ['0', '17', 'two']) {
    const r = configFromUciPartial(parseUci(plan(bad)));
    assert.ok(
      r.problems.some((p) => p.path === 'pricing[family].devices' && p.value === bad),
      bad,
    );
  }
});

test.run();
