// tier: chain
/**
 * `upto` through the real daemon with stock x402 peers: anvil with Permit2 and the x402 upto proxy at their canonical
 * addresses (test/chain/Upto.sol), @x402/evm's own upto facilitator. The daemon asks its /supported and only then
 * offers upto: the 402 of /buy lists it beside `exact`; @x402/fetch with @x402/evm's own upto client pays in one
 * request (PAYMENT-RESPONSE, gate open), and at the session's end the seller gets exactly the metered price. Over
 * ubus `purchase`: a kill -9 while the session runs, a restart, terminate → settled once, to the unit.
 */
import { request } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { x402Client, wrapFetchWithPayment, decodePaymentResponseHeader } from '@x402/fetch';
import { toClientEvmSigner } from '@x402/evm';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployUptoStack, newPermit2Buyer } from '../chain/upto.ts';
import type { TestFacilitator } from '../chain/facilitator.ts';
import { startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { x402Section } from '../helpers/uci-sections.ts';

const test = suite('upto through the daemon');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const PRICE = STEPS * STEP_PRICE;
const FUNDS = 5_000_000n;
const LAN_MAC = '02:00:00:00:0d:01';
let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let payTo: Address;
let lab: DaemonLab;
let base: string;
let rig: ChainDaemon<unknown> | undefined;

test.before(async () => {
  rig = await startChainDaemon({
    deploy: deployUptoStack,
    facilitator: () => ({ upto: true }),
    // The LAN caller (127.0.0.1) is a portal client: /buy answers only devices on the WiFi.
    clients: { [LAN_MAC]: '127.0.0.1' },
    config: ({ chain, usdc, facilitator }) => {
      payTo = chain.newAccount().address;
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

config upto 'upto'
\toption enabled '1'
\toption facilitator_url '${facilitator.url}'
\toption network '${NET}'
\toption pay_to '${payTo}'
\toption max_timeout_seconds '86400'
` + x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address })
      );
    },
  });
  ({ chain, usdc, facilitator, lab, base } = rig);
});

test.after(async () => {
  await rig?.close();
});

function get(path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request(`${base}${path}`, { agent: false, headers }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

const newBuyer = (): Promise<PrivateKeyAccount> => newPermit2Buyer(chain, usdc, FUNDS);

/** Ends the session (ubus terminate) after some use and returns the metered price: whole started steps × price. */
async function terminate(mac: string): Promise<bigint> {
  await lab.waitFor(async () => BigInt(String((await lab.session(mac)).used)) > 0n, 30_000, 'the meter counted');
  const t = await lab.callStatus('terminate', { mac });
  assert.is(t.status, 0, JSON.stringify(t.data));
  const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
  return ((used + 59n) / 60n) * STEP_PRICE;
}

let offer: Record<string, unknown>;

test("once the facilitator's /supported lists upto, the 402 offers it beside exact", async () => {
  await lab.waitFor(
    async () => ((await get('/')).body.methods as Record<string, unknown>).upto === true,
    30_000,
    'upto offered',
  );
  const r = await get(`/buy?plan=wifi&steps=${STEPS}`);
  assert.is(r.status, 402);
  const accepts = (
    JSON.parse(Buffer.from(String(r.headers['payment-required']), 'base64').toString()) as {
      accepts: Array<Record<string, unknown>>;
    }
  ).accepts;
  assert.equal(
    accepts.map((a) => a.scheme),
    ['exact', 'upto'],
  );
  offer = accepts[1]!;
  assert.is(offer.amount, String(PRICE), "the ceiling is the quote's price");
  assert.is(String(offer.payTo).toLowerCase(), payTo.toLowerCase());
  assert.is(offer.maxTimeoutSeconds, 86_400);
  const extra = offer.extra as Record<string, unknown>;
  assert.is(String(extra.facilitatorAddress).toLowerCase(), facilitator.account.address.toLowerCase());
  assert.is(extra.assetTransferMethod, 'permit2');
});

test(
  '@x402/fetch pays with one Permit2 signature: PAYMENT-RESPONSE, gate open; the end settles exactly the metered ' +
    'price',
  async () => {
    const mac = LAN_MAC;
    const b = await newBuyer();
    const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
    client.register(
      NET as never,
      new UptoEvmScheme(toClientEvmSigner(b as never, chain.publicClient as never)) as never,
    );
    const payingFetch = wrapFetchWithPayment(fetch, client) as typeof fetch;
    // @x402/fetch picks the first scheme it has a client for: upto (it has none for exact).
    const res = await payingFetch(`${base}/buy?plan=wifi&steps=${STEPS}`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(res.status, 200, JSON.stringify(body));
    const settlement = decodePaymentResponseHeader(res.headers.get('payment-response')!) as unknown as Record<
      string,
      unknown
    >;
    assert.equal(
      {
        success: settlement.success,
        amount: settlement.amount,
        transaction: settlement.transaction,
        payer: settlement.payer,
      },
      { success: true, amount: '0', transaction: '', payer: b.address.toLowerCase() },
      'nothing moves until the session ends',
    );
    const session = body.session as Record<string, unknown>;
    assert.is(
      session.allotment,
      String(STEPS * 60n),
      "the ceiling buys the quote's allotment: the gate cannot run past it",
    );
    assert.is((session.payments as Array<Record<string, unknown>>)[0]!.method, 'upto');
    await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');
    assert.is(await usdc.balanceOf(b.address), FUNDS, 'authorizing moved nothing');

    const price = await terminate(mac);
    assert.ok(price > 0n && price <= PRICE);
    await lab.waitFor(async () => (await usdc.balanceOf(payTo)) === price, 60_000, 'settled');
    assert.is(await usdc.balanceOf(b.address), FUNDS - price, 'the buyer keeps the rest');
  },
);

test("an authorization over the ceiling on /buy: 402 with the scheme's reason, no session, nothing moved", async () => {
  // The portal forgot the device when its session ended; it is still on the WiFi.
  lab.portal.addClient(LAN_MAC, '127.0.0.1');
  const b = await newBuyer();
  const sellerBefore = await usdc.balanceOf(payTo);
  const over = { ...offer, amount: String(PRICE + 1n) };
  const built = await new UptoEvmScheme(b as never).createPaymentPayload(2, over as never);
  const header = Buffer.from(JSON.stringify({ x402Version: 2, accepted: over, payload: built.payload })).toString(
    'base64',
  );
  const r = await get(`/buy?plan=wifi&steps=${STEPS}`, { 'payment-signature': header });
  assert.is(r.status, 402, JSON.stringify(r.body));
  assert.is(r.body.code, 'ERR_UPTO_AUTHORIZATION_INVALID');
  assert.is(r.body.error, 'permit2_amount_mismatch');
  assert.is(await usdc.balanceOf(payTo), sellerBefore);
  assert.is(await usdc.balanceOf(b.address), FUNDS);
});

test('ubus purchase → kill -9 while the session runs → restart → terminate: settled once, to the unit', async () => {
  const mac = '02:00:00:00:0d:02';
  lab.portal.addClient(mac, '10.0.3.1');
  const b = await newBuyer();
  const sellerBefore = await usdc.balanceOf(payTo);
  const built = await new UptoEvmScheme(b as never).createPaymentPayload(2, offer as never);
  const r = await lab.callStatus('purchase', {
    mac,
    plan: 'wifi',
    steps: String(STEPS),
    payment: { method: 'upto', payload: { x402Version: 2, accepted: offer, payload: built.payload } },
  } as never);
  assert.is(r.status, 0, JSON.stringify(r.data));
  await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, 'gate open');

  await lab.stopDaemon('SIGKILL');
  await lab.startDaemon();
  assert.is((await lab.session(mac)).state, 'ACTIVE', 'the session came back');
  const price = await terminate(mac);
  await lab.waitFor(async () => (await usdc.balanceOf(payTo)) === sellerBefore + price, 60_000, 'settled');
  assert.is(await usdc.balanceOf(b.address), FUNDS - price);
  // The same payload again is refused: one authorization pays one session.
  const again = await lab.callStatus('purchase', {
    mac,
    plan: 'wifi',
    steps: String(STEPS),
    payment: { method: 'upto', payload: { x402Version: 2, accepted: offer, payload: built.payload } },
  } as never);
  assert.is.not(again.status, 0);
  assert.is(await usdc.balanceOf(payTo), sellerBefore + price, 'settled exactly once');
});

test.run();
