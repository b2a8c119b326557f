// tier: fast
/** paymentOf: the one check of a purchase's payment table before the merchant, which trusts its types. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { paymentOf } from '../../src/api/index.ts';
import { SluiceError } from '../../src/errors.ts';

function refusal(table: Record<string, unknown>): { code: string; message: string } | undefined {
  try {
    paymentOf(table);
  } catch (err) {
    assert.ok(err instanceof SluiceError);
    return { code: err.code, message: err.message };
  }
  return undefined;
}

test('payment.method must be a string (the registry names an unknown one)', () => {
  for (const method of [undefined, null, 42, {}, ['cash']]) {
    assert.equal(
      refusal({ method }),
      { code: 'ERR_UNKNOWN_PAYMENT_METHOD', message: 'payment.method must name a payment method' },
      String(method),
    );
  }
});

test(
  'idempotency_key: a string becomes the request key; null and empty are not given; any other type is refused, ' +
    'never ignored',
  () => {
    assert.equal(paymentOf({ method: 'cash', token: 't', idempotency_key: 'k1' }), {
      payment: { method: 'cash', token: 't', idempotency_key: 'k1' },
      idempotencyKey: 'k1',
    });
    for (const key of [undefined, null, ''])
      assert.not.ok('idempotencyKey' in paymentOf({ method: 'cash', idempotency_key: key }), String(key));
    for (const key of [12345, { k: 1 }, true, ['k']]) {
      assert.equal(
        refusal({ method: 'cash', idempotency_key: key }),
        { code: 'ERR_INVALID_ARGUMENT', message: 'idempotency_key must be a string' },
        JSON.stringify(key),
      );
    }
    assert.is(
      refusal({ method: 42, idempotency_key: 7 })?.code,
      'ERR_UNKNOWN_PAYMENT_METHOD',
      'the method is checked first, as before',
    );
  },
);

test.run();
