// tier: chain
/**
 * x402 `batch-settlement` against real peers: anvil with the scheme's contracts at their canonical addresses (test
 * contracts written from the spec, test/chain/BatchSettlement.sol), @x402/evm's OWN facilitator scheme
 * (BatchSettlementEvmScheme over the standard HTTP API, delegated receiver authorizer) and @x402/evm's OWN client
 * functions signing the deposit and the vouchers. sluice's method and settler are driven directly (the daemon wiring
 * is not done yet). Balances are checked to the unit: the receiver gets exactly the metered price, the buyer the rest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSignature, serializeSignature, type Address, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  computeChannelId,
  createBatchSettlementEIP3009DepositPayload,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack, type BatchStack } from '../chain/batch.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { BatchChannelStore } from '../../src/payments/batch-settlement/batch-channels.ts';
import type { Quote } from '../../src/payments/index.ts';
import { BatchSettlementMethod } from '../../src/payments/batch-settlement/x402-batch.ts';
import { BatchSettler } from '../../src/payments/batch-settlement/x402-batch-settler.ts';
import { BatchWithdrawalWatch, watchIntervalMs } from '../../src/payments/batch-settlement/x402-batch-watch.ts';
import type { BatchSettlementConfig } from '../../src/payments/batch-settlement/x402-batch.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { SluiceError } from '../../src/errors.ts';

const test = suite('batch-settlement on a real chain');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n; // 0.01 USDC per 60 s step
const STEPS = 10n; // a session's ceiling: 10 steps = 0.10 USDC
const DEPOSIT = 1_000_000n;
const FUNDS = 5_000_000n;

let chain: TestChain;
let usdc: TestToken;
let stack: BatchStack;
let facilitator: TestFacilitator;
let authorizer: PrivateKeyAccount;
let receiver: Address;
let dir: string;
let now = Date.now();
const clock = { now: () => now };
/** The delays the settlers asked for (the passes themselves are run by the tests). */
const timerAt: number[] = [];
const recordingTimers = {
  setTimeout: (_fn: () => void, ms: number) => {
    timerAt.push(ms);
    return 0 as never;
  },
  clearTimeout: () => undefined,
};

function quote(steps = STEPS): Quote {
  return {
    plan: 'wifi',
    metric: 'seconds',
    steps,
    allotment: steps * 60n,
    price: steps * STEP_PRICE,
    asset: usdc.address.toLowerCase(),
    currency: 'USDC',
    decimals: 6,
    stepSize: 60n,
    pricePerStep: STEP_PRICE,
  };
}

function settings(over: Partial<BatchSettlementConfig> = {}): BatchSettlementConfig {
  return {
    enabled: true,
    network: NET,
    chainId: chain.chainId,
    facilitatorUrl: facilitator.url,
    receiver: receiver.toLowerCase(),
    receiverAuthorizer: authorizer.address.toLowerCase(),
    withdrawDelay: 900,
    tokenName: usdc.name,
    tokenVersion: usdc.version,
    refund: 'idle',
    refundIdleMs: 3_600_000,
    timeoutMs: 15_000,
    ...over,
  };
}

/** `charged`: a charge tells the settler, as in the daemon (its timer is recorded, never run: tests run the passes). */
async function parts(
  over: Partial<BatchSettlementConfig> = {},
  storeDir = dir,
  isLive?: (reference: string) => boolean,
  charged = false,
) {
  const store = await BatchChannelStore.open(storeDir);
  let settler: BatchSettler | undefined;
  const method = new BatchSettlementMethod(settings(over), {
    store,
    clock,
    mirrorFreshMs: 0,
    ...(isLive && { isLive }),
    onRefundRequested: () => settler!.pass(),
    ...(charged && { onCharged: (r: Parameters<BatchSettler['charged']>[0]) => settler!.charged(r) }),
  });
  settler = new BatchSettler({ method, store, clock, timers: recordingTimers });
  return { store, method, settler };
}

interface Buyer {
  wallet: PrivateKeyAccount;
  voucherKey: PrivateKeyAccount;
  salt: Hex;
}

async function newBuyer(): Promise<Buyer> {
  const wallet = chain.newAccount();
  await usdc.mint(wallet.address, FUNDS);
  await chain.fund(wallet.address);
  const voucherKey = chain.newAccount();
  await chain.fund(voucherKey.address);
  return { wallet, voucherKey, salt: `0x${'0'.repeat(63)}1` };
}

function channelConfig(b: Buyer, over: Record<string, unknown> = {}) {
  return {
    payer: b.wallet.address,
    payerAuthorizer: b.voucherKey.address,
    receiver,
    receiverAuthorizer: authorizer.address,
    token: usdc.address,
    withdrawDelay: 900,
    salt: b.salt,
    ...over,
  };
}

function requirements(method: BatchSettlementMethod, q: Quote): Record<string, unknown> {
  return method.requirements(usdc.address, q.price);
}

/** @x402/evm's client builds the deposit payload; the envelope's `accepted` is what @x402/core's client adds. */
async function depositPayload(
  method: BatchSettlementMethod,
  b: Buyer,
  ceiling: bigint,
  q = quote(),
  config = channelConfig(b),
) {
  const req = requirements(method, q);
  const r = await createBatchSettlementEIP3009DepositPayload(
    b.wallet as never,
    2,
    req as never,
    config as never,
    DEPOSIT.toString(),
    ceiling.toString(),
    b.voucherKey as never,
  );
  return { x402Version: 2, accepted: req, payload: r.payload };
}

async function voucherPayload(
  method: BatchSettlementMethod,
  b: Buyer,
  ceiling: bigint,
  q = quote(),
  signer: PrivateKeyAccount = b.voucherKey,
) {
  const config = channelConfig(b);
  const channelId = computeChannelId(config as never, NET);
  const voucher = await signVoucher(signer as never, channelId, ceiling.toString(), NET);
  return {
    x402Version: 2,
    accepted: requirements(method, q),
    payload: { type: 'voucher', channelConfig: config, voucher },
  };
}

/** The spec's client refund request (what @x402/evm's refundChannel sends): a voucher at the charged amount. */
async function refundPayload(
  method: BatchSettlementMethod,
  b: Buyer,
  charged: bigint,
  signer: PrivateKeyAccount = b.voucherKey,
  amount?: bigint,
) {
  const config = channelConfig(b);
  const voucher = await signVoucher(signer as never, computeChannelId(config as never, NET), charged.toString(), NET);
  return {
    x402Version: 2,
    accepted: method.requirements(usdc.address, 0n),
    payload: {
      type: 'refund',
      channelConfig: config,
      voucher,
      ...(amount !== undefined && { amount: amount.toString() }),
    },
  };
}

function ctx(payload: unknown, q = quote(), mac = '02:00:00:00:00:01'): PaymentContext {
  return { quote: q, request: { mac, payment: { method: 'batch-settlement', payload } }, now };
}

async function buy(method: BatchSettlementMethod, payload: unknown, q = quote()) {
  const c = ctx(payload, q);
  const pre = await method.precheck(c);
  const ref = await method.authorize(c);
  assert.is(ref.reference, pre.reference);
  return ref;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, SluiceError);
    return (err as SluiceError).code;
  }
  return assert.unreachable('expected a refusal') as never;
}

async function channelOnChain(id: Hex): Promise<{ balance: bigint; totalClaimed: bigint }> {
  const [balance, totalClaimed] = (await chain.publicClient.readContract({
    address: BATCH_SETTLEMENT_ADDRESS,
    abi: stack.abi,
    functionName: 'channels',
    args: [id],
  })) as [bigint, bigint];
  return { balance, totalClaimed };
}

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  stack = await deployBatchStack(chain);
  authorizer = chain.newAccount();
  facilitator = await startFacilitator(chain, { batchSettlement: { authorizer } });
  receiver = chain.newAccount().address;
});

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-batch-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.after(async () => {
  await facilitator?.stop();
  await chain?.stop();
});

test(
  'deposit once, two sessions by voucher, charged what ' + 'the meter counted; one claim; the rest refunded',
  async () => {
    const { method, settler, store } = await parts();
    const b = await newBuyer();
    const receiverBefore = await usdc.balanceOf(receiver);
    const ceiling1 = quote().price;
    const ref1 = await buy(method, await depositPayload(method, b, ceiling1));
    const id = ref1.reference.split(':')[0] as Hex;
    assert.equal(await channelOnChain(id), { balance: DEPOSIT, totalClaimed: 0n });
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS - DEPOSIT);
    assert.is(
      store.get(id)?.open?.reference,
      ref1.reference,
      'the voucher and its open charge are on flash before the grant',
    );

    // 150 s used of a 600 s ceiling: 3 steps.
    assert.is(await method.charge(ref1.reference, 150n), 3n * STEP_PRICE);
    assert.is(await method.charge(ref1.reference, 150n), 0n, 'a second end charges nothing');

    // The next session: a voucher only (no deposit, no wallet prompt: the voucher key signs), ceiling = charged +
    // price.
    const ceiling2 = 3n * STEP_PRICE + quote().price;
    const ref2 = await buy(method, await voucherPayload(method, b, ceiling2));
    assert.is(await method.charge(ref2.reference, 241n), 5n * STEP_PRICE, '241 s is 5 steps');
    const charged = 8n * STEP_PRICE;

    const pass = await settler.pass();
    assert.equal(pass.claimed, [id]);
    assert.is(pass.claimTransactions.length, 1);
    assert.equal(
      pass.settled.map((s) => s.amount),
      [charged.toString()],
    );
    assert.equal(pass.refunded, [], 'refund policy idle: not yet');
    assert.ok(
      timerAt.some((ms) => ms > 3_590_000 && ms <= 3_600_000),
      `a pass is set for when the channel has been idle an hour: ${timerAt}`,
    );
    assert.is((await usdc.balanceOf(receiver)) - receiverBefore, charged, 'the receiver got exactly the metered price');

    now += 3_600_000;
    const later = await settler.pass();
    assert.equal(
      later.refunded.map((r) => r.amount),
      [(DEPOSIT - charged).toString()],
    );
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS - charged, 'the buyer got exactly the rest back');
    assert.equal(await channelOnChain(id), { balance: charged, totalClaimed: charged });
    const again = await settler.pass();
    assert.equal([again.claimed, again.settled, again.refunded, again.pending], [[], [], [], 0], 'nothing moves twice');
  },
);

test(
  'refusals move no money: cumulative off by one, wrong key, ' + 'high-s twin, not our channel, over the balance, busy',
  async () => {
    const { method } = await parts();
    const b = await newBuyer();
    const ref = await buy(method, await depositPayload(method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, 2n * quote().price)))),
      'ERR_BATCH_CHANNEL_BUSY',
    );
    await method.charge(ref.reference, 60n);
    const before = await channelOnChain(id);
    const right = STEP_PRICE + quote().price;

    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, right - 1n)))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
    );
    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, STEP_PRICE)))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
      'equal to the charged amount',
    );
    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, right, quote(), b.wallet)))),
      'ERR_BATCH_VOUCHER_INVALID',
      'signed by the payer, not its authorizer',
    );

    const good = await voucherPayload(method, b, right);
    const sig = parseSignature((good.payload.voucher as { signature: Hex }).signature);
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const twin = serializeSignature({
      r: sig.r,
      s: `0x${(N - BigInt(sig.s)).toString(16).padStart(64, '0')}`,
      yParity: sig.yParity === 0 ? 1 : 0,
    });
    const high = {
      ...good,
      payload: { ...good.payload, voucher: { ...(good.payload.voucher as object), signature: twin } },
    };
    assert.is(
      await refusal(method.precheck(ctx(high))),
      'ERR_BATCH_VOUCHER_INVALID',
      'the high-s twin recovers to the same key but is refused',
    );

    const foreign = await depositPayload(method, await newBuyer(), quote().price, quote(), {
      ...channelConfig(b),
      receiver: chain.newAccount().address,
    } as never);
    assert.is(await refusal(method.precheck(ctx(foreign))), 'ERR_BATCH_CHANNEL_MISMATCH');
    const slow = await depositPayload(method, await newBuyer(), quote().price, quote(), {
      ...channelConfig(b),
      withdrawDelay: 901,
    } as never);
    assert.is(await refusal(method.precheck(ctx(slow))), 'ERR_BATCH_CHANNEL_MISMATCH');

    // 110 steps at once: a ceiling above the deposit. Local checks pass; the balance refuses it in authorize.
    const big = quote(110n);
    const over = await voucherPayload(method, b, STEP_PRICE + big.price, big);
    await method.precheck(ctx(over, big));
    assert.is(await refusal(method.authorize(ctx(over, big))), 'ERR_BATCH_VERIFY_REJECTED');
    assert.equal(await channelOnChain(id), before, 'nothing moved');
    assert.is((await parts()).store.get(id)?.charged, STEP_PRICE);
  },
);

test(
  'kill -9 after the deposit landed and before the grant: ' + 'the same payload is granted once, the money moved once',
  async () => {
    const b = await newBuyer();
    const first = await parts();
    const payload = await depositPayload(first.method, b, quote().price);
    // The deposit lands (the facilitator's own /settle), then sluice dies before writing anything.
    const settled = await first.method.facilitator.settle({
      paymentPayload: payload,
      paymentRequirements: requirements(first.method, quote()),
    });
    assert.is(settled.status, 'settled');
    const id = computeChannelId(channelConfig(b) as never, NET).toLowerCase() as Hex;
    assert.is(first.store.get(id), undefined);

    const restarted = await parts();
    const ref = await buy(restarted.method, payload);
    assert.equal(await channelOnChain(id), { balance: DEPOSIT, totalClaimed: 0n }, 'one deposit, not two');
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS - DEPOSIT);

    // Killed again after the grant was written: a fresh process charges and claims the voucher it finds on flash.
    const third = await parts();
    assert.is(third.store.get(id)?.open?.reference, ref.reference);
    assert.is(await third.method.charge(ref.reference, 600n), quote().price, 'a full session: the ceiling, never more');
    const receiverBefore = await usdc.balanceOf(receiver);
    await third.settler.pass();
    assert.is((await usdc.balanceOf(receiver)) - receiverBefore, quote().price);
  },
);

test(
  "the customer's timed withdrawal: sluice claims its " + 'charge within the delay, the customer gets the rest',
  async () => {
    const { method, settler } = await parts();
    const b = await newBuyer();
    const ref = await buy(method, await depositPayload(method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    await method.charge(ref.reference, 420n); // 7 steps
    const config = channelConfig(b) as never;
    // The payer's authorizer starts a withdrawal of everything unclaimed, the charge included.
    const start = await chain.wallet(b.voucherKey).writeContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'initiateWithdraw',
      args: [config, DEPOSIT],
    });
    assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: start })).status, 'success');
    const receiverBefore = await usdc.balanceOf(receiver);
    await settler.pass(); // within the 900 s grace period
    assert.is((await usdc.balanceOf(receiver)) - receiverBefore, 7n * STEP_PRICE);
    await chain.increaseTime(901);
    const fin = await chain.wallet(b.voucherKey).writeContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'finalizeWithdraw',
      args: [config],
    });
    assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: fin })).status, 'success');
    assert.is(
      await usdc.balanceOf(b.wallet.address),
      FUNDS - 7n * STEP_PRICE,
      'the withdrawal returned exactly the unclaimed rest',
    );
    assert.equal(await channelOnChain(id), { balance: 7n * STEP_PRICE, totalClaimed: 7n * STEP_PRICE });
  },
);

/**
 * The watch over `parts`, whose session end is what the daemon's is once the end record is on flash: the session's
 * charge for `used` (x402-batch-ends.ts). `live` says whether the session still runs.
 */
function watchOver(p: Awaited<ReturnType<typeof parts>>, used: bigint, live: { value: boolean }, ended: string[]) {
  return new BatchWithdrawalWatch({
    method: p.method,
    store: p.store,
    clock,
    timers: recordingTimers,
    endSession: async (reference) => {
      if (!live.value) return false;
      live.value = false;
      ended.push(reference);
      await p.method.charge(reference, used);
      return true;
    },
  });
}

async function startWithdrawal(b: Buyer, amount: bigint): Promise<void> {
  const start = await chain.wallet(b.voucherKey).writeContract({
    address: BATCH_SETTLEMENT_ADDRESS,
    abi: stack.abi,
    functionName: 'initiateWithdraw',
    args: [channelConfig(b) as never, amount],
  });
  assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: start })).status, 'success');
}

async function finalizeWithdrawal(b: Buyer): Promise<void> {
  const fin = await chain.wallet(b.voucherKey).writeContract({
    address: BATCH_SETTLEMENT_ADDRESS,
    abi: stack.abi,
    functionName: 'finalizeWithdraw',
    args: [channelConfig(b) as never],
  });
  assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: fin })).status, 'success');
}

test(
  'a withdrawal started during an open session: the watch ends it, its charge is claimed before the withdrawal ' +
    'can finalize',
  async () => {
    const live = { value: true };
    const p = await parts({}, dir, () => live.value, true);
    const ended: string[] = [];
    const watch = watchOver(p, 420n, live, ended); // 7 steps used when the session ends
    assert.is(watch.intervalMs, 225_000, 'a quarter of the 900 s delay');
    assert.is(watchIntervalMs(86_400), 21_600_000);
    assert.is(watchIntervalMs(120), 60_000, 'never more often than a minute');
    const b = await newBuyer();
    const ref = await buy(p.method, await depositPayload(p.method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    p.method.reconfigure(settings({ withdrawDelay: 86_400 }));
    assert.is(watch.intervalMs, 225_000, 'a reload raising the delay: the open channel keeps its own 900 s');
    p.method.reconfigure(settings());
    const quiet = await watch.check();
    assert.equal(
      [quiet.checked, quiet.ended, quiet.failed],
      [[id], [], 0],
      'one read of the open channel, nothing to do',
    );

    // The customer starts the timed withdrawal of everything at the start of the session.
    await startWithdrawal(b, DEPOSIT);
    // A top-up of the running session on the withdrawing channel is refused, nothing moves (the mirror is older than
    // mirrorFreshMs: the purchase asks the facilitator, which reads the chain).
    now += 1;
    const topUp = await voucherPayload(p.method, b, 2n * quote().price);
    await p.method.precheck(ctx(topUp));
    assert.is(await refusal(p.method.authorize(ctx(topUp))), 'ERR_BATCH_CHANNEL_WITHDRAWING');
    assert.is(p.store.get(id)?.signedMax, quote().price, "the ceiling stays the first voucher's");

    timerAt.length = 0;
    const seen = await watch.check();
    assert.equal([seen.ended, ended], [[id], [ref.reference]], 'the session is ended at once');
    assert.ok(p.store.get(id)!.withdrawRequestedAt > 0, 'the withdrawal is mirrored on flash');
    assert.ok(timerAt.includes(0), `the claim is scheduled at once, not after the batch window: ${timerAt}`);
    const receiverBefore = await usdc.balanceOf(receiver);
    const pass = await p.settler.pass(); // what that timer runs
    assert.equal(pass.claimed, [id]);
    assert.equal(
      await channelOnChain(id),
      { balance: DEPOSIT, totalClaimed: 7n * STEP_PRICE },
      'claimed while the withdrawal still waits',
    );
    assert.is(
      (await usdc.balanceOf(receiver)) - receiverBefore,
      7n * STEP_PRICE,
      'the receiver got exactly the metered price',
    );

    // No new voucher on the channel while the withdrawal is under way.
    const next = await voucherPayload(p.method, b, 7n * STEP_PRICE + quote().price);
    await p.method.precheck(ctx(next));
    assert.is(await refusal(p.method.authorize(ctx(next))), 'ERR_BATCH_CHANNEL_WITHDRAWING');
    await chain.increaseTime(901);
    await finalizeWithdrawal(b);
    assert.is(
      await usdc.balanceOf(b.wallet.address),
      FUNDS - 7n * STEP_PRICE,
      'the buyer got exactly the rest after finalize',
    );
    assert.equal(await channelOnChain(id), { balance: 7n * STEP_PRICE, totalClaimed: 7n * STEP_PRICE });
    assert.equal((await watch.check()).checked, [], 'no open channel: nothing read');
  },
);

test(
  'kill -9, a withdrawal started while sluice is down: the first check at start ends the session and claims its ' +
    'charge',
  async () => {
    const b = await newBuyer();
    const before = await parts({}, dir, () => true);
    const ref = await buy(before.method, await depositPayload(before.method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    // sluice is gone (nothing stopped, nothing written); the customer starts the withdrawal meanwhile.
    await startWithdrawal(b, DEPOSIT);

    const live = { value: true };
    const after = await parts({}, dir, () => live.value, true);
    const ended: string[] = [];
    const watch = watchOver(after, 300n, live, ended); // 5 steps used
    timerAt.length = 0;
    watch.background.start();
    assert.equal(timerAt, [0], 'the start checks at once');
    timerAt.length = 0;
    const seen = await watch.check(); // what that timer runs
    assert.equal([seen.ended, ended], [[id], [ref.reference]]);
    assert.ok(timerAt.includes(0), 'and the claim goes at once');
    const receiverBefore = await usdc.balanceOf(receiver);
    await after.settler.pass();
    assert.equal(
      await channelOnChain(id),
      { balance: DEPOSIT, totalClaimed: 5n * STEP_PRICE },
      'claimed before the withdrawal can finalize',
    );
    assert.is((await usdc.balanceOf(receiver)) - receiverBefore, 5n * STEP_PRICE);
    await chain.increaseTime(901);
    await finalizeWithdrawal(b);
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS - 5n * STEP_PRICE, 'the buyer got exactly the rest');
    await watch.background.stop();
  },
);

test(
  'bad input moves nothing: another token or receiverAuthorizer, ' + 'a deposit replayed (while open, after a charge)',
  async () => {
    const { method } = await parts();
    const b = await newBuyer();
    const otherToken = await chain.deployToken({ name: 'USDC', version: '2' });
    const foreignToken = await depositPayload(method, b, quote().price, quote(), {
      ...channelConfig(b),
      token: otherToken.address,
    } as never);
    assert.is(
      await refusal(method.precheck(ctx(foreignToken))),
      'ERR_BATCH_CHANNEL_MISMATCH',
      "a token that is not the plan's asset",
    );
    const foreignAuthorizer = await depositPayload(method, b, quote().price, quote(), {
      ...channelConfig(b),
      receiverAuthorizer: chain.newAccount().address,
    } as never);
    assert.is(
      await refusal(method.precheck(ctx(foreignAuthorizer))),
      'ERR_BATCH_CHANNEL_MISMATCH',
      'a receiverAuthorizer that is not ours',
    );
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS, 'nothing deposited');

    const deposit = await depositPayload(method, b, quote().price);
    const ref = await buy(method, deposit);
    const id = ref.reference.split(':')[0] as Hex;
    assert.is(
      await refusal(method.precheck(ctx(deposit))),
      'ERR_BATCH_CHANNEL_BUSY',
      'the same deposit while its session is open',
    );
    await method.charge(ref.reference, 60n);
    assert.is(
      await refusal(method.precheck(ctx(deposit))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
      'the same deposit after a charge',
    );
    assert.equal(await channelOnChain(id), { balance: DEPOSIT, totalClaimed: 0n }, 'deposited once');
    assert.is(await usdc.balanceOf(b.wallet.address), FUNDS - DEPOSIT);
  },
);

/** The channel's record and its onchain state: what a refused replay must leave exactly as it was. */
async function snapshotOf(store: BatchChannelStore, id: Hex) {
  return { record: store.get(id), chain: await channelOnChain(id) };
}

/** The corrective 402's fields of a cumulative refusal (what the client re-syncs from). */
async function corrective(p: Promise<unknown>): Promise<{ base: bigint; signedMax: bigint; signature: string }> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, SluiceError);
    assert.is((err as SluiceError).code, 'ERR_BATCH_CUMULATIVE_MISMATCH');
    const d = (err as SluiceError).details as {
      channelState: { chargedCumulativeAmount: string };
      voucherState: { signedMaxClaimable: string; signature: string };
    };
    return {
      base: BigInt(d.channelState.chargedCumulativeAmount),
      signedMax: BigInt(d.voucherState.signedMaxClaimable),
      signature: d.voucherState.signature,
    };
  }
  return assert.unreachable('expected a refusal') as never;
}

const STRANGER = '02:00:00:00:00:66';

test(
  "A stranger replays the customer's last voucher after a partly used session, from another MAC: " +
    'refused, nothing moves',
  async () => {
    const { method, store, settler } = await parts();
    const b = await newBuyer();
    const deposit = await depositPayload(method, b, quote().price);
    const ref = await buy(method, deposit);
    const id = ref.reference.split(':')[0] as Hex;
    assert.is(await method.charge(ref.reference, 180n), 3n * STEP_PRICE, '3 of the 10 steps used');
    await settler.pass();
    const before = await snapshotOf(store, id);
    // The voucher the customer sent (readable on open WiFi, and on chain in the router's claim): ceiling 10 steps.
    // Charged 3 + 7 unused steps = that ceiling: a 7-step purchase by it raised nothing and was granted before.
    const lastVoucher = (deposit.payload as { voucher: unknown }).voucher;
    const replay = {
      ...(await voucherPayload(method, b, quote().price)),
      payload: { type: 'voucher', channelConfig: channelConfig(b), voucher: lastVoucher },
    };
    for (const steps of [7n, 6n, 10n, 1n]) {
      assert.is(
        await refusal(method.precheck(ctx(replay, quote(steps), STRANGER))),
        'ERR_BATCH_CUMULATIVE_MISMATCH',
        `${steps} steps`,
      );
      assert.is(
        await refusal(method.precheck(ctx(deposit, quote(steps), STRANGER))),
        'ERR_BATCH_CUMULATIVE_MISMATCH',
        `the deposit payload, ${steps} steps`,
      );
    }
    assert.is(
      await refusal(method.precheck(ctx(replay, quote(7n)))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
      "from the customer's own MAC too",
    );
    assert.equal(await snapshotOf(store, id), before, 'nothing recorded, nothing moved');

    // The customer's own next purchase: charged + price is above the last ceiling, the spec's rule as before.
    const next = await buy(method, await voucherPayload(method, b, 3n * STEP_PRICE + quote().price));
    assert.is(await method.charge(next.reference, 60n), STEP_PRICE);
  },
);

test(
  'A session that used nothing, then its voucher again (same and another device, after a restart): ' +
    'refused; the customer re-syncs and pays once',
  async () => {
    const first = await parts();
    const b = await newBuyer();
    const deposit = await depositPayload(first.method, b, quote().price);
    const ref1 = await buy(first.method, deposit);
    const id = ref1.reference.split(':')[0] as Hex;
    assert.is(await first.method.charge(ref1.reference, 0n), 0n, 'nothing used, nothing charged');
    // The same voucher (a deterministic signature: exactly what the customer's client signs again as charged + price).
    const same = await voucherPayload(first.method, b, quote().price);
    assert.equal(same.payload.voucher, (deposit.payload as { voucher: unknown }).voucher, 'the same bytes');
    const before = await snapshotOf(first.store, id);
    for (const mac of [STRANGER, '02:00:00:00:00:01']) {
      assert.is(await refusal(first.method.precheck(ctx(same, quote(), mac))), 'ERR_BATCH_CUMULATIVE_MISMATCH', mac);
      assert.is(
        await refusal(first.method.precheck(ctx(deposit, quote(), mac))),
        'ERR_BATCH_CUMULATIVE_MISMATCH',
        `deposit, ${mac}`,
      );
    }
    // kill -9 and a restart: the floor is the record's own (on flash), not memory.
    const { method, store, settler } = await parts();
    assert.is(
      await refusal(method.precheck(ctx(same, quote(), STRANGER))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
      'after a restart',
    );
    assert.equal(await snapshotOf(store, id), before, 'nothing recorded, nothing moved');

    // The corrective 402 carries the floor: a base the customer's client accepts (between the claim and its own last
    // voucher, whose signature it checks) and from which base + price is above every ceiling it signed.
    const fix = await corrective(method.precheck(ctx(same)));
    assert.equal(fix, {
      base: 1n,
      signedMax: quote().price,
      signature: (same.payload.voucher as { signature: string }).signature,
    });
    const ref2 = await buy(method, await voucherPayload(method, b, fix.base + quote().price));
    assert.is(ref2.reference, `${id}:${quote().price + 1n}`);
    // Used beyond the allotment (the gate's lag): charged what this purchase paid for, not its ceiling's extra unit.
    assert.is(await method.charge(ref2.reference, 10_000n), quote().price);
    const receiverBefore = await usdc.balanceOf(receiver);
    await settler.pass();
    assert.is(
      (await usdc.balanceOf(receiver)) - receiverBefore,
      quote().price,
      'charged the second session once, never the first',
    );
  },
);

test(
  'After the refund, the last voucher replayed ' + 'is refused (and after a new deposit); nothing moves',
  async () => {
    const { method, store, settler } = await parts({ refund: 'on-request' });
    const b = await newBuyer();
    const deposit = await depositPayload(method, b, quote().price);
    const ref = await buy(method, deposit);
    const id = ref.reference.split(':')[0] as Hex;
    await method.charge(ref.reference, 120n); // 2 steps
    await settler.pass();
    const out = await method.requestRefund(await refundPayload(method, b, 2n * STEP_PRICE));
    assert.is(out.channel.refund.state, 'done');
    const before = await snapshotOf(store, id);
    const last = await voucherPayload(method, b, quote().price);
    assert.is(await refusal(method.precheck(ctx(last, quote(8n), STRANGER))), 'ERR_BATCH_CUMULATIVE_MISMATCH');
    assert.is(await refusal(method.precheck(ctx(deposit, quote(8n), STRANGER))), 'ERR_BATCH_CUMULATIVE_MISMATCH');
    assert.equal(await snapshotOf(store, id), before, 'nothing recorded, nothing moved');
    // The customer deposits again (a new purchase above the floor); the old voucher stays refused.
    const again = await buy(method, await depositPayload(method, b, 2n * STEP_PRICE + quote().price));
    await method.charge(again.reference, 60n);
    assert.is(await refusal(method.precheck(ctx(last, quote(9n), STRANGER))), 'ERR_BATCH_CUMULATIVE_MISMATCH');
  },
);

test(
  'a running session topped up by a voucher alone: the ' + 'ceiling rises, the session is charged once at its end',
  async () => {
    let live = true;
    const { method, store } = await parts({}, dir, () => live);
    const b = await newBuyer();
    const ref1 = await buy(method, await depositPayload(method, b, quote().price));
    const id = ref1.reference.split(':')[0] as Hex;
    // Another device cannot top up this channel's session, nor a voucher that does not raise the open ceiling.
    const topUp = await voucherPayload(method, b, 2n * quote().price);
    assert.is(await refusal(method.precheck(ctx(topUp, quote(), '02:00:00:00:00:99'))), 'ERR_BATCH_CHANNEL_BUSY');
    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, quote().price)))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
    );
    const before = await channelOnChain(id);
    const ref2 = await buy(method, topUp);
    assert.equal(await channelOnChain(id), before, 'a top-up moves no money: no deposit');
    assert.is(store.get(id)?.open?.reference, ref1.reference, 'still the one open charge');
    assert.is(store.get(id)?.signedMax, 2n * quote().price);
    // 15 steps: more than the first voucher's 10, within the topped-up 20.
    assert.is(await method.charge(ref1.reference, 900n), 15n * STEP_PRICE);
    assert.is(await method.charge(ref2.reference, 900n), 0n, "the top-up's reference charges nothing more");
    // A session that is no longer live is not topped up: its channel is busy until its charge is written.
    const ref3 = await buy(method, await voucherPayload(method, b, 15n * STEP_PRICE + quote().price));
    live = false;
    assert.is(
      await refusal(method.precheck(ctx(await voucherPayload(method, b, 15n * STEP_PRICE + 2n * quote().price)))),
      'ERR_BATCH_CHANNEL_BUSY',
    );
    await method.charge(ref3.reference, 0n);
  },
);

test(
  "the customer's refund request: only the channel's own key, at the charged amount, on flash first; refunded " +
    'once',
  async () => {
    const { method, store, settler } = await parts({ refund: 'on-request' });
    const b = await newBuyer();
    const ref = await buy(method, await depositPayload(method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    assert.is(
      await refusal(method.requestRefund(await refundPayload(method, b, 0n))),
      'ERR_BATCH_CHANNEL_BUSY',
      'a session is open',
    );
    await method.charge(ref.reference, 180n); // 3 steps
    const charged = 3n * STEP_PRICE;
    await settler.pass();
    assert.equal(method.channel(id).refund, { state: 'none' }, 'on-request: nothing refunded unasked');
    const onChain = await channelOnChain(id);

    // Someone else's channel: a voucher signed by any other key (another customer's voucher key, the payer's wallet
    // when a payerAuthorizer is set) is refused, nothing recorded, nothing moved.
    const other = chain.newAccount();
    assert.is(
      await refusal(method.requestRefund(await refundPayload(method, b, charged, other))),
      'ERR_BATCH_REFUND_FORBIDDEN',
    );
    assert.is(
      await refusal(method.requestRefund(await refundPayload(method, b, charged, b.wallet))),
      'ERR_BATCH_REFUND_FORBIDDEN',
    );
    assert.is(
      await refusal(method.requestRefund(await refundPayload(method, b, charged - 1n))),
      'ERR_BATCH_CUMULATIVE_MISMATCH',
    );
    assert.is(
      await refusal(method.requestRefund(await voucherPayload(method, b, charged))),
      'ERR_BATCH_PAYLOAD_INVALID',
      'a voucher payload is not a refund',
    );
    assert.is(
      await refusal(method.requestRefund(await refundPayload(method, await newBuyer(), 0n))),
      'ERR_BATCH_CHANNEL_UNKNOWN',
    );
    assert.is(store.get(id)?.refund, undefined);
    assert.equal(await channelOnChain(id), onChain);

    const walletBefore = await usdc.balanceOf(b.wallet.address);
    const out = await method.requestRefund(await refundPayload(method, b, charged));
    assert.is(out.channel.refund.state, 'done');
    assert.is(out.settlement?.amount, (DEPOSIT - charged).toString());
    assert.is(
      (await usdc.balanceOf(b.wallet.address)) - walletBefore,
      DEPOSIT - charged,
      'the customer got exactly the rest',
    );
    assert.equal(await channelOnChain(id), { balance: charged, totalClaimed: charged });
    assert.equal(
      { ...method.channel(id), refund: undefined },
      { ...method.channel(id), available: '0', balance: charged.toString(), refund: undefined },
    );

    // Asked again: the done state, nothing moves.
    const twice = await method.requestRefund(await refundPayload(method, b, charged));
    assert.is(twice.channel.refund.state, 'done');
    const pass = await settler.pass();
    assert.equal([pass.refunded, pass.pending], [[], 0]);
    assert.is((await usdc.balanceOf(b.wallet.address)) - walletBefore, DEPOSIT - charged, 'money moved once');
  },
);

test('a refund asked for while the facilitator is down is on flash: a restart does it, once', async () => {
  const b = await newBuyer();
  const first = await parts({ refund: 'on-request' });
  const ref = await buy(first.method, await depositPayload(first.method, b, quote().price));
  const id = ref.reference.split(':')[0] as Hex;
  await first.method.charge(ref.reference, 60n);
  await first.settler.pass();
  // The facilitator is unreachable: the request is recorded (202 on the LAN endpoint), the pass cannot do it.
  const down = await parts({ refund: 'on-request', facilitatorUrl: 'http://127.0.0.1:9', timeoutMs: 1000 });
  const out = await down.method.requestRefund(await refundPayload(down.method, b, STEP_PRICE));
  assert.is(out.channel.refund.state, 'requested');
  assert.is(out.settlement, null);
  await down.settler.background.stop();
  const walletBefore = await usdc.balanceOf(b.wallet.address);
  // kill -9 and restart with the facilitator back: the request is still there, and the first pass does it.
  const restarted = await parts({ refund: 'on-request' });
  assert.is(restarted.store.get(id)?.refund?.state, 'requested');
  const pass = await restarted.settler.pass();
  assert.equal(
    pass.refunded.map((r) => r.amount),
    [(DEPOSIT - STEP_PRICE).toString()],
  );
  assert.is((await usdc.balanceOf(b.wallet.address)) - walletBefore, DEPOSIT - STEP_PRICE);
  assert.equal((await restarted.settler.pass()).refunded, [], 'once');
});

test(
  'a purchase that finds the channel held by a money step (the refund pass) waits for it, then buys; held past ' +
    'the wait: busy',
  async () => {
    // Seen in CI under load: the customer bought again while the refund pass after their session still held the
    // channel, and was refused busy ("your deposit pays for an access still running") although nothing ran.
    const { method } = await parts();
    const b = await newBuyer();
    const ref = await buy(method, await depositPayload(method, b, quote().price));
    const id = ref.reference.split(':')[0] as Hex;
    assert.is(await method.charge(ref.reference, 150n), 3n * STEP_PRICE);
    assert.ok(method.lockChannel(id), 'the settler takes the channel');
    const buying = buy(method, await voucherPayload(method, b, 3n * STEP_PRICE + quote().price));
    let done = false;
    void buying.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.is(done, false, 'the purchase waits while the channel is held');
    method.unlockChannel(id);
    const next = await buying;
    assert.is(next.reference, `${id.toLowerCase()}:${3n * STEP_PRICE + quote().price}`, 'bought once the pass let go');
  },
);

test.run();
