// tier: chain
/**
 * `batch-settlement` on the LAN endpoint with stock x402 peers: the 402 offers the scheme beside `exact`;
 * @x402/fetch with @x402/evm's own batch-settlement client scheme deposits and signs the first voucher (one request),
 * @x402/evm's own facilitator deposits on anvil, the daemon answers 200 with the scheme's PAYMENT-RESPONSE and the
 * caller's MAC gets the session; at its end the receiver gets exactly the metered price. The same client returns: its
 * local state cannot know the metered charge, so sluice answers the spec's corrective 402, the client re-syncs from
 * it and pays by a voucher alone (no deposit). A voucher over the channel's balance is refused and moves nothing.
 * A running session is topped up by a voucher alone. GET /batch/channel shows the channel; a refund request signed
 * by another key is refused (403); @x402/evm's own `refund(url)` gets the customer exactly the rest back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import { x402Client, wrapFetchWithPayment, decodePaymentResponseHeader } from '@x402/fetch';
import { toClientEvmSigner } from '@x402/evm';
import { BatchSettlementEvmScheme, computeChannelId, signVoucher } from '@x402/evm/batch-settlement/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployBatchStack, type BatchStack } from '../chain/batch.ts';
import type { TestFacilitator } from '../chain/facilitator.ts';
import { RIG_NETWORK, receiverAuthorizer, startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import {
  DEPOSIT,
  FUNDS,
  MAC,
  PRICE,
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
import { x402Section } from '../helpers/uci-sections.ts';

const test = suite('batch-settlement on the LAN endpoint');
const NET = RIG_NETWORK;
let chain: TestChain;
let usdc: TestToken;
let stack: BatchStack;
let facilitator: TestFacilitator;
let receiver: Address;
let lab: DaemonLab;
let base: string;
let rig: ChainDaemon<BatchStack> | undefined;

test.before(async () => {
  rig = await startChainDaemon({
    deploy: deployBatchStack,
    facilitator: (chain) => ({ batchSettlement: { authorizer: chain.newAccount() } }),
    clients: { [MAC]: '127.0.0.1', [STRANGER_MAC]: STRANGER_IP },
    // refund on-request: the channel keeps its balance after a session, so the returning client pays by a voucher
    // alone.
    config: async ({ chain, usdc, facilitator }) => {
      receiver = chain.newAccount().address;
      return (
        `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${STEP_PRICE}'
\toption asset '${usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config pricing 'wifidata'
\toption metric 'bytes'
\toption step_size '1048576'
\toption price_per_step '${STEP_PRICE}'
\toption asset '${usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config pricing 'cash'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '5'

config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${facilitator.url}'
\toption network '${NET}'
\toption receiver '${receiver}'
\toption receiver_authorizer '${await receiverAuthorizer(facilitator)}'
\toption withdraw_delay '900'
\toption refund 'on-request'
\toption token_name 'USDC'
\toption token_version '2'
` + x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address })
      );
    },
  });
  ({ chain, usdc, deployed: stack, facilitator, lab, base } = rig);
});

test.after(async () => {
  await rig?.close();
});

/** The facilitator's advertised receiverAuthorizer (GET /supported), as a server configures it. */
const facilitatorAuthorizer = (): Promise<Address> => receiverAuthorizer(facilitator);

const get = (
  path: string,
  headers: Record<string, string> = {},
  post?: unknown,
  localAddress?: string,
): Promise<LanAnswer> => lanRequest(base, path, headers, post, localAddress);
const decode = decodeHeader;
const channel = (id: Hex): Promise<[bigint, bigint]> => channelOnChain(chain, stack, id);

/** Ends the session (ubus terminate) and returns the metered charge: whole started steps × the price per step. */
async function terminate(): Promise<bigint> {
  // A session that used something, so its charge is not zero.
  await lab.waitFor(async () => BigInt(String((await lab.session(MAC)).used)) > 0n, 30_000, 'the meter counted');
  const t = await lab.callStatus('terminate', { mac: MAC });
  assert.is(t.status, 0, JSON.stringify(t.data));
  // The portal forgets a deauthenticated client; the device is still on the WiFi, as a returning customer is.
  lab.portal.addClient(MAC, '127.0.0.1');
  const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
  return ((used + 59n) / 60n) * STEP_PRICE;
}

const buyer = {
  account: undefined as unknown as ReturnType<TestChain['newAccount']>,
  voucherKey: undefined as unknown as ReturnType<TestChain['newAccount']>,
};
let channelId: Hex;
let requirements: Record<string, unknown>;
let firstCharge = 0n;

test('the 402 offers batch-settlement beside exact', async () => {
  const r = await get(`/buy?plan=wifi&steps=${STEPS}`);
  assert.is(r.status, 402);
  const accepts = decode(r.headers['payment-required']).accepts as Array<Record<string, unknown>>;
  assert.equal(
    accepts.map((a) => a.scheme),
    ['exact', 'batch-settlement'],
  );
  requirements = accepts[1]!;
  assert.is(requirements.amount, String(PRICE));
  assert.is(requirements.network, NET);
  assert.is(String(requirements.payTo).toLowerCase(), receiver.toLowerCase());
  const extra = requirements.extra as Record<string, unknown>;
  assert.is(String(extra.receiverAuthorizer).toLowerCase(), (await facilitatorAuthorizer()).toLowerCase());
  assert.is(extra.withdrawDelay, 900);
  const plans = await get('/');
  assert.equal((plans.body.methods as Record<string, unknown>).batch_settlement, true);
  // A plan with no asset (sold for cash, by grant or voucher) is not offered for a deposit: there is no token to pay
  // in.
  const cash = (plans.body.plans as Array<Record<string, unknown>>).find((p) => p.id === 'cash')!;
  assert.is(cash.batch_settlement, null, JSON.stringify(cash));
  assert.is(cash.x402, null, 'nor by exact');
  const none = await get('/buy?plan=cash&steps=1');
  assert.is(
    (none.body.error as Record<string, unknown>).code,
    'ERR_X402_ASSET_UNSUPPORTED',
    'refused with the reason, no offer',
  );
  assert.is(none.headers['payment-required'], undefined, JSON.stringify(none.headers));
});

let payingFetch: typeof fetch;
/** Every PAYMENT-SIGNATURE the customer's client sent, in order: what anyone on the open WiFi can read. */
const sentSignatures: string[] = [];
const recordingFetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
  const header = input instanceof Request ? input.headers.get('payment-signature') : null;
  if (header) sentSignatures.push(header);
  return fetch(input, init);
}) as typeof fetch;
let scheme: BatchSettlementEvmScheme;

test(
  "@x402/fetch deposits and pays: PAYMENT-RESPONSE, gate open; the session's end charges the metered price, to " +
    'the unit',
  async () => {
    buyer.account = chain.newAccount();
    buyer.voucherKey = chain.newAccount();
    await usdc.mint(buyer.account.address, FUNDS);
    const signer = toClientEvmSigner(buyer.account as never, chain.publicClient as never);
    const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
    scheme = new BatchSettlementEvmScheme(signer, { voucherSigner: buyer.voucherKey as never });
    client.register(NET as never, scheme as never);
    payingFetch = wrapFetchWithPayment(recordingFetch, client) as typeof fetch;

    const res = await payingFetch(`${base}/buy?plan=wifi&steps=${STEPS}`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(res.status, 200, JSON.stringify(body));
    const settlement = decodePaymentResponseHeader(res.headers.get('payment-response')!) as unknown as Record<
      string,
      unknown
    >;
    assert.is(settlement.success, true);
    assert.match(String(settlement.transaction), /^0x[0-9a-f]{64}$/, 'a deposit answers with its transaction');
    const extra = settlement.extra as Record<string, unknown>;
    const state = extra.channelState as Record<string, unknown>;
    // Nothing is charged until the session ends (the meter decides); the channel holds the deposit.
    assert.is(extra.chargedAmount, '0');
    assert.is(state.chargedCumulativeAmount, '0');
    assert.is(state.balance, String(DEPOSIT));
    channelId = String(state.channelId) as Hex;
    const config = {
      payer: buyer.account.address,
      payerAuthorizer: buyer.voucherKey.address,
      receiver: requirements.payTo,
      receiverAuthorizer: (requirements.extra as Record<string, unknown>).receiverAuthorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}`,
    };
    assert.is(channelId, computeChannelId(config as never, NET).toLowerCase() as Hex);
    const session = body.session as Record<string, unknown>;
    assert.is(session.mac, MAC);
    assert.is(session.allotment, String(STEPS * 60n));
    assert.is((session.payments as Array<Record<string, unknown>>)[0]!.method, 'batch-settlement');
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    assert.is(await usdc.balanceOf(buyer.account.address), FUNDS - DEPOSIT, 'the deposit went into the channel');
    assert.equal(await channel(channelId), [DEPOSIT, 0n]);

    firstCharge = await terminate();
    assert.ok(firstCharge > 0n && firstCharge <= PRICE);
    await lab.waitFor(async () => (await usdc.balanceOf(receiver)) === firstCharge, 60_000, 'claimed and settled');
    assert.equal(await channel(channelId), [DEPOSIT, firstCharge], 'claimed the charge; the rest stays in the channel');
    assert.is(
      await usdc.balanceOf(buyer.account.address),
      FUNDS - DEPOSIT,
      'refund on-request: the rest stays in the channel',
    );
  },
);

test(
  'the client returns: corrective 402, re-sync, a voucher ' + 'alone (no deposit); charged the metered price again',
  async () => {
    const res = await payingFetch(`${base}/buy?plan=wifi&steps=${STEPS}`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(res.status, 200, JSON.stringify(body));
    const settlement = decodePaymentResponseHeader(res.headers.get('payment-response')!) as unknown as Record<
      string,
      unknown
    >;
    assert.is(settlement.success, true);
    assert.is(settlement.transaction, '', 'a voucher moves no money now');
    const state = (settlement.extra as Record<string, unknown>).channelState as Record<string, unknown>;
    assert.is(state.chargedCumulativeAmount, String(firstCharge));
    const payments = (body.session as Record<string, unknown>).payments as Array<Record<string, unknown>>;
    assert.is(
      payments.at(-1)!.reference,
      `${channelId}:${firstCharge + PRICE}`,
      'the voucher raised the ceiling by exactly the price',
    );
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    assert.is(await usdc.balanceOf(buyer.account.address), FUNDS - DEPOSIT, 'no new deposit');

    const second = await terminate();
    await lab.waitFor(
      async () => (await usdc.balanceOf(receiver)) === firstCharge + second,
      60_000,
      'claimed and settled',
    );
    assert.equal(await channel(channelId), [DEPOSIT, firstCharge + second]);
    firstCharge += second;
  },
);

test("a voucher over the channel's balance: 402, nothing granted, nothing moved", async () => {
  const steps = 100n;
  const ceiling = firstCharge + steps * STEP_PRICE;
  assert.ok(ceiling > DEPOSIT);
  const unpaid = await get(`/buy?plan=wifi&steps=${steps}`);
  assert.is(unpaid.status, 402, JSON.stringify(unpaid.body));
  const offer = decode(unpaid.headers['payment-required']).accepts as Array<Record<string, unknown>>;
  const accepted = offer.find((a) => a.scheme === 'batch-settlement')!;
  const config = {
    payer: buyer.account.address,
    payerAuthorizer: buyer.voucherKey.address,
    receiver: accepted.payTo,
    receiverAuthorizer: (accepted.extra as Record<string, unknown>).receiverAuthorizer,
    token: usdc.address,
    withdrawDelay: 900,
    salt: `0x${'0'.repeat(64)}`,
  };
  const voucher = await signVoucher(buyer.voucherKey as never, channelId, ceiling.toString(), NET);
  const header = Buffer.from(
    JSON.stringify({ x402Version: 2, accepted, payload: { type: 'voucher', channelConfig: config, voucher } }),
  ).toString('base64');
  const before = {
    buyer: await usdc.balanceOf(buyer.account.address),
    receiver: await usdc.balanceOf(receiver),
    channel: await channel(channelId),
  };
  const sessionBefore = await lab.session(MAC);
  const r = await get(`/buy?plan=wifi&steps=${steps}`, { 'payment-signature': header });
  assert.is(r.status, 402, JSON.stringify(r.body));
  // A ceiling above the mirrored balance always goes to the facilitator's /verify, which refuses with the spec's
  // reason.
  assert.is(r.body.code, 'ERR_BATCH_VERIFY_REJECTED', JSON.stringify(r.body));
  assert.is(decode(r.headers['payment-required']).error, 'invalid_batch_settlement_evm_cumulative_exceeds_balance');
  assert.equal(await lab.session(MAC), sessionBefore, 'no session granted');
  assert.equal(
    {
      buyer: await usdc.balanceOf(buyer.account.address),
      receiver: await usdc.balanceOf(receiver),
      channel: await channel(channelId),
    },
    before,
  );
});

test(
  'a running session topped up by a voucher alone (no deposit, no wallet prompt): the allotment grows, charged ' +
    'once',
  async () => {
    const first = await payingFetch(`${base}/buy?plan=wifi&steps=${STEPS}`);
    assert.is(first.status, 200, await first.clone().text());
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    const onChain = await channel(channelId);
    const res = await payingFetch(`${base}/buy?plan=wifi&steps=${STEPS}`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(res.status, 200, JSON.stringify(body));
    assert.is(body.topped_up, true);
    assert.is((body.session as Record<string, unknown>).allotment, String(2n * STEPS * 60n));
    assert.is(await usdc.balanceOf(buyer.account.address), FUNDS - DEPOSIT, 'no new deposit');
    assert.equal(await channel(channelId), onChain, 'a top-up moves no money');
    const charge = await terminate();
    await lab.waitFor(
      async () => (await usdc.balanceOf(receiver)) === firstCharge + charge,
      60_000,
      'claimed and settled once',
    );
    firstCharge += charge;
  },
);

/** What a replay must leave as it was: the balances, the channel on chain and as sluice shows it, the sessions. */
async function moneyAndSessions() {
  return {
    buyer: await usdc.balanceOf(buyer.account.address),
    receiver: await usdc.balanceOf(receiver),
    channel: await channel(channelId),
    view: (await get(`/batch/channel?id=${channelId}`)).body,
    stranger: await lab.callStatus('session', { mac: STRANGER_MAC }),
  };
}

/**
 * The customer's last accepted voucher payload, re-wrapped (the envelope is not signed) for a purchase of `steps` of
 * `plan`.
 */
async function replayOf(header: string, plan: string, steps: bigint): Promise<string> {
  const offer = decode((await get(`/buy?plan=${plan}&steps=${steps}`)).headers['payment-required']).accepts as Array<
    Record<string, unknown>
  >;
  const payload = decode(header);
  return Buffer.from(
    JSON.stringify({ ...payload, accepted: offer.find((a) => a.scheme === 'batch-settlement') }),
  ).toString('base64');
}

/** A replay from the stranger's device: the corrective 402, no session, nothing moved. */
async function refusedReplay(
  header: string,
  plan: string,
  steps: bigint,
  from = STRANGER_IP,
  what = '',
): Promise<void> {
  const before = await moneyAndSessions();
  const r = await get(`/buy?plan=${plan}&steps=${steps}`, { 'payment-signature': header }, undefined, from);
  assert.is(r.status, 402, `${what}: ${JSON.stringify(r.body)}`);
  assert.is(r.body.code, 'ERR_BATCH_CUMULATIVE_MISMATCH', what);
  assert.is(decode(r.headers['payment-required']).error, 'invalid_batch_settlement_evm_cumulative_amount_mismatch');
  assert.equal(await moneyAndSessions(), before, `${what}: no session, nothing moved`);
}

test(
  "A stranger on another device replays the customer's last voucher after a partly used session: 402, " +
    'no session, nothing moved',
  async () => {
    // The last purchase: the top-up; before it, the session's first voucher. Both readable on the open WiFi.
    const charged = BigInt(String((await get(`/batch/channel?id=${channelId}`)).body.charged));
    assert.is(charged, firstCharge);
    for (const header of sentSignatures.slice(-2)) {
      const ceiling = BigInt(
        String((decode(header).payload as { voucher: { maxClaimableAmount: string } }).voucher.maxClaimableAmount),
      );
      // The steps left unused under that ceiling: charged + steps × price = the ceiling, a purchase that raised
      // nothing.
      const unused = (ceiling - charged) / STEP_PRICE;
      for (const steps of [unused, STEPS]) {
        if (steps < 1n || steps > 100n) continue;
        await refusedReplay(
          await replayOf(header, 'wifi', steps),
          'wifi',
          steps,
          STRANGER_IP,
          `ceiling ${ceiling}, ${steps} steps`,
        );
      }
    }
    const s = await lab.callStatus('session', { mac: STRANGER_MAC });
    assert.ok(s.status !== 0 || (s.data as Record<string, unknown>)?.state !== 'ACTIVE', 'the stranger has no session');
  },
);

let zeroUseHeader = '';

test(
  'A session that used nothing, its voucher again from the same and another device, and after a ' +
    'restart: 402; the real client pays again by itself',
  async () => {
    // A data session with no traffic: nothing used, nothing charged.
    const res = await payingFetch(`${base}/buy?plan=wifidata&steps=${STEPS}`);
    assert.is(res.status, 200, await res.clone().text());
    zeroUseHeader = sentSignatures.at(-1)!;
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    const t = await lab.callStatus('terminate', { mac: MAC });
    assert.is(t.status, 0, JSON.stringify(t.data));
    assert.is(String((t.data!.session as Record<string, unknown>).used), '0');
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.waitFor(
      async () => (await get(`/batch/channel?id=${channelId}`)).body.session_open === false,
      30_000,
      'the charge written',
    );
    assert.is((await get(`/batch/channel?id=${channelId}`)).body.charged, String(firstCharge), 'charged nothing');

    await refusedReplay(zeroUseHeader, 'wifidata', STEPS, STRANGER_IP, 'another device');
    await refusedReplay(zeroUseHeader, 'wifidata', STEPS, '127.0.0.1', 'the same device');
    // kill -9 and a restart: the channel's floor is on flash.
    await lab.stopDaemon('SIGKILL');
    await lab.startDaemon();
    await lab.reconnectClient();
    await refusedReplay(zeroUseHeader, 'wifidata', STEPS, STRANGER_IP, 'after a restart');

    // The customer's own client signs the same voucher again (charged + price): the corrective 402 carries the floor,
    // it checks our copy of its signature and the chain, re-syncs and pays by itself (@x402/fetch's retry).
    const onChain = await channel(channelId);
    const again = await payingFetch(`${base}/buy?plan=wifidata&steps=${STEPS}`);
    const body = (await again.json()) as Record<string, unknown>;
    assert.is(again.status, 200, JSON.stringify(body));
    const ceiling = BigInt(
      String(
        (decode(sentSignatures.at(-1)!).payload as { voucher: { maxClaimableAmount: string } }).voucher
          .maxClaimableAmount,
      ),
    );
    const floor = BigInt(
      String((decode(zeroUseHeader).payload as { voucher: { maxClaimableAmount: string } }).voucher.maxClaimableAmount),
    );
    assert.is(ceiling, floor + 1n, 'one unit above the last ceiling signed');
    assert.is(
      ((body.session as Record<string, unknown>).payments as Array<Record<string, unknown>>).at(-1)!.reference,
      `${channelId}:${ceiling}`,
    );
    assert.equal(await channel(channelId), onChain, 'a voucher alone: no deposit');
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    const t2 = await lab.callStatus('terminate', { mac: MAC });
    assert.is(t2.status, 0, JSON.stringify(t2.data));
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.waitFor(
      async () => (await get(`/batch/channel?id=${channelId}`)).body.session_open === false,
      30_000,
      'the charge written',
    );
    assert.is(
      (await get(`/batch/channel?id=${channelId}`)).body.charged,
      String(firstCharge),
      'no traffic: charged nothing, not the extra unit',
    );
  },
);

test('GET /batch/channel: charged, ceiling, balance, refund state; unknown and malformed ids refused', async () => {
  const r = await get(`/batch/channel?id=${channelId}`);
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.equal(
    { ...r.body, ceiling: undefined },
    {
      channel_id: channelId,
      network: NET,
      asset: usdc.address.toLowerCase(),
      payer: buyer.account.address.toLowerCase(),
      payer_authorizer: buyer.voucherKey.address.toLowerCase(),
      charged: String(firstCharge),
      ceiling: undefined,
      balance: String(DEPOSIT),
      claimed: String(firstCharge),
      available: String(DEPOSIT - firstCharge),
      session_open: false,
      withdraw_requested_at: 0,
      refund_policy: 'on-request',
      refund: { state: 'none' },
    },
  );
  assert.ok(BigInt(String(r.body.ceiling)) >= firstCharge);
  const unknown = await get(`/batch/channel?id=0x${'ab'.repeat(32)}`);
  assert.equal(
    [unknown.status, (unknown.body.error as Record<string, unknown>).code],
    [404, 'ERR_BATCH_CHANNEL_UNKNOWN'],
  );
  const bad = await get('/batch/channel?id=nope');
  assert.equal([bad.status, (bad.body.error as Record<string, unknown>).code], [400, 'ERR_INVALID_ARGUMENT']);
});

test(
  "a refund request for someone else's channel: 403 " + 'ERR_BATCH_REFUND_FORBIDDEN, nothing recorded, nothing moved',
  async () => {
    const probe = await get(`/batch/refund?id=${channelId}`);
    assert.is(probe.status, 402);
    const accepted = (decode(probe.headers['payment-required']).accepts as Array<Record<string, unknown>>)[0]!;
    assert.is(accepted.scheme, 'batch-settlement');
    const config = {
      payer: buyer.account.address,
      payerAuthorizer: buyer.voucherKey.address,
      receiver: accepted.payTo,
      receiverAuthorizer: (accepted.extra as Record<string, unknown>).receiverAuthorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}`,
    };
    const stranger = chain.newAccount();
    const voucher = await signVoucher(stranger as never, channelId, firstCharge.toString(), NET);
    const before = { buyer: await usdc.balanceOf(buyer.account.address), channel: await channel(channelId) };
    const r = await get(
      '/batch/refund',
      {},
      { payload: { x402Version: 2, accepted, payload: { type: 'refund', channelConfig: config, voucher } } },
    );
    assert.equal(
      [r.status, (r.body.error as Record<string, unknown>).code],
      [403, 'ERR_BATCH_REFUND_FORBIDDEN'],
      JSON.stringify(r.body),
    );
    const garbage = await get('/batch/refund', {}, { payload: 'not a payload' });
    assert.equal(
      [garbage.status, (garbage.body.error as Record<string, unknown>).code],
      [400, 'ERR_BATCH_PAYLOAD_INVALID'],
    );
    const voucherNotRefund = await get(
      '/batch/refund',
      {},
      { payload: { x402Version: 2, accepted, payload: { type: 'voucher', channelConfig: config, voucher } } },
    );
    assert.equal(
      [voucherNotRefund.status, (voucherNotRefund.body.error as Record<string, unknown>).code],
      [400, 'ERR_BATCH_PAYLOAD_INVALID'],
    );
    assert.equal((await get(`/batch/channel?id=${channelId}`)).body.refund, { state: 'none' });
    assert.equal({ buyer: await usdc.balanceOf(buyer.account.address), channel: await channel(channelId) }, before);
  },
);

test("@x402/evm's own refund(url): 200 + PAYMENT-RESPONSE, the customer gets exactly the rest back, once", async () => {
  const settled = (await scheme.refund(`${base}/batch/refund?id=${channelId}`)) as unknown as Record<string, unknown>;
  assert.is(settled.success, true, JSON.stringify(settled));
  assert.match(String(settled.transaction), /^0x[0-9a-f]{64}$/);
  assert.is(settled.amount, String(DEPOSIT - firstCharge));
  assert.is(
    await usdc.balanceOf(buyer.account.address),
    FUNDS - firstCharge,
    'the buyer paid exactly what the meter counted',
  );
  assert.equal(await channel(channelId), [firstCharge, firstCharge]);
  const view = await get(`/batch/channel?id=${channelId}`);
  assert.equal(
    { ...(view.body.refund as Record<string, unknown>), done_at: 0 },
    { state: 'done', amount: String(DEPOSIT - firstCharge), transaction: settled.transaction, done_at: 0 },
  );
  assert.is(view.body.available, '0');
  // Nothing is left: asking again moves nothing.
  assert.is(await usdc.balanceOf(receiver), firstCharge);
});

test("After the refund, the customer's vouchers " + 'replayed from another device: 402, nothing moved', async () => {
  await refusedReplay(zeroUseHeader, 'wifidata', STEPS, STRANGER_IP, 'the zero-use voucher');
  const last = sentSignatures.at(-1)!;
  await refusedReplay(last, 'wifidata', STEPS, STRANGER_IP, 'the last voucher');
});

test.run();
