// tier: chain
/**
 * SIGTERM ends the daemon within procd's stop window whatever the upto facilitator does. The real
 * daemon, @x402/evm's own upto facilitator on anvil behind a proxy that can hold the next /settle (take it, neither
 * forward nor answer it: nothing moves). A session bought with @x402/fetch's upto client ends; its /settle is held;
 * SIGTERM: the daemon exits within 15 s (its upto.timeout is 120 s), the amount stays on flash (`settling`), and the
 * restart, the facilitator answering again, settles exactly the metered price, once.
 */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import { x402Client, wrapFetchWithPayment } from '@x402/fetch';
import { toClientEvmSigner } from '@x402/evm';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import type { TestChain, TestToken } from '../chain/index.ts';
import { deployUptoStack, newPermit2Buyer } from '../chain/upto.ts';
import type { HoldingProxy } from '../chain/holding-proxy.ts';
import { startChainDaemon, type ChainDaemon } from '../chain/daemon-rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { uptoSection, usdcPlanSection, x402Section } from '../helpers/uci-sections.ts';
import { stopsWithinWindow } from './stop-window.ts';

const test = suite('upto: SIGTERM while the facilitator holds a /settle');
const NET = 'eip155:84532';
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const FUNDS = 5_000_000n;
const MAC = '02:00:00:00:0d:41';
let chain: TestChain;
let usdc: TestToken;
let payTo: Address;
let lab: DaemonLab;
let base: string;
/** In front of the facilitator: forwards everything, except the next /settle when the test holds or delays it. */
let proxy: HoldingProxy;
let rig: ChainDaemon<unknown> | undefined;

test.before(async () => {
  rig = await startChainDaemon({
    deploy: deployUptoStack,
    facilitator: () => ({ upto: true }),
    holdingProxy: true,
    clients: { [MAC]: '127.0.0.1' },
    config: ({ chain, usdc, facilitator, proxy }) => {
      payTo = chain.newAccount().address;
      return (
        usdcPlanSection({ asset: usdc.address, price: STEP_PRICE }) +
        uptoSection({ facilitatorUrl: proxy!.url, payTo, timeoutS: 120 }) +
        x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address })
      );
    },
  });
  ({ chain, usdc, lab, base } = rig);
  proxy = rig.proxy!;
});

test.after(async () => {
  await rig?.close();
});

function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function uptoRecords(): Array<Record<string, unknown>> {
  const raw = JSON.parse(readFileSync(join(lab.dir, 'state', 'upto.json'), 'utf8')) as unknown;
  return (Array.isArray(raw) ? raw : (raw as { records: unknown[] }).records) as Array<Record<string, unknown>>;
}

test(
  'the session ends, its /settle is held; SIGTERM: exit within 15 s (upto.timeout 120 s), the amount on flash; ' +
    'the restart starts without waiting for a held retry and settles it once, to the unit',
  async () => {
    await lab.waitFor(
      async () => ((await get('/')).body.methods as Record<string, unknown>).upto === true,
      30_000,
      'upto offered',
    );
    const buyer = await newPermit2Buyer(chain, usdc, FUNDS);
    const client = x402Client.fromConfig({ schemes: [], spendControls: { allowedAssets: true } });
    client.register(
      NET as never,
      new UptoEvmScheme(toClientEvmSigner(buyer as never, chain.publicClient as never)) as never,
    );
    const res = await (wrapFetchWithPayment(fetch, client) as typeof fetch)(`${base}/buy?plan=wifi&steps=${STEPS}`);
    assert.is(res.status, 200, await res.clone().text());
    const reference = ((await res.json()) as { session: { payments: Array<{ reference: string }> } }).session
      .payments[0]!.reference;
    await lab.waitFor(async () => BigInt(String((await lab.session(MAC)).used)) > 0n, 30_000, 'the meter counted');

    const reached = proxy.hold();
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
    const retried = proxy.delay();
    await lab.startDaemon();
    const forward = await retried;
    assert.match(
      lab.output,
      /reconcile goes on in the background.*method=upto/,
      'the start went on without the held /settle',
    );
    assert.is((await lab.callStatus('stats', {})).status, 0, 'ubus answers while the settle is held');
    assert.is(await usdc.balanceOf(payTo), 0n, 'nothing moved yet');
    forward();
    await lab.waitFor(async () => (await usdc.balanceOf(payTo)) === price, 60_000, 'settled at the restart');
    assert.is(await usdc.balanceOf(buyer.address), FUNDS - price, 'once: the buyer keeps the rest');
    // The router writes `settled` once the facilitator's answer is in, a moment after the chain shows the transfer.
    await lab.waitFor(
      () => uptoRecords().find((r) => r.reference === reference)?.state === 'settled',
      30_000,
      'the settle written',
    );
  },
);

test.run();
