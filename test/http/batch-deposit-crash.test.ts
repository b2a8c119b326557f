// tier: chain
/**
 * A `batch-settlement` deposit payload pays for one purchase by one device, even across a kill -9 between
 * its /settle and its grant. The real daemon, @x402/fetch with @x402/evm's own client, @x402/evm's own facilitator on
 * anvil, reached through a proxy that places the kill: it forwards the deposit's /settle and holds the answer (the
 * money moved, sluice has not heard), or holds the /settle itself (nothing moved yet). The daemon is killed -9 there
 * and restarted; then a stranger on the same WiFi, who read the PAYMENT-SIGNATURE header (plain HTTP), sends it first:
 * 409 ERR_BATCH_CHANNEL_BUSY, no session, nothing moved. The customer's device sends the same payload: its session,
 * one deposit on chain. And a SIGTERM (procd's stop) while the facilitator holds the deposit's /settle answer: the
 * daemon exits within procd's 15 s window (its facilitator timeout is 120 s), and the restart resolves the purchase
 * exactly like a lost answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import { x402Client, wrapFetchWithPayment } from '@x402/fetch';
import { toClientEvmSigner } from '@x402/evm';
import { BatchSettlementEvmScheme } from '@x402/evm/batch-settlement/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployBatchStack, type BatchStack } from '../chain/batch.ts';
import type { HoldingProxy } from '../chain/holding-proxy.ts';
import { RIG_NETWORK, receiverAuthorizer, startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import {
  DEPOSIT,
  FUNDS,
  MAC,
  STEP_PRICE,
  STEPS,
  STRANGER_IP,
  STRANGER_MAC,
  channelOnChain,
  decodeHeader,
  lanRequest,
  type LanAnswer,
} from './batch-lan.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { batchSettlementSection, usdcPlanSection, x402Section } from '../helpers/uci-sections.ts';
import { stopsWithinWindow } from '../payments/stop-window.ts';

const test = suite("batch-settlement: kill -9 between a deposit's /settle and its grant");
const NET = RIG_NETWORK;
let chain: TestChain;
let usdc: TestToken;
let stack: BatchStack;
let receiver: Address;
let lab: DaemonLab;
let base: string;
/**
 * Between the daemon and the facilitator: holds the deposit's /settle, or its answer, where the test kills the daemon.
 */
let proxy: HoldingProxy;
let rig: ChainDaemon<BatchStack> | undefined;

test.before(async () => {
  rig = await startChainDaemon({
    deploy: deployBatchStack,
    facilitator: (chain) => ({ batchSettlement: { authorizer: chain.newAccount() } }),
    holdingProxy: true,
    clients: { [MAC]: '127.0.0.1', [STRANGER_MAC]: STRANGER_IP },
    // timeout 120 s: the held /settle is ended by the kill, never by the daemon giving up first.
    config: async ({ chain, usdc, facilitator, proxy }) => {
      receiver = chain.newAccount().address;
      return (
        usdcPlanSection({ asset: usdc.address, price: STEP_PRICE }) +
        batchSettlementSection({
          facilitatorUrl: proxy!.url,
          receiver,
          receiverAuthorizer: await receiverAuthorizer(facilitator),
          refund: 'on-request',
          timeoutS: 120,
        }) +
        x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address })
      );
    },
  });
  ({ chain, usdc, deployed: stack, lab, base } = rig);
  proxy = rig.proxy!;
});

test.after(async () => {
  await rig?.close();
});

const get = (path: string, headers: Record<string, string> = {}, localAddress?: string): Promise<LanAnswer> =>
  lanRequest(base, path, headers, undefined, localAddress);
const decode = decodeHeader;
const channel = (id: Hex): Promise<[bigint, bigint]> => channelOnChain(chain, stack, id);

/** A new customer: their wallet, @x402/fetch with @x402/evm's batch-settlement client, every header it sent. */
async function newCustomer() {
  const account = chain.newAccount();
  const voucherKey = chain.newAccount();
  await usdc.mint(account.address, FUNDS);
  const sent: string[] = [];
  const recording = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const header = input instanceof Request ? input.headers.get('payment-signature') : null;
    if (header) sent.push(header);
    return fetch(input, init);
  }) as typeof fetch;
  const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
  client.register(
    NET as never,
    new BatchSettlementEvmScheme(toClientEvmSigner(account as never, chain.publicClient as never), {
      voucherSigner: voucherKey as never,
    }) as never,
  );
  return { account, sent, pay: wrapFetchWithPayment(recording, client) as typeof fetch };
}

async function strangerSession(): Promise<unknown> {
  const s = await lab.callStatus('session', { mac: STRANGER_MAC });
  return s.status === 0 ? (s.data as Record<string, unknown>).session : null;
}

/**
 * The customer's deposit purchase; the proxy holds its /settle as `mode` says; kill -9 there; restart. Returns the
 * payload the customer's client sent (what the stranger read) and its channel.
 */
async function depositKilledAt(
  mode: 'answer-held' | 'settle-held',
  customer: Awaited<ReturnType<typeof newCustomer>>,
  signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL',
) {
  const reached = mode === 'answer-held' ? proxy.holdAnswer() : proxy.hold();
  const paying = customer.pay(`${base}/buy?plan=wifi&steps=${STEPS}`).then(
    (r) => `answered ${r.status}`,
    (err: unknown) => `failed: ${String(err)}`,
  );
  await reached;
  if (signal === 'SIGKILL') await lab.stopDaemon('SIGKILL');
  else await stopsWithinWindow(lab);
  // SIGTERM: the endpoint closes its connections as it stops, before the cut /settle could be answered.
  assert.match(await paying, /^failed/, 'the customer never heard back');
  const header = customer.sent.at(-1)!;
  const payload = decode(header).payload as { type: string; voucher: { channelId: Hex; maxClaimableAmount: string } };
  assert.is(payload.type, 'deposit');
  await lab.startDaemon();
  await lab.reconnectClient();
  return {
    header,
    channelId: payload.voucher.channelId.toLowerCase() as Hex,
    ceiling: payload.voucher.maxClaimableAmount,
  };
}

/**
 * Nothing moved: the channel's balance and claims, and the payer's wallet. Not the receiver's balance: a claim from an
 * earlier test's channel (its session ended, the settler's pass) may land at any moment and move it.
 */
async function stranger(header: string, what: string, payer: Address): Promise<void> {
  const before = { channel: await channel(decodeChannel(header)), payer: await usdc.balanceOf(payer) };
  const r = await get(`/buy?plan=wifi&steps=${STEPS}`, { 'payment-signature': header }, STRANGER_IP);
  assert.is(r.status, 409, `${what}: ${JSON.stringify(r.body)}`);
  assert.is(
    (r.body.error as Record<string, unknown> | undefined)?.code ?? r.body.code,
    'ERR_BATCH_CHANNEL_BUSY',
    `${what}: ${JSON.stringify(r.body)}`,
  );
  assert.is(await strangerSession(), null, `${what}: the stranger has no session`);
  assert.equal(
    { channel: await channel(decodeChannel(header)), payer: await usdc.balanceOf(payer) },
    before,
    `${what}: nothing moved`,
  );
}

function decodeChannel(header: string): Hex {
  return (decode(header).payload as { voucher: { channelId: Hex } }).voucher.channelId;
}

/** The customer's device sends the same payload again: its session, paid by that voucher; one deposit on chain. */
async function customerResends(header: string, channelId: Hex, ceiling: string, account: Address): Promise<void> {
  const r = await get(`/buy?plan=wifi&steps=${STEPS}`, { 'payment-signature': header });
  assert.is(r.status, 200, JSON.stringify(r.body));
  const session = r.body.session as Record<string, unknown>;
  assert.is(session.mac, MAC);
  assert.is((session.payments as Array<Record<string, unknown>>).at(-1)!.reference, `${channelId}:${ceiling}`);
  assert.equal(await channel(channelId), [DEPOSIT, 0n], 'one deposit, not two');
  assert.is(await usdc.balanceOf(account), FUNDS - DEPOSIT);
  assert.is(await strangerSession(), null);
  // The same payload from the stranger now: the voucher is on record (its channel is paying for the customer's
  // session).
  const again = await get(`/buy?plan=wifi&steps=${STEPS}`, { 'payment-signature': header }, STRANGER_IP);
  assert.ok(again.status === 402 || again.status === 409, JSON.stringify(again.body));
  assert.is(await strangerSession(), null);
  const t = await lab.callStatus('terminate', { mac: MAC });
  assert.is(t.status, 0, JSON.stringify(t.data));
  lab.portal.addClient(MAC, '127.0.0.1');
}

test(
  "kill -9 after the deposit landed, before the grant: the stranger's resend of the captured payload is refused; " +
    "the customer's device gets its session",
  async () => {
    const customer = await newCustomer();
    const { header, channelId, ceiling } = await depositKilledAt('answer-held', customer);
    // The money moved before the kill: the customer's deposit is in their channel, sluice had written no voucher.
    assert.equal(await channel(channelId), [DEPOSIT, 0n]);
    // The stranger's resend finds the money in the channel: it must not get the session the customer paid for.
    await stranger(header, 'the captured deposit payload', customer.account.address);
    // The restart asked whether it landed, and wrote down that it did.
    await lab.waitFor(
      () => /purchase intent after a restart.*landed/.test(lab.output),
      30_000,
      'the intent reconciled',
    );
    const table = JSON.parse(readFileSync(join(lab.dir, 'state', 'batch-channels.json'), 'utf8')) as {
      intents?: Array<Record<string, unknown>>;
    };
    const intent = table.intents?.find((i) => i.channelId === channelId);
    assert.ok(intent, JSON.stringify(table));
    assert.is(intent.mac, MAC);
    assert.is(intent.ceiling, ceiling);
    assert.type(intent.landedAt, 'number');
    await stranger(header, 'the same, once the restart knows the money landed', customer.account.address);
    await customerResends(header, channelId, ceiling, customer.account.address);
  },
);

test(
  "kill -9 while the deposit's /settle is out (nothing moved): the stranger's resend moves nothing; the " +
    "customer's resend deposits once and gets the session",
  async () => {
    const customer = await newCustomer();
    const { header, channelId, ceiling } = await depositKilledAt('settle-held', customer);
    assert.equal(await channel(channelId), [0n, 0n], 'nothing moved');
    // The stranger's resend could make the deposit land: it must not take the session the customer paid for.
    await stranger(header, 'the captured deposit payload', customer.account.address);
    // The restart asked: not landed, and the deposit may still land (its validBefore is ahead): the intent stands.
    await lab.waitFor(
      () => /purchase intent after a restart.*pending/.test(lab.output),
      30_000,
      'the intent reconciled',
    );
    await stranger(header, 'the same, once the restart has asked', customer.account.address);
    assert.is(await usdc.balanceOf(customer.account.address), FUNDS, "the customer's money is still theirs");
    await customerResends(header, channelId, ceiling, customer.account.address);
  },
);

test(
  "SIGTERM while the facilitator holds the deposit's /settle answer (timeout 120 s): the daemon exits within " +
    "procd's 15 s; the restart finds the money landed, the customer's resend gets its session, one deposit",
  async () => {
    const customer = await newCustomer();
    // Before the fix the stop waited out the 120 s exchange: procd would have killed it -9.
    const { header, channelId, ceiling } = await depositKilledAt('answer-held', customer, 'SIGTERM');
    assert.equal(await channel(channelId), [DEPOSIT, 0n], 'the money moved before the stop');
    await lab.waitFor(
      () => /purchase intent after a restart.*landed/.test(lab.output),
      30_000,
      'the intent reconciled',
    );
    await stranger(header, 'the captured deposit payload after a SIGTERM', customer.account.address);
    await customerResends(header, channelId, ceiling, customer.account.address);
  },
);

test.run();
