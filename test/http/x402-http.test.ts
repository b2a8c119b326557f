// tier: chain
/**
 * The LAN x402 endpoint with a stock x402 client (@x402/fetch + @x402/evm's exact client scheme): 402 with a standard
 * PAYMENT-REQUIRED header, the client signs and retries with PAYMENT-SIGNATURE, sluice settles through the test
 * facilitator on anvil, answers 200 with PAYMENT-RESPONSE, and the caller's MAC (found by its source IP in the
 * portal's client list) gets the session. Plus: unknown IP refused, /session, method/size limits, rate limit.
 */
import { request } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { x402Client, wrapFetchWithPayment, decodePaymentResponseHeader } from '@x402/fetch';
import { registerExactEvmScheme } from '@x402/evm/exact/client';
import type { Address } from 'viem';
import type { TestChain, TestToken } from '../chain/index.ts';
import { startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { timePlanSection, x402Section } from '../helpers/uci-sections.ts';

const test = suite('x402 LAN endpoint');
const PRICE = 10_000n;
const MAC = '02:00:00:00:0c:01';
let chain: TestChain;
let usdc: TestToken;
let payTo: Address;
let lab: DaemonLab;
let base: string;
let rig: ChainDaemon<undefined> | undefined;

test.before(async () => {
  // The rig's portal answers over its control socket (without a node process per call): the rate-limit test needs 30
  // payment attempts within the bucket's refill time, and each costs an IP lookup from the portal.
  rig = await startChainDaemon({
    rateLimit: 20,
    clients: { [MAC]: '127.0.0.1' },
    config: ({ chain, usdc, facilitator }) => {
      payTo = chain.newAccount().address;
      return (
        timePlanSection({ asset: usdc.address, price: PRICE }) + x402Section({ facilitatorUrl: facilitator.url, payTo })
      );
    },
  });
  ({ chain, usdc, lab, base } = rig);
});

test.after(async () => {
  await rig?.close();
});

function get(path: string, options: { localAddress?: string; method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request(
        `${base}${path}`,
        {
          agent: false,
          method: options.method ?? 'GET',
          headers: options.headers ?? {},
          ...(options.localAddress && { localAddress: options.localAddress }),
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

test('GET / lists the plans with their x402 offer', async () => {
  const r = await get('/');
  assert.is(r.status, 200);
  const wifi = (r.body.plans as Array<Record<string, unknown>>).find((p) => p.id === 'wifi')!;
  const offer = wifi.x402 as Record<string, unknown>;
  assert.is(offer.amount, String(PRICE));
  assert.is(offer.payTo, payTo.toLowerCase());
  assert.equal(offer.extra, { name: 'USDC', version: '2' });
});

test('GET /buy without payment: 402 with a standard PAYMENT-REQUIRED header', async () => {
  const r = await get('/buy?plan=wifi&steps=2');
  assert.is(r.status, 402);
  const header = JSON.parse(Buffer.from(String(r.headers['payment-required']), 'base64').toString()) as Record<
    string,
    unknown
  >;
  assert.is(header.x402Version, 2);
  const accepts = header.accepts as Array<Record<string, unknown>>;
  assert.is(accepts[0]!.amount, String(2n * PRICE));
  assert.is(accepts[0]!.network, 'eip155:84532');
  assert.is(accepts[0]!.asset, usdc.address.toLowerCase());
});

test('@x402/fetch buys a session: settled on chain, PAYMENT-RESPONSE, gate open, /session shows it', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1_000_000n);
  // The test token is not one of x402's default assets: the wallet opts in to it, as a user adding a token would.
  const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
  registerExactEvmScheme(client, { signer: buyer });
  const payingFetch = wrapFetchWithPayment(fetch, client);
  const before = await usdc.balanceOf(payTo);
  const res = await payingFetch(`${base}/buy?plan=wifi&steps=2`);
  const body = (await res.json()) as Record<string, unknown>;
  assert.is(res.status, 200, JSON.stringify(body));
  const settlement = decodePaymentResponseHeader(res.headers.get('payment-response')!);
  assert.is(settlement.success, true);
  assert.match(settlement.transaction, /^0x[0-9a-f]{64}$/);
  assert.is((body.session as Record<string, unknown>).mac, MAC);
  assert.is((body.session as Record<string, unknown>).allotment, '120');
  assert.is((await usdc.balanceOf(payTo)) - before, 2n * PRICE);
  assert.is(await usdc.balanceOf(buyer.address), 1_000_000n - 2n * PRICE);
  await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 10_000, 'gate open');
  // The admin's trace of a slow purchase: the lookup's share and the whole, and the gate open's own share.
  const bought = /http purchase mac=(\S+) .*method=x402 lookup_ms=(\d+) took_ms=(\d+)/.exec(lab.output);
  assert.ok(bought, lab.output);
  assert.is(bought[1], MAC);
  assert.ok(Number(bought[2]) <= Number(bought[3]));
  const opened = /gate open mac=(\S+) .*took_ms=(\d+)/.exec(lab.output);
  assert.ok(opened && opened[1] === MAC && Number(opened[2]) <= Number(bought[3]), lab.output);
  const s = await get('/session');
  assert.is(s.status, 200);
  assert.is((s.body.session as Record<string, unknown>).state, 'ACTIVE');
});

test('a request from an IP the portal does not list is refused; a replayed header pays nothing twice', async () => {
  const r = await get('/buy?plan=wifi', { localAddress: '127.0.0.2', headers: { 'payment-signature': 'e30=' } });
  assert.is(r.status, 403);
  assert.is((r.body.error as Record<string, unknown>).code, 'ERR_HTTP_CLIENT_UNKNOWN');
  const s = await get('/session', { localAddress: '127.0.0.2' });
  assert.is((s.body.error as Record<string, unknown>).code, 'ERR_HTTP_CLIENT_UNKNOWN');
  // A garbage signature header is a 402 with the requirements again.
  const g = await get('/buy?plan=wifi', { headers: { 'payment-signature': 'bm90IGpzb24=' } });
  assert.is(g.status, 402);
  assert.is(g.body.code, 'ERR_X402_PAYLOAD_INVALID');
});

test('only GET; oversized headers refused; per-IP rate limit on payment attempts answers 429', async () => {
  assert.is((await get('/', { method: 'POST' })).status, 405);
  const big = await get('/', { headers: { 'x-pad': 'a'.repeat(20_000) } });
  assert.is(big.status, 431);
  // http.rate_limit (20 here) counts payment attempts; plan listings are not among them. The caller is a portal client:
  // an address the portal does not list costs each request a second look at the list (a spaced read), and the test
  // needs 30 attempts within the bucket's refill time.
  lab.portal.addClient('02:00:00:00:0c:03', '127.0.0.3');
  for (let i = 0; i < 30; i++) assert.is((await get('/', { localAddress: '127.0.0.3' })).status, 200);
  let limited = 0;
  for (let i = 0; i < 30; i++)
    if (
      (await get('/buy?plan=wifi', { localAddress: '127.0.0.3', headers: { 'payment-signature': 'e30=' } })).status ===
      429
    )
      limited++;
  assert.ok(limited >= 9, `rate limited ${limited} of 30`);
});

test.run();
