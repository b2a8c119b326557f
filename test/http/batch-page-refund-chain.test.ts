/**
 * The pay page's refund request end to end (refund `on-request`; needs GET /batch/channel and POST /batch/refund).
 * As batch-page-chain.test.ts: the pay page's batch-settlement path in node: the page's own scripts (batch.js built from
 * src/browser/batch.ts, batch-page.js, portal.js) on the stand-in DOM, a browser wallet (EIP-1193) backed by a
 * funded anvil account, paying the real daemon's LAN endpoint, which deposits through @x402/evm's own facilitator on
 * anvil (test/chain/batch-lab.ts, as the LAN endpoint's test sets up). The wallet signs the deposit only; the
 * vouchers are signed by the page's own key, kept in the browser's storage. Refund `at-end`: after each session the
 * receiver has exactly the metered price and the customer exactly the rest, to the unit. The page is then loaded
 * again (the captive-portal window closed meanwhile): from the stored key and channel it pays into the same channel,
 * re-syncing the charge the router's corrective 402 tells it, within what it signed before.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Hex } from 'viem';
import type { TestChain } from '../chain/index.ts';
import { startBatchLab, type BatchLab } from '../chain/batch-lab.ts';
import { loadPage, type FakeElement, type FakePage } from './fake-dom.ts';

const test = suite('pay page: batch-settlement on anvil, the refund the customer asks for');
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const PRICE = STEPS * STEP_PRICE;
const FUNDS = 5_000_000n;
const MAC = '02:00:00:00:0c:42';
let world: BatchLab;
let buyer: ReturnType<TestChain['newAccount']>;
const storage = new Map<string, string>();
const prompts: string[] = [];

test.before(async () => {
  world = await startBatchLab({ mac: MAC, stepPrice: STEP_PRICE, refund: 'on-request' });
  buyer = world.chain.newAccount();
  await world.usdc.mint(buyer.address, FUNDS);
});

test.after(async () => {
  await world?.close();
});

/** A browser wallet on the test chain: what eth_signTypedData_v4 gets is what the wallet signs. */
const ethereum = {
  async request({ method, params = [] }: { method: string; params?: unknown[] }): Promise<unknown> {
    prompts.push(method);
    switch (method) {
    case 'eth_requestAccounts': return [buyer.address];
    case 'eth_chainId': return `0x${(84532).toString(16)}`;
    case 'eth_call': {
      const call = params[0] as { to: Hex; data: Hex };
      return (await world.chain.publicClient.call({ to: call.to, data: call.data })).data;
    }
    case 'eth_signTypedData_v4': {
      const { types, domain, primaryType, message } = JSON.parse(String(params[1])) as Record<string, any>;
      assert.is(String(params[0]).toLowerCase(), buyer.address.toLowerCase());
      delete types.EIP712Domain;
      return buyer.signTypedData({ types, domain, primaryType, message } as never);
    }
    }
    throw Object.assign(new Error(`unsupported ${method}`), { code: 4200 });
  },
};

function batchButton(page: FakePage): { card: FakeElement; button: FakeElement; steps: FakeElement } {
  const card = page.byId('plans').children.find((c) => c.getAttribute('data-plan') === 'wifi')!;
  const steps = card.all().find((e) => e.tagName === 'input')!;
  const button = card.all().find((e) => e.className === 'batch')?.children.find((e) => e.tagName === 'button');
  assert.ok(button, `a deposit button on the plan card: ${card.text()}`);
  return { card, button: button!, steps };
}

async function buy(page: FakePage, steps: bigint): Promise<void> {
  const b = batchButton(page);
  b.steps.value = String(steps);
  b.steps.dispatch('input');
  assert.ok(!b.button.disabled);
  b.button.dispatch('click');
  await page.batch.pending;
  await page.settle();
  if (page.byId('message').className !== 'ok') console.log(world.lab.output.split('\n').filter((l) => /refused|batch/i.test(l)).slice(-5).join('\n'));
}

/** Ends the session (ubus terminate) and returns its metered charge: whole started steps × the price per step. */
async function terminate(): Promise<bigint> {
  const { lab } = world;
  await lab.waitFor(async () => BigInt(String((await lab.session(MAC)).used)) > 0n, 30_000, 'the meter counted');
  const t = await lab.callStatus('terminate', { mac: MAC });
  assert.is(t.status, 0, JSON.stringify(t.data));
  lab.portal.addClient(MAC, '127.0.0.1');
  const used = BigInt(String((t.data!.session as Record<string, unknown>).used));
  return ((used + 59n) / 60n) * STEP_PRICE;
}

let charged = 0n;

test('deposit with the wallet; the window closes; the session ends: charged the metered price, the rest stays in the channel', async () => {
  const page = await loadPage({ base: world.base, ethereum, storage, languages: ['en-US'], now: Date.now() });
  await buy(page, STEPS);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  assert.match((JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, unknown>)['channelId'] as string, /^0x[0-9a-f]{64}$/, 'the channel is kept on the device');
  await world.lab.waitFor(() => world.lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
  charged = await terminate();
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(world.receiver)) === charged, 60_000, 'claimed and settled');
  assert.is(await world.usdc.balanceOf(buyer.address), FUNDS - PRICE, 'on-request: nothing back yet');
});

test('the page again without a wallet (the captive window): pays one step from the deposit by a voucher alone', async () => {
  prompts.length = 0;
  const page = await loadPage({ base: world.base, storage, languages: ['en-US'], now: Date.now() });
  const box = page.byId('channel');
  assert.match(box.text(), new RegExp(`Charged for your access: ${Number(charged) / 1e6} USDC`));
  await buy(page, 1n);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  assert.equal(prompts, [], 'no wallet');
  charged += await terminate();
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(world.receiver)) === charged, 60_000, 'claimed and settled');
});

test('"give me the rest back now": the page\'s key signs the refund request; the customer gets exactly the rest, to the unit', async () => {
  const page = await loadPage({ base: world.base, storage, languages: ['en-US'], now: Date.now() });
  const box = page.byId('channel');
  assert.match(box.text(), new RegExp(`Coming back to you: ${Number(PRICE - charged) / 1e6} USDC`), box.text());
  const button = box.all().find((e) => e.tagName === 'button')!;
  button.dispatch('click');
  await page.batch.pending;
  await page.settle();
  assert.match(page.byId('message').textContent, /came back to your wallet|on its way back/, page.byId('message').textContent);
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(buyer.address)) === FUNDS - charged, 60_000, 'the rest refunded');
  assert.is(await world.usdc.balanceOf(world.receiver), charged);
  page.fire(30_000);
  await page.settle();
  assert.match(box.text(), new RegExp(`${Number(PRICE - charged) / 1e6} USDC came back to your wallet`), box.text());
});

test.run();
