// tier: fast
/**
 * Joining the list brings the money rules: every payment method of payments/plugins.ts and the built-ins has a rig
 * for the PaymentMethod suite (method-rigs.ts), or is named in its PENDING_RIGS for the lead to empty. A method added
 * without one fails here, in the edit loop, before any chain tier runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { METHOD_RIGS, methodNames, PENDING_RIGS } from './method-rigs.ts';

for (const name of methodNames()) {
  test(`${name} has a behaviour rig`, () => {
    if (PENDING_RIGS.has(name)) {
      console.log(`# PaymentMethod suite: ${name} is pending its rig (method-rigs.ts PENDING_RIGS)`);
      return;
    }
    if (!METHOD_RIGS[name])
      assert.unreachable(`method ${name} joined the list without a behaviour rig (test/payments/method-rigs.ts)`);
  });
}

test('every rig and every pending entry names a method of the list (none left behind by a removed method)', () => {
  const names = new Set(methodNames());
  assert.equal(
    [...Object.keys(METHOD_RIGS), ...PENDING_RIGS].filter((n) => !names.has(n)),
    [],
  );
  assert.equal(
    [...PENDING_RIGS].filter((n) => METHOD_RIGS[n]),
    [],
    'a method with a rig is no longer pending',
  );
});

test.run();
