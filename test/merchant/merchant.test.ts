// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { MAX_GRANT_BYTES, MAX_GRANT_SECONDS } from '../../src/merchant/merchant.ts';
import { PaymentRegistry, createPaymentRegistry } from '../../src/payments/index.ts';
import type { PaymentMethod } from '../../src/payments/index.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import { SluiceError, type ErrorCode } from '../../src/errors.ts';
import { setup, useBytes } from '../sessions/helpers.ts';
import { rejectsWithCode, thrownCode } from '../helpers/assert.ts';

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
  stepSize: 1_000_000n,
  pricePerStep: 1000n,
  asset: 'USDC',
  currency: 'USD',
  decimals: 6,
  minSteps: 1n,
  maxSteps: 1000n,
};
/** 1 GB valid for a day. */
const dayPass: PricingPlan = { ...data, id: 'day-pass', stepSize: 1_000_000_000n, maxSteps: 10n, timeLimit: 86_400n };

/** A stand-in for a paying method (x402 later): collects what it is told to, can fail or short-change on demand. */
function fakeCash(behaviour: { fail?: ErrorCode; shortBy?: bigint } = {}) {
  const calls: string[] = [];
  const released: string[] = [];
  let n = 0;
  const method: PaymentMethod = {
    name: 'cash',
    adminOnly: false,
    async authorize({ quote, request, now }) {
      calls.push(String(request.payment['token']));
      if (behaviour.fail) throw new SluiceError(behaviour.fail, 'declined');
      return {
        method: 'cash',
        reference: `tx-${++n}`,
        amount: quote.price - (behaviour.shortBy ?? 0n),
        asset: quote.asset,
        at: now,
      };
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
  const merchant = new Merchant({
    pricing: new Pricing([hourly, data, dayPass]),
    sessions: env.manager,
    payments,
    clock: env.time,
  });
  return { ...env, cash, merchant };
}

test('purchase: quote → authorize → session; receipt says what was paid and granted', async () => {
  const { merchant, cash, manager, events } = await make();
  const r = await merchant.purchase({
    mac: 'AA:BB:CC:00:00:01',
    ip: '10.0.0.5',
    amount: 1200000n,
    payment: { method: 'cash', token: 't1' },
  });
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
  const again = await merchant.purchase({
    mac: 'aa:bb:cc:00:00:01',
    steps: 1n,
    payment: { method: 'cash', token: 't2' },
  });
  assert.ok(again.toppedUp);
  assert.is(again.receipt.allotment, 3600n);
  assert.is(again.receipt.totalAllotment, 10_800n);
  assert.is(manager.list().length, 1);
  await manager.close();
});

test('nothing is granted (and no money asked) when checks fail before payment', async () => {
  const { merchant, cash, manager } = await make();
  await rejectsWithCode(merchant.purchase({ mac: 'zz', payment: { method: 'cash' } }), 'ERR_INVALID_MAC');
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', plan: 'nope', payment: { method: 'cash' } }),
    'ERR_UNKNOWN_PLAN',
  );
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', amount: 1n, payment: { method: 'cash' } }),
    'ERR_AMOUNT_TOO_SMALL',
  );
  // A purchase's amount is a bigint by then (the API edge parsed it); a quote still parses text.
  assert.is(
    thrownCode(() => merchant.quote(undefined, { amount: 'lots' })),
    'ERR_INVALID_AMOUNT',
  );
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'bitcoin' } }),
    'ERR_UNKNOWN_PAYMENT_METHOD',
  );
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'grant' } }),
    'ERR_PAYMENT_METHOD_ADMIN_ONLY',
  );
  // A bad ip or user used to be found only after the payment method had collected (and was never released).
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', ip: 42 as never, payment: { method: 'cash' } }),
    'ERR_INVALID_ARGUMENT',
  );
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', user: {} as never, payment: { method: 'cash' } }),
    'ERR_INVALID_ARGUMENT',
  );
  await merchant.purchase({
    mac: '02:00:00:00:00:02',
    plan: 'data',
    payment: { method: 'cash' },
    idempotencyKey: 'k1',
  });
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:02', plan: 'hourly', payment: { method: 'cash' } }),
    'ERR_SESSION_METRIC_MISMATCH',
  );
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:03', payment: { method: 'cash' }, idempotencyKey: 'k1' }),
    'ERR_PAYMENT_REPLAYED',
  );
  assert.is(cash.calls.length, 1, 'only the one good purchase reached the payment method');
  assert.is(manager.list().length, 1);
  await manager.close();
});

test('a failing payment method propagates its code and grants nothing', async () => {
  const { merchant, manager, events } = await make({ fail: 'ERR_X402_SIGNATURE_INVALID' });
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }),
    'ERR_X402_SIGNATURE_INVALID',
  );
  assert.is(manager.list().length, 0);
  assert.equal(events.started, []);
  await manager.close();
});

test('a method that collects less than the price is refused and released', async () => {
  const { merchant, manager, cash } = await make({ shortBy: 1n });
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }),
    'ERR_PAYMENT_INSUFFICIENT',
  );
  assert.equal(cash.released, ['tx-1']);
  assert.is(manager.list().length, 0);
  await manager.close();
});

test('a grant whose journal write fails after payment asks the method to release it', async () => {
  const { merchant, manager, cash, store } = await make();
  store.append = async () => {
    throw new SluiceError('ERR_JOURNAL_WRITE', 'ENOSPC');
  };
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }),
    'ERR_JOURNAL_WRITE',
  );
  assert.equal(cash.released, ['tx-1']);
  assert.is(manager.list().length, 0);
});

test('a closed session manager refuses before the payment method is asked', async () => {
  const { merchant, manager, cash } = await make();
  await manager.close();
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' } }),
    'ERR_SESSIONS_CLOSED',
  );
  assert.equal(cash.calls, []);
  assert.equal(cash.released, []);
});

/** A method whose payment names its reference up front (like an x402 authorization's nonce): precheck announces it. */
function namedCash() {
  const log: string[] = [];
  const method: PaymentMethod = {
    name: 'named',
    adminOnly: false,
    precheck({ request }) {
      log.push(`precheck ${String(request.payment['ref'])}`);
      return { reference: String(request.payment['ref']) };
    },
    async authorize({ quote, request, now }) {
      log.push(`authorize ${String(request.payment['ref'])}`);
      await new Promise((r) => setTimeout(r, 5));
      return {
        method: 'named',
        reference: String(request.payment['ref']),
        amount: quote.price,
        asset: quote.asset,
        at: now,
      };
    },
    async release(ref) {
      log.push(`release ${ref.reference}`);
    },
  };
  return { method, log };
}

test(
  'a replayed payment reference is refused before authorize ' + 'and never releases the payment a session holds',
  async () => {
    const env = await setup();
    const named = namedCash();
    const merchant = new Merchant({
      pricing: new Pricing([hourly]),
      sessions: env.manager,
      payments: createPaymentRegistry([named.method]),
      clock: env.time,
    });
    const first = await merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'named', ref: 'r1' } });
    assert.is(first.session.state, 'ACTIVE');
    // 20 concurrent replays of the same reference for other MACs: once all, one after the other.
    const replays = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        merchant.purchase({
          mac: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`,
          payment: { method: 'named', ref: 'r1' },
        }),
      ),
    );
    assert.ok(
      replays.every((r) => r.status === 'rejected' && (r.reason as SluiceError).code === 'ERR_PAYMENT_REPLAYED'),
    );
    assert.equal(
      named.log.filter((l) => l.startsWith('authorize')),
      ['authorize r1'],
      'only the first purchase was authorized',
    );
    assert.equal(
      named.log.filter((l) => l.startsWith('release')),
      [],
      'nothing released',
    );
    assert.is(env.manager.get(first.session.id)!.state, 'ACTIVE');
    await env.manager.close();
  },
);

test('concurrent purchases announcing the same fresh reference: one authorize, the rest in progress', async () => {
  const env = await setup();
  const named = namedCash();
  const merchant = new Merchant({
    pricing: new Pricing([hourly]),
    sessions: env.manager,
    payments: createPaymentRegistry([named.method]),
    clock: env.time,
  });
  const all = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      merchant.purchase({
        mac: `02:00:00:00:02:${i.toString(16).padStart(2, '0')}`,
        payment: { method: 'named', ref: 'fresh' },
      }),
    ),
  );
  assert.is(all.filter((r) => r.status === 'fulfilled').length, 1);
  assert.ok(all.every((r) => r.status === 'fulfilled' || (r.reason as SluiceError).code === 'ERR_PAYMENT_IN_PROGRESS'));
  assert.equal(
    named.log.filter((l) => l.startsWith('authorize')),
    ['authorize fresh'],
  );
  assert.equal(
    named.log.filter((l) => l.startsWith('release')),
    [],
  );
  await env.manager.close();
});

test(
  'a replay found only after authorize (reference not ' + 'announced) is refused without releasing the held payment',
  async () => {
    const env = await setup();
    const released: string[] = [];
    const method: PaymentMethod = {
      name: 'late',
      adminOnly: false,
      async authorize({ quote, now }) {
        return { method: 'late', reference: 'same', amount: quote.price, asset: quote.asset, at: now };
      },
      async release(ref) {
        released.push(ref.reference);
      },
    };
    const merchant = new Merchant({
      pricing: new Pricing([hourly]),
      sessions: env.manager,
      payments: createPaymentRegistry([method]),
      clock: env.time,
    });
    await merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'late' } });
    await rejectsWithCode(
      merchant.purchase({ mac: '02:00:00:00:00:02', payment: { method: 'late' } }),
      'ERR_PAYMENT_REPLAYED',
    );
    assert.equal(released, []);
    await env.manager.close();
  },
);

test('checks that used to run after the money was collected now run before authorize', async () => {
  const { merchant, manager, cash, time } = await make();
  manager.configure({ limits: { maxSessions: 1 } });
  const bad: Array<[Record<string, unknown>, ErrorCode]> = [
    [{ ip: '1'.repeat(46) }, 'ERR_INVALID_ARGUMENT'],
    [{ ip: 'not-an-ip' }, 'ERR_INVALID_ARGUMENT'],
    [{ ip: '10.0.0.256' }, 'ERR_INVALID_ARGUMENT'],
    [{ idempotencyKey: 'k'.repeat(201) }, 'ERR_INVALID_ARGUMENT'],
    [{ idempotencyKey: 12345 }, 'ERR_INVALID_ARGUMENT'],
    [{ idempotencyKey: { k: 1 } }, 'ERR_INVALID_ARGUMENT'],
    [{ mac: 'ff:ff:ff:ff:ff:ff' }, 'ERR_INVALID_MAC'],
    [{ mac: '01:00:5e:00:00:01' }, 'ERR_INVALID_MAC'],
    [{ mac: '00:00:00:00:00:00' }, 'ERR_INVALID_MAC'],
  ];
  for (const [fields, code] of bad) {
    await rejectsWithCode(
      merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash' }, ...fields } as never),
      code,
    );
  }
  assert.equal(cash.calls, [], 'no bad purchase reached the payment method');
  await merchant.purchase({ mac: '02:00:00:00:00:01', ip: 'fe80::1', payment: { method: 'cash', token: 'ok' } });
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:02', payment: { method: 'cash', token: 'over' } }),
    'ERR_SESSION_LIMIT',
  );
  assert.equal(cash.calls, ['ok'], 'the session limit refused before payment');
  assert.equal(cash.released, []);
  // A top-up of the one live session is still sold at the limit.
  time.advance(1000);
  assert.ok(
    (await merchant.purchase({ mac: '02:00:00:00:00:01', payment: { method: 'cash', token: 'top' } })).toppedUp,
  );
  await manager.close();
});

test('50 concurrent purchases sharing one idempotency key make one authorization', async () => {
  const env = await setup();
  let authorizations = 0;
  const method: PaymentMethod = {
    name: 'slow',
    adminOnly: false,
    async authorize({ quote, now }) {
      const n = ++authorizations;
      await new Promise((r) => setTimeout(r, 10));
      return { method: 'slow', reference: `tx-${n}`, amount: quote.price, asset: quote.asset, at: now };
    },
  };
  const merchant = new Merchant({
    pricing: new Pricing([hourly]),
    sessions: env.manager,
    payments: createPaymentRegistry([method]),
    clock: env.time,
  });
  const all = await Promise.allSettled(
    Array.from({ length: 50 }, () =>
      merchant.purchase({ mac: '02:00:00:00:00:01', idempotencyKey: 'same-key', payment: { method: 'slow' } }),
    ),
  );
  assert.is(authorizations, 1);
  assert.is(all.filter((r) => r.status === 'fulfilled').length, 1);
  assert.ok(all.every((r) => r.status === 'fulfilled' || (r.reason as SluiceError).code === 'ERR_PAYMENT_IN_PROGRESS'));
  // Once it finished, a retry is a replay (refused before authorize again).
  await rejectsWithCode(
    merchant.purchase({ mac: '02:00:00:00:00:01', idempotencyKey: 'same-key', payment: { method: 'slow' } }),
    'ERR_PAYMENT_REPLAYED',
  );
  assert.is(authorizations, 1);
  await env.manager.close();
});

test('concurrent purchases cannot together overrun max_sessions after paying', async () => {
  const env = await setup({ limits: { maxSessions: 3 } });
  let authorizations = 0;
  const released: string[] = [];
  const method: PaymentMethod = {
    name: 'slow',
    adminOnly: false,
    async authorize({ quote, now }) {
      const n = ++authorizations;
      await new Promise((r) => setTimeout(r, 10));
      return { method: 'slow', reference: `tx-${n}`, amount: quote.price, asset: quote.asset, at: now };
    },
    async release(ref) {
      released.push(ref.reference);
    },
  };
  const merchant = new Merchant({
    pricing: new Pricing([hourly]),
    sessions: env.manager,
    payments: createPaymentRegistry([method]),
    clock: env.time,
  });
  const all = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) =>
      merchant.purchase({ mac: `02:00:00:00:03:0${i}`, payment: { method: 'slow' } }),
    ),
  );
  assert.is(all.filter((r) => r.status === 'fulfilled').length, 3);
  assert.is(authorizations, 3, 'the 7 over the limit were refused before authorize');
  assert.equal(released, []);
  await env.manager.close();
});

test('grant takes an idempotency key: a retried grant is refused, not granted twice', async () => {
  const { merchant, manager } = await make();
  const first = await merchant.grant({ mac: '02:00:00:00:00:01', seconds: 600, idempotencyKey: 'g-1' });
  await rejectsWithCode(
    merchant.grant({ mac: '02:00:00:00:00:01', seconds: 600, idempotencyKey: 'g-1' }),
    'ERR_PAYMENT_REPLAYED',
  );
  assert.is(manager.get(first.session.id)!.allotment, 600n);
  const burst = await Promise.allSettled(
    Array.from({ length: 10 }, () => merchant.grant({ mac: '02:00:00:00:00:02', bytes: 1000, idempotencyKey: 'g-2' })),
  );
  assert.is(burst.filter((r) => r.status === 'fulfilled').length, 1);
  assert.is(manager.byMac('02:00:00:00:00:02')!.allotment, 1000n);
  await rejectsWithCode(
    merchant.grant({ mac: '02:00:00:00:00:03', seconds: 1, idempotencyKey: 7 as never }),
    'ERR_INVALID_ARGUMENT',
  );
  await manager.close();
});

test('grant of a plan: the session is of that plan (its speed tier applies); an unknown plan is refused', async () => {
  const { merchant, manager } = await make();
  const g = await merchant.grant({ mac: '02:00:00:00:00:01', seconds: 600, plan: hourly.id });
  assert.is(manager.get(g.session.id)!.plan, hourly.id);
  await rejectsWithCode(merchant.grant({ mac: '02:00:00:00:00:02', seconds: 600, plan: 'nope' }), 'ERR_UNKNOWN_PLAN');
  assert.is(manager.byMac('02:00:00:00:00:02'), null, 'nothing granted');
  const plain = await merchant.grant({ mac: '02:00:00:00:00:03', seconds: 60 });
  assert.is(manager.get(plain.session.id)!.plan, null);
  await manager.close();
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
    {},
    { seconds: 0 },
    { seconds: -5 },
    { seconds: 1.5 },
    { seconds: 'soon' },
    { seconds: 0, bytes: 10 },
    { seconds: 10, bytes: 0 },
    { seconds: MAX_GRANT_SECONDS + 1n },
    { bytes: MAX_GRANT_BYTES + 1n },
    { bytes: '' },
  ]) {
    await rejectsWithCode(merchant.grant({ mac: '02:00:00:00:00:09', ...bad }), 'ERR_INVALID_AMOUNT');
  }
  assert.ok(await merchant.grant({ mac: '02:00:00:00:00:08', bytes: MAX_GRANT_BYTES }));
  await rejectsWithCode(merchant.grant({ mac: 'nope', seconds: 1 }), 'ERR_INVALID_MAC');
  await rejectsWithCode(merchant.grant({ mac: '02:00:00:00:00:02', seconds: 1 }), 'ERR_SESSION_METRIC_MISMATCH');
  await manager.close();
});

test(
  'time and data in one: a grant of both, and a data ' + 'plan with a time_limit, end at whichever comes first',
  async () => {
    const { merchant, manager, time } = await make();
    const both = await merchant.grant({ mac: '02:00:00:00:00:31', bytes: 1n << 20n, seconds: 600 });
    assert.is(both.session.metric, 'bytes');
    assert.is(both.session.allotment, 1n << 20n);
    assert.is(both.session.expiresAt, time.now() + 600_000, 'data with a deadline');
    await time.advance(600_000);
    assert.is(manager.get(both.session.id)!.state, 'EXPIRED');
    assert.is(manager.get(both.session.id)!.endCause, 'time-limit', 'the time ran out first');
    // A plan sold with a time_limit: the deadline comes from the sale; a top-up adds bytes and keeps it.
    const pass = await merchant.purchase({
      mac: '02:00:00:00:00:32',
      plan: 'day-pass',
      steps: 1n,
      payment: { method: 'cash', token: 'p1' },
    });
    assert.is(pass.quote!.timeLimit, 86_400n);
    assert.is(pass.session.allotment, 1_000_000_000n);
    const deadline = time.now() + 86_400_000;
    assert.is(pass.session.expiresAt, deadline);
    await time.advance(3_600_000);
    const top = await merchant.purchase({
      mac: '02:00:00:00:00:32',
      plan: 'day-pass',
      steps: 1n,
      payment: { method: 'cash', token: 'p2' },
    });
    assert.ok(top.toppedUp);
    assert.is(top.session.allotment, 2_000_000_000n);
    assert.is(top.session.expiresAt, deadline, 'bytes do not buy time');
    useBytes(manager, [['02:00:00:00:00:32', 2_000_000_000]]);
    assert.is(manager.get(pass.session.id)!.endCause, 'data-limit', 'the data ran out first');
    await manager.close();
  },
);

test('the admin may also purchase through the grant method on a plan', async () => {
  const { merchant, manager } = await make();
  const r = await merchant.purchase(
    { mac: '02:00:00:00:00:01', plan: 'data', steps: 5n, payment: { method: 'grant' } },
    { admin: true },
  );
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
