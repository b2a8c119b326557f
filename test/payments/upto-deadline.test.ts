// tier: chain
/**
 * No extension of a session may outlive an upto authorization's Permit2 deadline. The real session
 * manager, merchant, upto method and its ends on fake time, against anvil with Permit2 and the x402 upto
 * proxy, @x402/evm's OWN upto facilitator over HTTP and its OWN upto client signing (at the fake time: the deadline it
 * signs is "now" + max_timeout_seconds). Chain time is moved with the fake clock, so an authorization past its deadline
 * is refused by the chain itself.
 *
 * The case: a 30-minute plan, a 50-minute authorization window (as a 24 h plan on the default 2-day window), topped up
 * late. The top-up takes the session's end (T0+60 min) past the first authorization's deadline (T0+50 min): settled
 * only at the end, the first one could never be paid.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployUptoStack, newPermit2Buyer } from '../chain/upto.ts';
import type { TestFacilitator } from '../chain/facilitator.ts';
import { startChainFacilitator, type ChainFacilitator } from '../chain/daemon-rig.ts';
import { FakeTime } from '../helpers/fake-time.ts';
import { UptoStore } from '../../src/x402/index.ts';
import { createPaymentRegistry } from '../../src/payments/index.ts';
import { EndRecordsTap } from '../../src/sessions/index.ts';
import { UptoMethod } from '../../src/payments/upto/x402-upto.ts';
import { UptoEnds } from '../../src/payments/upto/x402-upto-ends.ts';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { PricingPlan } from '../../src/config/types.ts';
import type { Log } from '../../src/log.ts';
import { SluiceError } from '../../src/errors.ts';
import { removeTempDir } from '../helpers/temp.ts';

const test = suite('upto: no extension outlives an authorization');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 30n; // 30 × 60 s: a 30-minute plan, 0.30 USDC
const WINDOW_S = 3000; // upto.max_timeout_seconds: 50 minutes (≥ the plan + the 600 s settle margin)
const FUNDS = 5_000_000n;
const MAC = '02:00:00:00:00:01';
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Log;

let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let payTo: Address;
let dir: string;
let rig: ChainFacilitator<unknown> | undefined;

test.before(async () => {
  rig = await startChainFacilitator({ deploy: deployUptoStack, facilitator: () => ({ upto: true }) });
  ({ chain, usdc, facilitator } = rig);
  payTo = chain.newAccount().address;
});
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upto-deadline-'));
});
/** The test's store: its last writes are flushed before its directory goes (a write landing in it failed the rm). */
let openStore: UptoStore | undefined;
test.after.each(async () => {
  await openStore?.flush();
  openStore = undefined;
  removeTempDir(dir);
});
test.after(async () => {
  await rig?.close();
});

const newBuyer = (): Promise<PrivateKeyAccount> => newPermit2Buyer(chain, usdc, FUNDS);

/**
 * A router on fake time: sessions (EndRecordsTap over memory), the merchant, upto's method and ends, started as the
 * daemon does.
 */
async function router() {
  // The router's clock starts at the chain's: an earlier test moved chain time on for good.
  const time = new FakeTime(Number((await chain.publicClient.getBlock()).timestamp) * 1000);
  const tap = new EndRecordsTap(new MemoryStore());
  const sessions = await SessionManager.open({ store: tap, clock: time, timers: time });
  const store = await UptoStore.open(dir);
  openStore = store;
  const method = new UptoMethod(
    {
      enabled: true,
      network: NET,
      chainId: chain.chainId,
      facilitatorUrl: facilitator.url,
      payTo: payTo.toLowerCase(),
      maxTimeoutSeconds: WINDOW_S,
      timeoutMs: 15_000,
    },
    { store, log, clock: time, timers: time, sessions },
  );
  assert.ok(await method.refreshSupported());
  const ends = new UptoEnds({ method, sessions, endsWritten: tap, log, clock: time, timers: time });
  await ends.reconcile();
  ends.background.start();
  const plan: PricingPlan = {
    id: 'wifi',
    metric: 'seconds',
    stepSize: 60n,
    pricePerStep: STEP_PRICE,
    asset: usdc.address,
    currency: 'USDC',
    decimals: 6,
    minSteps: 1n,
    maxSteps: 100n,
  };
  const merchant = new Merchant({
    pricing: new Pricing([plan]),
    sessions,
    payments: createPaymentRegistry([method]),
    clock: time,
  });
  /** @x402/evm's client signs at the router's "now": its deadline is that + max_timeout_seconds. */
  const sign = async (buyer: PrivateKeyAccount, steps = STEPS) => {
    const req = method.requirements(usdc.address, steps * STEP_PRICE);
    const realNow = Date.now;
    Date.now = () => time.now();
    try {
      const r = await new UptoEvmScheme(buyer as never).createPaymentPayload(2, req as never);
      return { x402Version: 2, accepted: req, payload: r.payload as Record<string, unknown> };
    } finally {
      Date.now = realNow;
    }
  };
  const buy = async (buyer: PrivateKeyAccount, steps = STEPS) =>
    merchant.purchase({
      mac: MAC,
      plan: 'wifi',
      steps,
      payment: { method: 'upto', payload: await sign(buyer, steps) },
    });
  /** Router time and chain time move together. */
  const advance = async (seconds: number) => {
    await chain.increaseTime(seconds);
    await time.advance(seconds * 1000);
  };
  /** Waits (no deadline of its own: the runner's file limit guards a hang) until `reference` has an answer. */
  const finished = async (reference: string) => {
    while (['open', 'settling'].includes(store.get(reference)?.state ?? 'none'))
      await new Promise((r) => setTimeout(r, 50));
    return store.get(reference);
  };
  return { time, sessions, store, method, ends, merchant, buy, advance, finished };
}

test(
  "a late top-up takes the session past the first authorization's deadline: the first is settled before it, both " +
    'to the unit',
  async () => {
    const r = await router();
    const buyer = await newBuyer();
    const before = { buyer: await usdc.balanceOf(buyer.address), seller: await usdc.balanceOf(payTo) };

    const first = await r.buy(buyer); // T0: deadline T0+50 min, the session ends at T0+30 min
    await r.advance(1500);
    const second = await r.buy(buyer); // T0+25 min: the session now ends at T0+60 min, past the first's deadline
    assert.ok(second.toppedUp);
    const refA = first.session.payments[0]!.reference;
    const refB = second.session.payments[1]!.reference;
    assert.is(r.sessions.get(first.session.id)?.expiresAt, first.session.expiresAt! + 1800_000);

    // T0+40 min: the first authorization's deadline minus the margin. Its 30 minutes are used: settled for all of them.
    await r.advance(900);
    await r.ends.settleDue();
    const a = r.store.get(refA); // settleDue resolves once the settle has its answer
    assert.equal({ state: a?.state, amount: a?.amount }, { state: 'settled', amount: (STEPS * STEP_PRICE).toString() });
    assert.is(
      await usdc.balanceOf(payTo),
      before.seller + STEPS * STEP_PRICE,
      'the first authorization paid before its deadline',
    );
    assert.is(r.sessions.get(first.session.id)?.state, 'ACTIVE', 'the session carries on under the top-up');
    assert.is(
      r.sessions.get(first.session.id)?.expiresAt,
      first.session.expiresAt! + 1800_000,
      'nothing was taken from it',
    );

    // T0+60 min: the session ends; the top-up's authorization pays the second 30 minutes.
    await r.advance(1200);
    assert.is(r.sessions.get(first.session.id)?.state, 'EXPIRED');
    const b = await r.finished(refB);
    assert.equal({ state: b?.state, amount: b?.amount }, { state: 'settled', amount: (STEPS * STEP_PRICE).toString() });
    assert.is(
      await usdc.balanceOf(payTo),
      before.seller + 2n * STEPS * STEP_PRICE,
      'both authorizations settled, to the unit',
    );
    assert.is(await usdc.balanceOf(buyer.address), before.buyer - 2n * STEPS * STEP_PRICE);
  },
);

test('a top-up whose own share would come after its deadline is refused before any money moves', async () => {
  const r = await router();
  const buyer = await newBuyer();
  const before = { buyer: await usdc.balanceOf(buyer.address), seller: await usdc.balanceOf(payTo) };
  const first = await r.buy(buyer);
  await r.advance(300);
  // At T0+5 min the session would end at T0+60 min: an authorization signed now (deadline T0+55 min) could not pay its
  // end.
  const settles = facilitator.calls.settle;
  try {
    await r.buy(buyer);
    assert.unreachable('the early top-up was accepted');
  } catch (err) {
    assert.instance(err, SluiceError);
    assert.equal(
      { code: (err as SluiceError).code, reason: ((err as SluiceError).details as Record<string, unknown>)?.reason },
      { code: 'ERR_UPTO_AUTHORIZATION_INVALID', reason: 'upto_topup_outlasts_authorization' },
    );
  }
  assert.is(r.store.list().length, 1, 'only the first authorization is on flash');
  assert.is(r.sessions.get(first.session.id)?.expiresAt, first.session.expiresAt, 'the session is as it was');
  assert.is(facilitator.calls.settle, settles);
  assert.is(await usdc.balanceOf(payTo), before.seller);
  // Nearer the session's end the same top-up is taken.
  await r.advance(1200);
  assert.ok((await r.buy(buyer)).toppedUp);
});

test(
  'an admin grant past the deadline: the authorization is settled before it for the usage so far, the grant ' +
    'carries the session on',
  async () => {
    const r = await router();
    const buyer = await newBuyer();
    const before = { seller: await usdc.balanceOf(payTo) };
    const first = await r.buy(buyer);
    const ref = first.session.payments[0]!.reference;
    await r.advance(600);
    await r.merchant.grant({ mac: MAC, seconds: 7200 }); // ends at T0+150 min, far past the deadline (T0+50 min)
    await r.advance(1800); // T0+40 min
    await r.ends.settleDue();
    const a = r.store.get(ref);
    assert.equal({ state: a?.state, amount: a?.amount }, { state: 'settled', amount: (STEPS * STEP_PRICE).toString() });
    assert.is(await usdc.balanceOf(payTo), before.seller + STEPS * STEP_PRICE);
    assert.is(r.sessions.get(first.session.id)?.state, 'ACTIVE');
    await r.advance(7200);
    assert.is(r.sessions.get(first.session.id)?.state, 'EXPIRED');
    await r.ends.settleDue();
    assert.is(await usdc.balanceOf(payTo), before.seller + STEPS * STEP_PRICE, 'paid once');
  },
);

test.run();
