// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PaymentRegistry, createPaymentRegistry } from '../../src/payments/index.ts';
import { builtinPaymentMethods } from '../../src/payments/builtin.ts';
import { grantMethod } from '../../src/payments/grant/grant.ts';
import type { PaymentMethod } from '../../src/payments/index.ts';
import type { Quote } from '../../src/merchant/index.ts';
import { thrownCode } from '../helpers/assert.ts';

const quote: Quote = {
  plan: 'p',
  metric: 'seconds',
  steps: 2n,
  allotment: 120n,
  price: 10n,
  asset: 'USDC',
  currency: 'USD',
  decimals: 6,
  stepSize: 60n,
  pricePerStep: 5n,
};

test('the builtin registry has the admin-only grant method', () => {
  const registry = createPaymentRegistry();
  assert.equal(registry.list(), [{ name: 'grant', adminOnly: true }]);
  assert.is(registry.get('grant'), grantMethod);
  assert.equal(
    builtinPaymentMethods().map((m) => m.name),
    ['grant'],
  );
});

test('unknown names, duplicates and bad names are refused with codes', () => {
  const registry = createPaymentRegistry();
  assert.is(
    thrownCode(() => registry.get('x402')),
    'ERR_UNKNOWN_PAYMENT_METHOD',
  );
  assert.is(
    thrownCode(() => registry.get(undefined)),
    'ERR_UNKNOWN_PAYMENT_METHOD',
  );
  assert.is(
    thrownCode(() => registry.get('__proto__')),
    'ERR_UNKNOWN_PAYMENT_METHOD',
  );
  assert.is(
    thrownCode(() => registry.register(grantMethod)),
    'ERR_PAYMENT_METHOD_INVALID',
  );
  assert.is(
    thrownCode(() => new PaymentRegistry([{ ...grantMethod, name: 'Bad Name' }])),
    'ERR_PAYMENT_METHOD_INVALID',
  );
});

test('adding a method is one object: it is then found by name', () => {
  const voucher: PaymentMethod = {
    name: 'voucher',
    adminOnly: false,
    async authorize({ quote: q, now }) {
      return { method: 'voucher', reference: 'V-1', amount: q.price, asset: q.asset, at: now };
    },
  };
  const registry = createPaymentRegistry([voucher]);
  assert.is(registry.get('voucher'), voucher);
  assert.ok(registry.has('grant'));
  // The refusal a customer reads names the ways to pay; the admin-only grant is named apart.
  try {
    registry.get('x402');
    assert.unreachable('x402 is not registered');
  } catch (err) {
    const e = err as { message: string; details?: Record<string, unknown> };
    assert.match(e.message, /purchases accept: voucher \(admin only: grant\)$/);
    assert.equal(e.details, { accepted: ['voucher'], admin_only: ['grant'] });
  }
});

test('grant authorizes for nothing with a fresh reference each time', async () => {
  const request = { mac: '02:00:00:00:00:01', payment: { method: 'grant' } };
  const a = await grantMethod.authorize({ quote, request, now: 1234 });
  const b = await grantMethod.authorize({ quote, request, now: 1234 });
  assert.is(a.method, 'grant');
  assert.is(a.amount, 0n);
  assert.is(a.steps, 2n);
  assert.is(a.at, 1234);
  assert.is.not(a.reference, b.reference);
});

test.run();
