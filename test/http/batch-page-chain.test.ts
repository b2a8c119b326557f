/**
 * The pay page's batch-settlement path end to end in node: the page's own scripts (batch.js built from
 * src/browser/batch.ts, batch-page.js, portal.js) on the stand-in DOM, a browser wallet (EIP-1193) backed by a
 * funded anvil account, paying the real daemon's LAN endpoint, which deposits through @x402/evm's own facilitator on
 * anvil (test/chain/batch-lab.ts, as the LAN endpoint's test sets up). The wallet signs the deposit only; the
 * vouchers are signed by the page's own key, kept in the browser's storage. Refund `at-end`: after each session the
 * receiver has exactly the metered price and the customer exactly the rest, to the unit. The page is then loaded
 * again (the captive-portal window closed meanwhile): from the stored key and channel it pays into the same channel,
 * re-syncing the charge the router's corrective 402 tells it, within what it signed before.
 */
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Hex } from 'viem';
import type { TestChain } from '../chain/index.ts';
import { startBatchLab, type BatchLab } from '../chain/batch-lab.ts';
import { loadPage, PORTAL_DIR, type FakeElement, type FakePage } from './fake-dom.ts';

const test = suite('pay page: batch-settlement on anvil, end to end');
const STEP_PRICE = 10_000n;
const STEPS = 10n;
const PRICE = STEPS * STEP_PRICE;
const FUNDS = 5_000_000n;
const MAC = '02:00:00:00:0c:41';
let world: BatchLab;
let buyer: ReturnType<TestChain['newAccount']>;
const storage = new Map<string, string>();
const prompts: string[] = [];

test.before(async () => {
  world = await startBatchLab({ mac: MAC, stepPrice: STEP_PRICE, refund: 'at-end' });
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

let channelId: Hex;
let charged = 0n;

test('the daemon serves the page\'s batch-settlement scripts as they are built', async () => {
  for (const file of ['batch.js', 'batch-page.js']) {
    const res = await fetch(`${world.base}/${file}`);
    assert.is(res.status, 200, file);
    assert.is(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.is(await res.text(), readFileSync(`${PORTAL_DIR}/${file}`, 'utf8'), file);
  }
  assert.match(readFileSync(`${PORTAL_DIR}/index.html`, 'utf8'), /<script src="\/batch\.js"><\/script>\s*<script src="\/batch-page\.js"><\/script>\s*<script src="\/portal\.js">/);
});

test('the page offers the deposit beside the prepaid price; one wallet signature deposits, the page\'s key signs the voucher', async () => {
  const page = await loadPage({ base: world.base, ethereum, storage, languages: ['en-US'], now: Date.now() });
  const { card } = batchButton(page);
  assert.match(card.text(), /Or deposit 0\.01 USDC: you pay only for what you use, the rest comes back to your wallet\./);
  await buy(page, STEPS);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  assert.match(page.byId('message').textContent, /^Paid\. You are online: 10 min/);
  assert.equal(prompts.filter((m) => m === 'eth_signTypedData_v4').length, 1, 'the wallet signed once: the deposit');
  const rec = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
  assert.match(rec.key, /^0x[0-9a-f]{64}$/);
  assert.is(rec.config.payer.toLowerCase(), buyer.address.toLowerCase());
  assert.is.not(rec.config.payerAuthorizer.toLowerCase(), buyer.address.toLowerCase(), 'vouchers are signed by the page\'s own key');
  assert.is(rec.ceiling, String(PRICE));
  channelId = rec.channelId as Hex;
  const session = await world.lab.session(MAC);
  // The reference is channelId:ceiling (a server that numbers the channel's purchases appends :n).
  assert.match(String((session.payments as Array<Record<string, unknown>>).at(-1)!.reference), new RegExp(`^${channelId}:${PRICE}(:\\d+)?$`));
  await world.lab.waitFor(() => world.lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
  assert.is(await world.usdc.balanceOf(buyer.address), FUNDS - PRICE, 'the deposit is the price of the steps chosen');
  assert.equal(await world.channel(channelId), [PRICE, 0n]);
});

test('the window closes; the session ends: the receiver gets exactly the metered price, the customer exactly the rest', async () => {
  charged = await terminate();
  assert.ok(charged > 0n && charged < PRICE);
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(world.receiver)) === charged, 60_000, 'claimed and settled');
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(buyer.address)) === FUNDS - charged, 60_000, 'the rest refunded');
  assert.equal(await world.channel(channelId), [charged, charged]);
});

test('the page again, from storage: the same channel and key, the charge re-synced from the router, a top-up deposit; to the unit', async () => {
  prompts.length = 0;
  const page = await loadPage({ base: world.base, ethereum, storage, languages: ['de-DE'], now: Date.now() });
  assert.match(batchButton(page).card.text(), /Oder hinterlegen Sie 0,01 USDC/);
  await buy(page, STEPS);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  const rec = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
  assert.is(rec.channelId, channelId, 'the same channel');
  assert.is(rec.charged, String(charged), 're-synced from the corrective 402');
  assert.is(rec.ceiling, String(charged + PRICE));
  assert.equal(prompts.filter((m) => m === 'eth_signTypedData_v4').length, 1, 'one wallet signature: the top-up deposit');
  const session = await world.lab.session(MAC);
  assert.match(String((session.payments as Array<Record<string, unknown>>).at(-1)!.reference), new RegExp(`^${channelId}:${charged + PRICE}(:\\d+)?$`));
  assert.is(await world.usdc.balanceOf(buyer.address), FUNDS - charged - PRICE);

  const second = await terminate();
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(world.receiver)) === charged + second, 60_000, 'claimed and settled');
  await world.lab.waitFor(async () => (await world.usdc.balanceOf(buyer.address)) === FUNDS - charged - second, 60_000, 'the rest refunded');
  assert.equal(await world.channel(channelId), [charged + second, charged + second]);
});

test.run();
