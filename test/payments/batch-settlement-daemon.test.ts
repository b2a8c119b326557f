// tier: chain
/**
 * `batch-settlement` through the real daemon: `ubus call sluice purchase` with a deposit payload signed by
 * @x402/evm's own client → @x402/evm's own facilitator deposits on anvil (the scheme's contracts from
 * test/chain/BatchSettlement.sol at the canonical addresses) → the gate opens; kill -9 and restart: the session and
 * its voucher survive; terminate → the session is charged its metered steps, claimed, settled and the rest refunded
 * (refund at-end). The receiver gets exactly the metered price and the buyer exactly the rest.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import {
  computeChannelId,
  createBatchSettlementEIP3009DepositPayload,
  signVoucher,
} from '@x402/evm/batch-settlement/client';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack, type BatchStack } from '../chain/batch.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { DaemonLab } from '../daemon/harness.ts';

const test = suite('batch-settlement through the daemon');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const DEPOSIT = 1_000_000n;
const FUNDS = 5_000_000n;
let chain: TestChain;
let usdc: TestToken;
let stack: BatchStack;
let facilitator: TestFacilitator;
let receiver: Address;
let lab: DaemonLab;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  stack = await deployBatchStack(chain);
  const authorizer = chain.newAccount();
  facilitator = await startFacilitator(chain, { batchSettlement: { authorizer } });
  receiver = chain.newAccount().address;
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${STEP_PRICE}'
\toption asset '${usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${facilitator.url}'
\toption network '${NET}'
\toption receiver '${receiver}'
\toption receiver_authorizer '${authorizer.address}'
\toption withdraw_delay '900'
\toption refund 'at-end'
\toption token_name 'USDC'
\toption token_version '2'
`,
  });
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await facilitator?.stop();
  await chain?.stop();
});

test(
  'deposit → gate open → kill -9 → terminate: charged ' + 'the metered steps, the rest refunded, to the unit',
  async () => {
    const buyer = chain.newAccount();
    const voucherKey = chain.newAccount();
    await usdc.mint(buyer.address, FUNDS);
    const mac = '02:00:00:00:0c:01';
    lab.portal.addClient(mac, '10.0.2.1');
    const price = STEPS * STEP_PRICE;
    const requirements = {
      scheme: 'batch-settlement',
      network: NET,
      amount: price.toString(),
      asset: usdc.address,
      payTo: receiver,
      maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: await facilitatorAuthorizer(), withdrawDelay: 900, name: 'USDC', version: '2' },
    };
    const config = {
      payer: buyer.address,
      payerAuthorizer: voucherKey.address,
      receiver,
      receiverAuthorizer: requirements.extra.receiverAuthorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}` as Hex,
    };
    const built = await createBatchSettlementEIP3009DepositPayload(
      buyer as never,
      2,
      requirements as never,
      config as never,
      DEPOSIT.toString(),
      price.toString(),
      voucherKey as never,
    );
    const r = await lab.callStatus('purchase', {
      mac,
      plan: 'wifi',
      steps: String(STEPS),
      payment: {
        method: 'batch-settlement',
        payload: { x402Version: 2, accepted: requirements, payload: built.payload },
      },
    } as never);
    assert.is(r.status, 0, JSON.stringify(r.data));
    const channelId = computeChannelId(config as never, NET).toLowerCase();
    const session = r.data!.session as Record<string, unknown>;
    assert.is(
      session.allotment,
      String(STEPS * 60n),
      "the ceiling buys the quote's allotment: the gate cannot run past it",
    );
    assert.is((session.payments as Array<Record<string, unknown>>)[0]!.reference, `${channelId}:${price}`);
    await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');
    assert.is(await usdc.balanceOf(buyer.address), FUNDS - DEPOSIT, 'the deposit went into the channel');

    await lab.stopDaemon('SIGKILL');
    await lab.startDaemon();
    assert.is((await lab.session(mac)).state, 'ACTIVE', 'the session came back');
    // Some time used, so the charge below is a real partial one (not zero): awaited, not left to how slow the run is.
    await lab.waitFor(
      async () => BigInt(String((await lab.session(mac)).used)) > 0n,
      30_000,
      'a second of the session used',
    );

    const t = await lab.callStatus('terminate', { mac });
    assert.is(t.status, 0, JSON.stringify(t.data));
    const ended = t.data!.session as Record<string, unknown>;
    const used = BigInt(String(ended.used));
    const charge = ((used + 59n) / 60n) * STEP_PRICE;
    assert.ok(charge > 0n && charge <= price);
    // The pass runs within the claim batch window after the charge: wait for the chain to show it.
    await lab.waitFor(
      async () => (await usdc.balanceOf(buyer.address)) === FUNDS - charge,
      60_000,
      'refund of the rest',
    );
    assert.is(await usdc.balanceOf(receiver), charge, 'the receiver got exactly the metered price');
    const [balance, totalClaimed] = (await chain.publicClient.readContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'channels',
      args: [channelId as Hex],
    })) as [bigint, bigint];
    assert.equal([balance, totalClaimed], [charge, charge]);

    // ubus batch_channel: what the pay page shows; batch_refund: only the channel's own voucher key. The router writes
    // the refund done once the facilitator's answer is in, a moment after the chain shows it (seen late at load 10).
    await lab.waitFor(
      async () =>
        (
          (await lab.callStatus('batch_channel', { channel: channelId })).data?.channel as
            Record<string, any> | undefined
        )?.refund?.state === 'done',
      60_000,
      'the refund written done',
    );
    const view = await lab.callStatus('batch_channel', { channel: channelId });
    assert.is(view.status, 0, JSON.stringify(view.data));
    const ch = view.data!.channel as Record<string, unknown>;
    assert.equal(
      [ch.charged, ch.balance, ch.claimed, ch.available, ch.session_open, ch.refund_policy],
      [String(charge), String(charge), String(charge), '0', false, 'at-end'],
    );
    assert.equal(
      { ...(ch.refund as Record<string, unknown>), transaction: '', done_at: 0 },
      { state: 'done', amount: String(DEPOSIT - charge), transaction: '', done_at: 0 },
    );
    const refund = async (signer: ReturnType<TestChain['newAccount']>) =>
      lab.callStatus('batch_refund', {
        payload: {
          x402Version: 2,
          accepted: { ...requirements, amount: '0' },
          payload: {
            type: 'refund',
            channelConfig: config,
            voucher: await signVoucher(signer as never, channelId as Hex, charge.toString(), NET),
          },
        },
      } as never);
    const stranger = await refund(chain.newAccount());
    assert.is(
      (stranger.data!.error as Record<string, unknown>).code,
      'ERR_BATCH_REFUND_FORBIDDEN',
      JSON.stringify(stranger.data),
    );
    assert.is(stranger.status, 6, 'PERMISSION_DENIED');
    const own = await refund(voucherKey);
    assert.is(own.status, 0, JSON.stringify(own.data));
    assert.is(own.data!.refunded, true, 'already refunded: the done state, nothing moves again');
    assert.is(await usdc.balanceOf(buyer.address), FUNDS - charge);
    const unknown = await lab.callStatus('batch_channel', { channel: `0x${'cd'.repeat(32)}` });
    assert.is((unknown.data!.error as Record<string, unknown>).code, 'ERR_BATCH_CHANNEL_UNKNOWN');
  },
);

test(
  'kill -9, the customer starts a timed withdrawal while sluice is down: at start the session ends and its ' +
    'charge is claimed in time',
  async () => {
    const buyer = chain.newAccount();
    const voucherKey = chain.newAccount();
    await usdc.mint(buyer.address, FUNDS);
    await chain.fund(voucherKey.address);
    const mac = '02:00:00:00:0c:02';
    lab.portal.addClient(mac, '10.0.2.2');
    const price = STEPS * STEP_PRICE;
    const requirements = {
      scheme: 'batch-settlement',
      network: NET,
      amount: price.toString(),
      asset: usdc.address,
      payTo: receiver,
      maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: await facilitatorAuthorizer(), withdrawDelay: 900, name: 'USDC', version: '2' },
    };
    const config = {
      payer: buyer.address,
      payerAuthorizer: voucherKey.address,
      receiver,
      receiverAuthorizer: requirements.extra.receiverAuthorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(63)}2` as Hex,
    };
    const built = await createBatchSettlementEIP3009DepositPayload(
      buyer as never,
      2,
      requirements as never,
      config as never,
      DEPOSIT.toString(),
      price.toString(),
      voucherKey as never,
    );
    const r = await lab.callStatus('purchase', {
      mac,
      plan: 'wifi',
      steps: String(STEPS),
      payment: {
        method: 'batch-settlement',
        payload: { x402Version: 2, accepted: requirements, payload: built.payload },
      },
    } as never);
    assert.is(r.status, 0, JSON.stringify(r.data));
    const channelId = computeChannelId(config as never, NET).toLowerCase() as Hex;
    await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');
    await lab.waitFor(
      async () => BigInt(String((await lab.session(mac)).used)) > 0n,
      30_000,
      'a second of the session used',
    );
    const receiverBefore = await usdc.balanceOf(receiver);

    await lab.stopDaemon('SIGKILL');
    // While sluice is down the customer starts the withdrawal of the whole deposit (nothing is claimed yet).
    const start = await chain.wallet(voucherKey).writeContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'initiateWithdraw',
      args: [config as never, DEPOSIT],
    });
    assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: start })).status, 'success');
    await lab.startDaemon();

    // The watch's first check at start sees it: the session ends at once (not at its 600 s allotment).
    await lab.waitFor(
      async () => (await lab.session(mac)).state !== 'ACTIVE',
      60_000,
      'the session ended by the withdrawal watch',
    );
    const ended = await lab.session(mac);
    assert.is(ended.end_cause, 'admin', JSON.stringify(ended));
    const used = BigInt(String(ended.used));
    const charge = ((used + 59n) / 60n) * STEP_PRICE;
    assert.ok(charge > 0n && charge < price, `a partial session: ${used} s`);
    await lab.waitFor(
      async () => (await usdc.balanceOf(receiver)) - receiverBefore === charge,
      60_000,
      'the claim and settle of the charge',
    );
    const [, claimed] = (await chain.publicClient.readContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'channels',
      args: [channelId],
    })) as [bigint, bigint];
    assert.is(claimed, charge, "claimed before the withdrawal can finalize (the chain's clock has not moved)");
    assert.match(lab.output, /customer started a timed withdrawal/);

    // The delay passes; the customer finalizes: whatever is not claimed is theirs (refund at-end gave most of it back).
    await chain.increaseTime(901);
    const fin = await chain.wallet(voucherKey).writeContract({
      address: BATCH_SETTLEMENT_ADDRESS,
      abi: stack.abi,
      functionName: 'finalizeWithdraw',
      args: [config as never],
    });
    assert.is((await chain.publicClient.waitForTransactionReceipt({ hash: fin })).status, 'success');
    assert.is(await usdc.balanceOf(buyer.address), FUNDS - charge, 'the buyer got exactly the rest');
    assert.is((await usdc.balanceOf(receiver)) - receiverBefore, charge, 'the receiver exactly the metered price');
  },
);

/** The facilitator's advertised receiverAuthorizer (GET /supported), as a server configures it. */
async function facilitatorAuthorizer(): Promise<Address> {
  const s = (await (await fetch(`${facilitator.url}/supported`)).json()) as {
    kinds: Array<{ scheme: string; extra?: { receiverAuthorizer?: Address } }>;
  };
  const kind = s.kinds.find((k) => k.scheme === 'batch-settlement');
  if (!kind?.extra?.receiverAuthorizer) throw new Error('no receiverAuthorizer in /supported');
  return kind.extra.receiverAuthorizer;
}

test.run();
