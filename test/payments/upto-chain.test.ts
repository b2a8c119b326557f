// tier: chain
/**
 * x402 `upto` against real peers: anvil with Permit2 and the x402 upto proxy at their canonical addresses (test
 * contracts written from the spec, test/chain/Upto.sol), @x402/evm's OWN upto facilitator scheme over the standard
 * HTTP API, and @x402/evm's OWN upto client scheme signing the authorizations. sluice's method is driven directly.
 * Balances are checked to the unit: the seller gets exactly the metered price, the buyer keeps the rest, zero usage
 * moves nothing; refusals move nothing; a kill -9 between the settle intent and /settle settles once after restart.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { maxUint256, type Address, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, deployUptoStack, type UptoStack } from '../chain/upto.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { UptoStore } from '../../src/x402/index.ts';
import type { UptoConfig } from '../../src/config/index.ts';
import type { Quote } from '../../src/payments/index.ts';
import { UptoMethod } from '../../src/payments/upto/x402-upto.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { SluiceError } from '../../src/errors.ts';

const test = suite('upto on a real chain');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n; // 0.01 USDC per 60 s step
const STEPS = 10n; // the ceiling: 10 steps = 0.10 USDC
const FUNDS = 5_000_000n;

let chain: TestChain;
let usdc: TestToken;
let stack: UptoStack;
let facilitator: TestFacilitator;
let payTo: Address;
let dir: string;

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

function settings(over: Partial<UptoConfig> = {}): UptoConfig {
  return {
    enabled: true,
    network: NET,
    chainId: chain.chainId,
    facilitatorUrl: facilitator.url,
    payTo: payTo.toLowerCase(),
    maxTimeoutSeconds: 3600,
    timeoutMs: 15_000,
    ...over,
  };
}

async function parts(over: Partial<UptoConfig> = {}, storeDir = dir) {
  const store = await UptoStore.open(storeDir);
  const method = new UptoMethod(settings(over), { store });
  return { store, method };
}

async function newBuyer(approve = true): Promise<PrivateKeyAccount> {
  const wallet = chain.newAccount();
  await usdc.mint(wallet.address, FUNDS);
  await chain.fund(wallet.address);
  if (approve) {
    // Permit2's one-time approval, as a wallet does before its first Permit2 payment.
    const hash = await chain.wallet(wallet).writeContract({
      address: usdc.address,
      abi: usdc.abi,
      functionName: 'approve',
      args: [PERMIT2_ADDRESS, maxUint256],
    });
    await chain.publicClient.waitForTransactionReceipt({ hash });
  }
  return wallet;
}

/**
 * @x402/evm's client builds the payload from the requirements sluice offers; `accepted` is what @x402/core's client
 * adds.
 */
async function payload(method: UptoMethod, buyer: PrivateKeyAccount, over: Record<string, unknown> = {}, q = quote()) {
  const req = { ...method.requirements(usdc.address, q.price), ...over };
  const r = await new UptoEvmScheme(buyer as never).createPaymentPayload(2, req as never);
  return { x402Version: 2, accepted: req, payload: r.payload as Record<string, unknown> };
}

function ctx(p: unknown, q = quote(), mac = '02:00:00:00:00:01'): PaymentContext {
  return { quote: q, request: { mac, payment: { method: 'upto', payload: p } }, now: Date.now() };
}

async function buy(method: UptoMethod, p: unknown, q = quote()) {
  const c = ctx(p, q);
  const pre = await method.precheck(c);
  const ref = await method.authorize(c);
  assert.is(ref.reference, pre.reference);
  return ref;
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: unknown }> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, SluiceError);
    const e = err as SluiceError;
    return { code: e.code, reason: (e.details as Record<string, unknown> | undefined)?.reason };
  }
  return assert.unreachable('expected a refusal') as never;
}

async function revertOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return String((err as Error).message);
  }
  return assert.unreachable('expected a revert') as never;
}

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  stack = await deployUptoStack(chain);
  facilitator = await startFacilitator(chain, { upto: true });
  payTo = chain.newAccount().address;
});

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upto-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.after(async () => {
  await facilitator?.stop();
  await chain?.stop();
});

test("/supported decides: upto is offered with the facilitator's address, only on the configured network", async () => {
  const { method } = await parts();
  assert.ok(await method.refreshSupported());
  const req = method.requirements(usdc.address, 100n);
  assert.is((req.extra as Record<string, unknown>).facilitatorAddress, facilitator.account.address.toLowerCase());
  assert.is((req.extra as Record<string, unknown>).assetTransferMethod, 'permit2');
  const other = await parts({ network: 'eip155:8453' });
  assert.not.ok(await other.method.refreshSupported(), 'the facilitator serves upto on 84532 only');
  const b = await newBuyer();
  const p = await payload(method, b);
  assert.is(
    (await refusal(other.method.precheck(ctx({ ...p, accepted: { ...p.accepted, network: 'eip155:8453' } })))).code,
    'ERR_X402_SCHEME_UNSUPPORTED',
  );
});

test(
  'one authorization of the ceiling; at the end the seller gets exactly the metered price, once; the buyer keeps ' +
    'the rest',
  async () => {
    const { method, store } = await parts();
    await method.refreshSupported();
    const b = await newBuyer();
    const before = { buyer: await usdc.balanceOf(b.address), seller: await usdc.balanceOf(payTo) };
    const ref = await buy(method, await payload(method, b));
    assert.is(store.get(ref.reference)?.state, 'open', 'the authorization is on flash before the grant');
    assert.is(await usdc.balanceOf(b.address), before.buyer, 'authorizing moves nothing');

    // 150 s used of a 600 s ceiling: 3 steps.
    const settled = await method.settle(ref.reference, 150n);
    assert.is(settled.status, 'settled');
    assert.is(await usdc.balanceOf(payTo), before.seller + 3n * STEP_PRICE);
    assert.is(await usdc.balanceOf(b.address), before.buyer - 3n * STEP_PRICE);
    assert.is(store.get(ref.reference)?.state, 'settled');
    assert.equal(await method.settle(ref.reference, 150n), { status: 'none' }, 'a second end settles nothing');
    assert.is(await usdc.balanceOf(payTo), before.seller + 3n * STEP_PRICE);

    // Used past the ceiling (the meter overshot by a tick): never more than the ceiling.
    const ref2 = await buy(method, await payload(method, b));
    await method.settle(ref2.reference, 10_000n);
    assert.is(await usdc.balanceOf(payTo), before.seller + 3n * STEP_PRICE + quote().price);
    assert.is(await usdc.balanceOf(b.address), before.buyer - 3n * STEP_PRICE - quote().price);
  },
);

test('zero usage settles nothing: no /settle, no transaction, no balance moves', async () => {
  const { method, store } = await parts();
  await method.refreshSupported();
  const b = await newBuyer();
  const before = { buyer: await usdc.balanceOf(b.address), seller: await usdc.balanceOf(payTo) };
  const ref = await buy(method, await payload(method, b));
  const settles = facilitator.calls.settle;
  assert.equal(await method.settle(ref.reference, 0n), { status: 'settled', amount: 0n, transaction: null });
  assert.is(facilitator.calls.settle, settles);
  assert.is(store.get(ref.reference)?.state, 'settled');
  assert.is(await usdc.balanceOf(b.address), before.buyer);
  assert.is(await usdc.balanceOf(payTo), before.seller);
});

test(
  'refused with a clear code and nothing moved: over the ceiling, wrong spender, forged, expiring, replayed, no ' +
    'allowance, a spent nonce',
  async () => {
    const { method, store } = await parts();
    await method.refreshSupported();
    const b = await newBuyer();
    const before = { buyer: await usdc.balanceOf(b.address), seller: await usdc.balanceOf(payTo) };

    const over = await payload(method, b, { amount: (quote().price + 1n).toString() });
    assert.equal(await refusal(method.precheck(ctx(over))), {
      code: 'ERR_UPTO_AUTHORIZATION_INVALID',
      reason: 'permit2_amount_mismatch',
    });

    const good = await payload(method, b);
    const auth = good.payload.permit2Authorization as Record<string, unknown>;
    const wrongSpender = {
      ...good,
      payload: { ...good.payload, permit2Authorization: { ...auth, spender: PERMIT2_ADDRESS } },
    };
    assert.equal(await refusal(method.precheck(ctx(wrongSpender))), {
      code: 'ERR_UPTO_AUTHORIZATION_INVALID',
      reason: 'invalid_permit2_spender',
    });

    const raised = {
      ...good,
      payload: {
        ...good.payload,
        permit2Authorization: { ...auth, nonce: (BigInt(auth.nonce as string) + 1n).toString() },
      },
    };
    assert.equal(await refusal(method.precheck(ctx(raised))), {
      code: 'ERR_UPTO_AUTHORIZATION_INVALID',
      reason: 'invalid_permit2_signature',
    });
    const mallory = chain.newAccount();
    const forged = await payload(method, mallory);
    const forgedAsB = {
      ...forged,
      payload: {
        ...forged.payload,
        permit2Authorization: { ...(forged.payload.permit2Authorization as Record<string, unknown>), from: b.address },
      },
    };
    assert.equal(await refusal(method.precheck(ctx(forgedAsB))), {
      code: 'ERR_UPTO_AUTHORIZATION_INVALID',
      reason: 'invalid_permit2_signature',
    });

    const short = await payload(method, b, { maxTimeoutSeconds: 300 });
    assert.equal(await refusal(method.precheck(ctx(short))), {
      code: 'ERR_UPTO_AUTHORIZATION_INVALID',
      reason: 'permit2_deadline_expired',
    });

    const ref = await buy(method, good);
    assert.is((await refusal(method.precheck(ctx(good)))).code, 'ERR_UPTO_REPLAYED');
    await method.settle(ref.reference, 60n);
    const afterOne = before.seller + STEP_PRICE;
    assert.is(await usdc.balanceOf(payTo), afterOne);

    // The same authorization at a router that lost its table: the chain has spent the nonce, /verify says so.
    const amnesiac = await parts({}, mkdtempSync(join(tmpdir(), 'sluice-upto-')));
    await amnesiac.method.refreshSupported();
    const spent = await refusal(amnesiac.method.authorize(ctx(good)));
    assert.is(spent.code, 'ERR_UPTO_VERIFY_REJECTED');

    const unapproved = await newBuyer(false);
    const noAllowance = await refusal(method.authorize(ctx(await payload(method, unapproved))));
    assert.equal(noAllowance, { code: 'ERR_UPTO_VERIFY_REJECTED', reason: 'permit2_allowance_required' });

    assert.is(await usdc.balanceOf(payTo), afterOne, 'no refusal moved money');
    assert.is(await usdc.balanceOf(b.address), before.buyer - STEP_PRICE);
    assert.is(await usdc.balanceOf(unapproved.address), FUNDS);
    assert.is(store.list().length, 1, 'only the accepted authorization is on flash');
  },
);

test('kill -9 between the settle intent and /settle: after the restart it settles exactly once', async () => {
  const { method } = await parts();
  await method.refreshSupported();
  const b = await newBuyer();
  const before = { buyer: await usdc.balanceOf(b.address), seller: await usdc.balanceOf(payTo) };
  const ref = await buy(method, await payload(method, b));
  const settles = facilitator.calls.settle;

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./upto-kill-child.ts', import.meta.url).pathname],
    {
      env: {
        ...process.env,
        SLUICE_UPTO_DIR: dir,
        SLUICE_UPTO_REF: ref.reference,
        SLUICE_UPTO_USED: '250',
        SLUICE_UPTO_CONFIG: JSON.stringify(settings()),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, sig) => resolve(sig)),
  );
  assert.is(signal, 'SIGKILL');
  assert.is(facilitator.calls.settle, settles, 'the facilitator never heard of it');
  assert.is(await usdc.balanceOf(payTo), before.seller);

  const restarted = await parts();
  const r = restarted.store.get(ref.reference);
  assert.is(r?.state, 'settling', 'the intent survived the kill');
  assert.is(r?.amount, (5n * STEP_PRICE).toString(), '250 s = 5 steps');
  await restarted.method.retryPending();
  assert.is(restarted.store.get(ref.reference)?.state, 'settled');
  await restarted.method.retryPending();
  assert.equal(await restarted.method.settle(ref.reference, 250n), { status: 'none' });
  assert.is(await usdc.balanceOf(payTo), before.seller + 5n * STEP_PRICE, 'settled exactly once');
  assert.is(await usdc.balanceOf(b.address), before.buyer - 5n * STEP_PRICE);
});

test(
  'the test contracts revert as the spec says: over the maximum, another facilitator, an expired deadline, a ' +
    'replayed nonce',
  async () => {
    const { method } = await parts();
    await method.refreshSupported();
    const b = await newBuyer();
    const p = await payload(method, b);
    const a = p.payload.permit2Authorization as {
      permitted: { token: Address; amount: string };
      nonce: string;
      deadline: string;
      from: Address;
      witness: { to: Address; facilitator: Address; validAfter: string };
    };
    const args = (amount: bigint) =>
      [
        {
          permitted: { token: a.permitted.token, amount: BigInt(a.permitted.amount) },
          nonce: BigInt(a.nonce),
          deadline: BigInt(a.deadline),
        },
        amount,
        a.from,
        { to: a.witness.to, facilitator: a.witness.facilitator, validAfter: BigInt(a.witness.validAfter) },
        p.payload.signature as Hex,
      ] as const;
    const call = (from: PrivateKeyAccount, amount: bigint) =>
      chain.publicClient.simulateContract({
        address: UPTO_PROXY_ADDRESS,
        abi: [...stack.proxyAbi, ...stack.permit2Abi],
        functionName: 'settle',
        args: args(amount) as never,
        account: from,
      });
    assert.match(await revertOf(call(facilitator.account, BigInt(a.permitted.amount) + 1n)), 'AmountExceedsPermitted');
    assert.match(await revertOf(call(b, 1n)), 'UnauthorizedFacilitator');
    const hash = await facilitator.inTurn(() =>
      chain.wallet(facilitator.account).writeContract({
        address: UPTO_PROXY_ADDRESS,
        abi: stack.proxyAbi,
        functionName: 'settle',
        args: args(5n) as never,
      }),
    );
    await chain.publicClient.waitForTransactionReceipt({ hash });
    assert.match(await revertOf(call(facilitator.account, 5n)), 'InvalidNonce');
    // Last in the file: chain time moves on for good.
    const fresh = await payload(method, b);
    const f = fresh.payload.permit2Authorization as typeof a;
    await chain.increaseTime(7200);
    const expired = chain.publicClient.simulateContract({
      address: UPTO_PROXY_ADDRESS,
      abi: [...stack.proxyAbi, ...stack.permit2Abi],
      functionName: 'settle',
      account: facilitator.account,
      args: [
        {
          permitted: { token: f.permitted.token, amount: BigInt(f.permitted.amount) },
          nonce: BigInt(f.nonce),
          deadline: BigInt(f.deadline),
        },
        1n,
        f.from,
        { to: f.witness.to, facilitator: f.witness.facilitator, validAfter: BigInt(f.witness.validAfter) },
        fresh.payload.signature as Hex,
      ] as never,
    });
    assert.match(await revertOf(expired), 'SignatureExpired');
  },
);

test.run();
