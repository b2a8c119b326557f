import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Merchant, MAX_GRANT_BYTES, MAX_GRANT_SECONDS, Pricing } from '../../src/merchant/index.ts';
import { PaymentRegistry, createPaymentRegistry } from '../../src/payments/index.ts';
import type { PaymentMethod } from '../../src/payments/index.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import { SluiceError } from '../../src/errors.ts';
import { setup } from '../sessions/helpers.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

const hourly: PricingPlan = {
  id: 'hourly', metric: 'seconds', stepSize: 3600n, pricePerStep: 500_000n, asset: 'USDC', currency: 'USD', decimals: 6, minSteps: 1n, maxSteps: 24n,
};
const data: PricingPlan = {
  id: 'data', metric: 'bytes', stepSize: 1_000_000n, pricePerStep: 1000n, asset: 'USDC', currency: 'USD', decimals: 6, minSteps: 1n, maxSteps: 1000n,
};

/** A stand-in for a paying method (x402 later): collects what it is told to, can fail or short-change on demand. */
function fakeCash(behaviour: { fail?: string; shortBy?: bigint } = {}) {
  const calls: string[] = [];
  const released: string[] = [];
  let n = 0;
  const method: PaymentMethod = {
    name: 'cash',
    adminOnly: false,
    async authorize({ quote, request, now }) {
      calls.push(String(request.payment['token']));
      if (behaviour.fail) throw new SluiceError(behaviour.fail, 'declined');
      return { method: 'cash', reference: `tx-${++n}`, amount: quote.price - (behaviour.shortBy ?? 0n), asset: quote.asset, at: now };
    },
    async release(ref) {
      released.push(ref.reference);
    },
  };
  return { method, calls, released };
}

async function make(behaviour: Parameters<typeof fakeCash>[0] = {}) {
  const env = await setup();
  const cash = fakeCash(behaviour);
  const payments = createPaymentRegistry([cash.method]);
  const merchant = new Merchant({ pricing: new Pricing([hourly, data]), sessions: env.manager, payments, now: () => env.time.now() });
  return { ...env, cash, merchant };
}


test('purchase: quote → authorize → session; receipt says what was paid and granted', async () => {
  const { merchant, cash, manager, events } = await make();
  const r = await merchant.purchase({ mac: 'AA:BB:CC:00:00:01', ip: '10.0.0.5', amount: '1200000', payment: { method: 'cash', token: 't1' } });
  assert.is(r.quote!.steps, 2n);
  assert.is(r.quote!.price, 1_000_000n);
  assert.is(r.session.allotment, 7200n);
  assert.is(r.session.state, 'ACTIVE');
  assert.is(r.session.ip, '10.0.0.5');
  assert.is(r.session.plan, 'hourly');
  assert.not.ok(r.toppedUp);
  assert.equal(cash.calls, ['t1']);
  assert.is(r.receipt.paid, 1_000_000n);
  assert.is(r.receipt.reference, 'tx-1');
  assert.is(r.receipt.allotment, 7200n);
  assert.is(r.session.payments[0]!.steps, 2n);
  assert.equal(events.started, [r.session.id]);
  const again = await merchant.purchase({ mac: 'aa:bb:cc:00:00:01', steps: 1n, payment: { method: 'cash', token: 't2' } });
  assert.ok(again.toppedUp);
  assert.is(again.receipt.allotment, 3600n);
  assert.is(again.receipt.totalAllotment, 10_800n);
  assert.is(manager.list().length, 1);
  await manager.close();
});

test('nothing is granted (and no money asked) when checks fail before payment', async () => {
  const { merchant, cash, manager } = await make();
  await rejectsWithCode(merchant.purchase({ mac: 'zz', payment: { method: 'cash' } }), 'ERR_INVALID_MAC');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', plan: 'nope', payment: { method: 'cash' } }), 'ERR_UNKNOWN_PLAN');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', amount: '1', payment: { method: 'cash' } }), 'ERR_AMOUNT_TOO_SMALL');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', amount: 'lots', payment: { method: 'cash' } }), 'ERR_INVALID_AMOUNT');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'bitcoin' } }), 'ERR_UNKNOWN_PAYMENT_METHOD');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: null as never }), 'ERR_UNKNOWN_PAYMENT_METHOD');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'grant' } }), 'ERR_PAYMENT_METHOD_ADMIN_ONLY');
  // A bad ip or user used to be found only after the payment method had collected (and was never released).
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', ip: 42 as never, payment: { method: 'cash' } }), 'ERR_INVALID_ARGUMENT');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', user: {} as never, payment: { method: 'cash' } }), 'ERR_INVALID_ARGUMENT');
  await merchant.purchase({ mac: '02:00:00:00:00:02', plan: 'data', payment: { method: 'cash' }, idempotencyKey: 'k1' });
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:02', plan: 'hourly', payment: { method: 'cash' } }), 'ERR_SESSION_METRIC_MISMATCH');
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:03', payment: { method: 'cash' }, idempotencyKey: 'k1' }), 'ERR_PAYMENT_REPLAYED');
  assert.is(cash.calls.length, 1, 'only the one good purchase reached the payment method');
  assert.is(manager.list().length, 1);
  await manager.close();
});

test('a failing payment method propagates its code and grants nothing', async () => {
  const { merchant, manager, events } = await make({ fail: 'ERR_X402_SIGNATURE' });
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }), 'ERR_X402_SIGNATURE');
  assert.is(manager.list().length, 0);
  assert.equal(events.started, []);
  await manager.close();
});

test('a method that collects less than the price is refused and released', async () => {
  const { merchant, manager, cash } = await make({ shortBy: 1n });
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }), 'ERR_PAYMENT_INSUFFICIENT');
  assert.equal(cash.released, ['tx-1']);
  assert.is(manager.list().length, 0);
  await manager.close();
});

test('a grant that fails after payment asks the method to release it', async () => {
  const { merchant, manager, cash } = await make();
  await manager.close();
  await rejectsWithCode(merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }), 'ERR_SESSIONS_CLOSED');
  assert.equal(cash.released, ['tx-1']);
});

test('admin grant: seconds or bytes straight to a MAC, bounded, through the same session path', async () => {
  const { merchant, manager } = await make();
  const t = await merchant.grant({ mac: '02:00:00:00:00:01', seconds: 3600 });
  assert.is(t.session.metric, 'seconds');
  assert.is(t.session.allotment, 3600n);
  assert.is(t.receipt.method, 'grant');
  assert.match(t.receipt.reference, /^grant-[0-9a-f]{16}$/);
  assert.is(t.receipt.paid, 0n);
  const d = await merchant.grant({ mac: '02:00:00:00:00:02', bytes: '1073741824', user: 'eve' });
  assert.is(d.session.allotment, 1n << 30n);
  assert.is(d.session.user, 'eve');
  const top = await merchant.grant({ mac: '02:00:00:00:00:01', seconds: 60n });
  assert.ok(top.toppedUp);
  assert.is(top.session.allotment, 3660n);
  for (const bad of [
    {}, { seconds: 0 }, { seconds: -5 }, { seconds: 1.5 }, { seconds: 'soon' }, { seconds: 10, bytes: 10 },
    { seconds: MAX_GRANT_SECONDS + 1n }, { bytes: MAX_GRANT_BYTES + 1n }, { bytes: '' },
  ]) {
    await rejectsWithCode(merchant.grant({ mac: '02:00:00:00:00:09', ...bad }), 'ERR_INVALID_AMOUNT');
  }
  assert.ok(await merchant.grant({ mac: '02:00:00:00:00:08', bytes: MAX_GRANT_BYTES }));
  await rejectsWithCode(merchant.grant({ mac: 'nope', seconds: 1 }), 'ERR_INVALID_MAC');
  await rejectsWithCode(merchant.grant({ mac: '02:00:00:00:00:02', seconds: 1 }), 'ERR_SESSION_METRIC_MISMATCH');
  await manager.close();
});

test('the admin may also purchase through the grant method on a plan', async () => {
  const { merchant, manager } = await make();
  const r = await merchant.purchase({ mac: '02:00:00:00:00:01', plan: 'data', steps: 5n, payment: { method: 'grant' } }, { admin: true });
  assert.is(r.session.allotment, 5_000_000n);
  assert.is(r.receipt.paid, 0n);
  assert.is(r.receipt.method, 'grant');
  await manager.close();
});

test('merchant quote delegates to pricing', async () => {
  const { merchant, manager } = await make();
  assert.is(merchant.quote('data', { amount: '2500' }).steps, 2n);
  assert.is(merchant.quote().plan, 'hourly');
  assert.ok(new PaymentRegistry().list().length === 0);
  await manager.close();
});

test.run();
