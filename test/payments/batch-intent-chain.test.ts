// tier: chain
/**
 * A `batch-settlement` deposit's purchase intent, driven through the method on anvil with @x402/evm's own
 * facilitator and client functions (the daemon's kill -9 in the window is test/http/batch-deposit-crash.test.ts).
 * The grant's write fails after the deposit landed (the flash, or a crash: nothing after /settle reached the table
 * but the intent); a fresh process (the restart) asks, finds the money, and binds the purchase to its device; a
 * landed intent its device never comes back for is recorded without a session after INTENT_LANDED_KEEP_MS, which frees
 * the channel for the customer's other devices and leaves the payload a replay for everyone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  computeChannelId,
  createBatchSettlementEIP3009DepositPayload,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack, type BatchStack } from '../chain/batch.ts';
import type { TestFacilitator } from '../chain/facilitator.ts';
import { startChainFacilitator, type ChainFacilitator } from '../chain/daemon-rig.ts';
import { BatchChannelStore } from '../../src/payments/batch-settlement/batch-channels.ts';
import type { Quote } from '../../src/payments/index.ts';
import { BatchSettlementMethod } from '../../src/payments/batch-settlement/x402-batch.ts';
import type { BatchSettlementConfig } from '../../src/payments/batch-settlement/x402-batch.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import { INTENT_LANDED_KEEP_MS } from '../../src/payments/batch-settlement/x402-batch-intent.ts';
import { SluiceError } from '../../src/errors.ts';
import { removeTempDir } from '../helpers/temp.ts';

const test = suite('batch-settlement purchase intents on a real chain');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const DEPOSIT = 1_000_000n;
const FUNDS = 5_000_000n;
const CUSTOMER = '02:00:00:00:00:01';
const STRANGER = '02:00:00:00:00:66';

let chain: TestChain;
let usdc: TestToken;
let stack: BatchStack;
let facilitator: TestFacilitator;
let authorizer: PrivateKeyAccount;
let receiver: Address;
let dir: string;
let rig: ChainFacilitator<BatchStack> | undefined;
let now = Date.now();
const clock = { now: () => now };

function quote(): Quote {
  return {
    plan: 'wifi',
    metric: 'seconds',
    steps: STEPS,
    allotment: STEPS * 60n,
    price: STEPS * STEP_PRICE,
    asset: usdc.address.toLowerCase(),
    currency: 'USDC',
    decimals: 6,
    stepSize: 60n,
    pricePerStep: STEP_PRICE,
  };
}

function settings(): BatchSettlementConfig {
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
  };
}

/** A process: the table read from flash, the method over it. */
async function open() {
  const store = await BatchChannelStore.open(dir);
  return { store, method: new BatchSettlementMethod(settings(), { store, clock, mirrorFreshMs: 0 }) };
}

function ctx(payload: unknown, mac: string): PaymentContext {
  return { quote: quote(), request: { mac, payment: { method: 'batch-settlement', payload } }, now };
}

async function buy(method: BatchSettlementMethod, payload: unknown, mac: string) {
  const c = ctx(payload, mac);
  await method.precheck(c);
  return method.authorize(c);
}

async function refusal(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, SluiceError);
    return err as SluiceError;
  }
  return assert.unreachable('expected a refusal') as never;
}

async function channelOnChain(id: Hex): Promise<[bigint, bigint]> {
  return (await chain.publicClient.readContract({
    address: BATCH_SETTLEMENT_ADDRESS,
    abi: stack.abi,
    functionName: 'channels',
    args: [id],
  })) as [bigint, bigint];
}

test.before(async () => {
  rig = await startChainFacilitator({
    deploy: deployBatchStack,
    facilitator: (chain) => ({ batchSettlement: { authorizer: (authorizer = chain.newAccount()) } }),
  });
  ({ chain, usdc, deployed: stack, facilitator } = rig);
  receiver = chain.newAccount().address;
});

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-batch-intent-'));
});
test.after.each(() => {
  removeTempDir(dir);
});
test.after(async () => {
  await rig?.close();
});

/**
 * A new customer's deposit (its channel's salt ends in `saltDigit`) through a first process whose grant write fails
 * after /settle: the money moved, only the intent reached the table. Returns the refusal that process gave.
 */
async function landedWithoutGrant(saltDigit: string) {
  const wallet = chain.newAccount();
  await usdc.mint(wallet.address, FUNDS);
  const voucherKey = chain.newAccount();
  const config = {
    payer: wallet.address,
    payerAuthorizer: voucherKey.address,
    receiver,
    receiverAuthorizer: authorizer.address,
    token: usdc.address,
    withdrawDelay: 900,
    salt: `0x${'0'.repeat(63)}${saltDigit}`,
  };
  const id = computeChannelId(config as never, NET).toLowerCase() as Hex;
  const first = await open();
  const req = first.method.requirements(usdc.address, quote().price);
  const deposit = await createBatchSettlementEIP3009DepositPayload(
    wallet as never,
    2,
    req as never,
    config as never,
    DEPOSIT.toString(),
    quote().price.toString(),
    voucherKey as never,
  );
  const payload = { x402Version: 2, accepted: req, payload: deposit.payload };
  // The deposit lands; the write that would record the voucher fails (after /settle nothing reached the table).
  const put = first.store.put.bind(first.store);
  first.store.put = async () => {
    throw new SluiceError('ERR_BATCH_STORE', 'flash gone (test)');
  };
  const refused = await refusal(buy(first.method, payload, CUSTOMER));
  first.store.put = put;
  return { wallet, voucherKey, config, id, req, payload, refused };
}

test(
  'a landed deposit whose grant was never written: the stranger is refused, the device gets it; unclaimed, ' +
    'recorded after the keep window and the channel freed',
  async () => {
    const { wallet, voucherKey, config, id, req, payload, refused } = await landedWithoutGrant('7');
    assert.is(refused.code, 'ERR_BATCH_STORE');
    assert.equal(await channelOnChain(id), [DEPOSIT, 0n], 'the money moved');

    // The restart: the intent is on flash, with the device that sent it; asked, the money is there.
    const second = await open();
    assert.is(second.store.get(id), undefined, 'no channel record');
    assert.is(second.store.intent(id)?.mac, CUSTOMER);
    assert.is(second.store.intent(id)?.landedAt, undefined);
    await second.method.reconcileIntents();
    assert.is(second.store.intent(id)?.landedAt, now);
    const busy = await refusal(buy(second.method, payload, STRANGER));
    assert.is(busy.code, 'ERR_BATCH_CHANNEL_BUSY');
    assert.is(busy.details?.pending, 'another-device');
    assert.is(second.store.get(id), undefined, "the stranger's try wrote nothing");

    // The keep window passes without the device: the next try by another device records the voucher, no session.
    now += INTENT_LANDED_KEEP_MS + 1;
    const later = await refusal(buy(second.method, payload, STRANGER));
    assert.is(later.code, 'ERR_BATCH_CUMULATIVE_MISMATCH', 'the payload is now a replay below the floor');
    assert.is(second.store.intent(id), undefined);
    const r = second.store.get(id)!;
    assert.equal(
      { signedMax: r.signedMax, charged: r.charged, open: r.open, balance: r.balance, idleSince: r.idleSince },
      { signedMax: quote().price, charged: 0n, open: undefined, balance: DEPOSIT, idleSince: now },
    );
    // Also from the customer's own device: the same payload is a replay now (its client re-syncs from the 402).
    assert.is((await refusal(buy(second.method, payload, CUSTOMER))).code, 'ERR_BATCH_CUMULATIVE_MISMATCH');
    // The channel is free: the customer's other device pays with a new voucher one unit above; nothing moved but that.
    const voucher = await signVoucher(voucherKey as never, id, (quote().price + 1n).toString(), NET);
    const ref = await buy(
      second.method,
      { x402Version: 2, accepted: req, payload: { type: 'voucher', channelConfig: config, voucher } },
      STRANGER,
    );
    assert.is(ref.reference, `${id}:${quote().price + 1n}`);
    assert.is(second.store.get(id)?.open?.mac, STRANGER);
    assert.equal(await channelOnChain(id), [DEPOSIT, 0n], 'one deposit');
    assert.is(await usdc.balanceOf(wallet.address), FUNDS - DEPOSIT);
  },
);

test(
  'a landed intent, its device sends the same payload again: granted once to it, the intent gone in the same ' +
    'write',
  async () => {
    const { id, payload } = await landedWithoutGrant('8');
    const second = await open();
    await second.method.reconcileIntents();
    const ref = await buy(second.method, payload, CUSTOMER);
    assert.is(ref.reference, `${id}:${quote().price}`);
    assert.is(second.store.get(id)?.open?.mac, CUSTOMER);
    assert.is(second.store.intent(id), undefined);
    const third = await open();
    assert.is(third.store.intent(id), undefined, 'gone on flash too');
    assert.is(third.store.get(id)?.open?.reference, ref.reference);
    assert.equal(await channelOnChain(id), [DEPOSIT, 0n], 'one deposit');
    assert.is(
      (await refusal(buy(third.method, payload, STRANGER))).code,
      'ERR_BATCH_CHANNEL_BUSY',
      'its session holds the channel',
    );
  },
);

test.run();
