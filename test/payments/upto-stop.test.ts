// tier: chain
/**
 * issue 37 item 4: SIGTERM ends the daemon within procd's stop window whatever the upto facilitator does. The real
 * daemon, @x402/evm's own upto facilitator on anvil behind a proxy that can hold the next /settle (take it, neither
 * forward nor answer it: nothing moves). A session bought with @x402/fetch's upto client ends; its /settle is held;
 * SIGTERM: the daemon exits within 15 s (its upto.timeout is 120 s), the amount stays on flash (`settling`), and the
 * restart, the facilitator answering again, settles exactly the metered price, once.
 */
import { request, createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { maxUint256, type Address } from 'viem';
import { x402Client, wrapFetchWithPayment } from '@x402/fetch';
import { toClientEvmSigner } from '@x402/evm';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { PERMIT2_ADDRESS, deployUptoStack } from '../chain/upto.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection, x402Section } from '../helpers/uci-sections.ts';
import { stopsWithinWindow } from './stop-window.ts';

const test = suite('upto: SIGTERM while the facilitator holds a /settle');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const FUNDS = 5_000_000n;
const MAC = '02:00:00:00:0d:41';
let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let payTo: Address;
let lab: DaemonLab;
let base: string;

/** In front of the facilitator: forwards everything, except the next /settle once `holdNext` is set (taken, never answered). */
let holdNext = false;
let held: () => void = () => undefined;
let proxy: Server;
/** The next /settle is held until the test calls the function `delayed` receives, then forwarded. */
let delayNext = false;
let delayed: (forward: () => void) => void = () => undefined;
let relay: (method: string, url: string, body: string, res: import('node:http').ServerResponse) => Promise<void>;
let proxyUrl: string;

async function startProxy(target: string): Promise<void> {
  proxy = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/settle' && holdNext) {
        holdNext = false;
        held();
        return;
      }
      if (req.url === '/settle' && delayNext) {
        // Held until the test lets it go, then forwarded: a facilitator slower than the start's wait.
        delayNext = false;
        const forward = (): void => { void relay(req.method ?? 'GET', req.url ?? '', body, res); };
        delayed(forward);
        return;
      }
      void relay(req.method ?? 'GET', req.url ?? '', body, res);
    });
  });
  relay = (method, url, body, res) => fetch(`${target}${url}`, { method, ...(method === 'POST' && { body, headers: { 'content-type': 'application/json' } }) })
    .then(async (a) => { res.writeHead(a.status, { 'content-type': 'application/json' }).end(await a.text()); })
    .catch((err: unknown) => { if (!res.headersSent) res.writeHead(502).end(String(err)); });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
}

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  await deployUptoStack(chain);
  facilitator = await startFacilitator(chain, { upto: true });
  await startProxy(facilitator.url);
  payTo = chain.newAccount().address;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: `
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
\toption facilitator_url '${proxyUrl}'
\toption network '${NET}'
\toption pay_to '${payTo}'
\toption max_timeout_seconds '86400'
\toption timeout '120'
` + x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address }) + httpSection(port) });
  lab.portal.addClient(MAC, '127.0.0.1');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await new Promise<void>((r) => { if (!proxy) return r(); proxy.closeAllConnections(); proxy.close(() => r()); });
  await facilitator?.stop();
  await chain?.stop();
});

function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) as Record<string, unknown> : {} }));
    });
    req.on('error', reject);
    req.end();
  });
}

function uptoRecords(): Array<Record<string, unknown>> {
  const raw = JSON.parse(readFileSync(join(lab.dir, 'state', 'upto.json'), 'utf8')) as unknown;
  return (Array.isArray(raw) ? raw : (raw as { records: unknown[] }).records) as Array<Record<string, unknown>>;
}

test('the session ends, its /settle is held; SIGTERM: exit within 15 s (upto.timeout 120 s), the amount on flash; the restart starts without waiting for a held retry and settles it once, to the unit', async () => {
  await lab.waitFor(async () => ((await get('/')).body.methods as Record<string, unknown>).upto === true, 30_000, 'upto offered');
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, FUNDS);
  await chain.fund(buyer.address);
  const hash = await chain.wallet(buyer).writeContract({ address: usdc.address, abi: usdc.abi, functionName: 'approve', args: [PERMIT2_ADDRESS, maxUint256] });
  await chain.publicClient.waitForTransactionReceipt({ hash });
  const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
  client.register(NET as never, new UptoEvmScheme(toClientEvmSigner(buyer as never, chain.publicClient as never)) as never);
  const res = await (wrapFetchWithPayment(fetch, client) as typeof fetch)(`${base}/buy?plan=wifi&steps=${STEPS}`);
  assert.is(res.status, 200, await res.clone().text());
  const reference = (((await res.json()) as { session: { payments: Array<{ reference: string }> } }).session.payments[0]!).reference;
  await lab.waitFor(async () => BigInt(String((await lab.session(MAC)).used)) > 0n, 30_000, 'the meter counted');

  const reached = new Promise<void>((r) => { held = r; });
  holdNext = true;
  const t = await lab.callStatus('terminate', { mac: MAC });
  assert.is(t.status, 0, JSON.stringify(t.data));
  const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
  const price = ((used + 59n) / 60n) * STEP_PRICE;
  await reached;
  // Before the fix the stop waited out the 120 s /settle: procd would have killed it -9.
  await stopsWithinWindow(lab);
  const record = uptoRecords().find((r) => r.reference === reference);
  assert.is(record?.state, 'settling', JSON.stringify(record));
  assert.is(record?.amount, price.toString(), 'the amount is on flash');
  assert.is(await usdc.balanceOf(payTo), 0n, 'nothing moved');

  // The restart's retry of that /settle meets a facilitator that holds it: the start does not wait for it (the meter,
  // the gates and ubus run), and the settle completes in the background once the facilitator answers.
  const retried = new Promise<() => void>((r) => { delayed = r; });
  delayNext = true;
  await lab.startDaemon();
  const forward = await retried;
  assert.match(lab.output, /reconcile goes on in the background.*method=upto/, 'the start went on without the held /settle');
  assert.is((await lab.callStatus('stats', {})).status, 0, 'ubus answers while the settle is held');
  assert.is(await usdc.balanceOf(payTo), 0n, 'nothing moved yet');
  forward();
  await lab.waitFor(async () => (await usdc.balanceOf(payTo)) === price, 60_000, 'settled at the restart');
  assert.is(await usdc.balanceOf(buyer.address), FUNDS - price, 'once: the buyer keeps the rest');
  // The router writes `settled` once the facilitator's answer is in, a moment after the chain shows the transfer.
  await lab.waitFor(() => uptoRecords().find((r) => r.reference === reference)?.state === 'settled', 30_000, 'the settle written');
});

test.run();
