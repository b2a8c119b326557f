// tier: chain
/**
 * The pay page's refund request end to end (refund `on-request`; needs GET /batch/channel and POST /batch/refund).
 * As batch-page-chain.test.ts: the pay page's batch-settlement path in node: the page's own scripts (batch.js built
 * from src/browser/batch.ts, batch-page.js, portal.js) on the stand-in DOM, a browser wallet (EIP-1193) backed by a
 * funded anvil account, paying the real daemon's LAN endpoint, which deposits through @x402/evm's own facilitator on
 * anvil (test/chain/batch-lab.ts, as the LAN endpoint's test sets up). The wallet signs the deposit only; the
 * vouchers are signed by the page's own key, kept in the browser's storage. Refund `at-end`: after each session the
 * receiver has exactly the metered price and the customer exactly the rest, to the unit. The page is then loaded
 * again (the captive-portal window closed meanwhile): from the stored key and channel it pays into the same channel,
 * re-syncing the charge the router's corrective 402 tells it, within what it signed before.
 */
import * as assert from 'uvu/assert';
import { batchPageRig, FUNDS, PRICE, STEPS } from './batch-page-rig.ts';
import { loadPage } from './fake-dom.ts';

const rig = batchPageRig('pay page: batch-settlement on anvil, the refund the customer asks for', {
  mac: '02:00:00:00:0c:42',
  refund: 'on-request',
});
const { test, MAC, storage, prompts, ethereum, buy, terminate } = rig;

let charged = 0n;

test(
  'deposit with the wallet; the window closes; the session ends: charged the metered price, the rest stays in ' +
    'the channel',
  async () => {
    const page = await loadPage({ base: rig.world.base, ethereum, storage, languages: ['en-US'], now: Date.now() });
    await buy(page, STEPS);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    assert.match(
      (JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, unknown>)['channelId'] as string,
      /^0x[0-9a-f]{64}$/,
      'the channel is kept on the device',
    );
    await rig.world.lab.waitFor(() => rig.world.lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    charged = await terminate();
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.world.receiver)) === charged,
      60_000,
      'claimed and settled',
    );
    assert.is(await rig.world.usdc.balanceOf(rig.buyer.address), FUNDS - PRICE, 'on-request: nothing back yet');
  },
);

test(
  'the page again without a wallet (the captive window): the deposit left does not reach a ceiling above the ' +
    'last one, so it asks for the wallet and signs nothing',
  async () => {
    // A new purchase signs above the last ceiling (a voucher at or below it could be anyone's replay); the
    // deposit was exactly that ceiling, so even one step needs one more unit in the channel: a wallet prompt.
    prompts.length = 0;
    const before = storage.get('sluice-batch-channel');
    const page = await loadPage({ base: rig.world.base, storage, languages: ['en-US'], now: Date.now() });
    const box = page.byId('channel');
    assert.match(box.text(), new RegExp(`Charged for your access: ${Number(charged) / 1e6} USDC`));
    const { button, steps } = rig.batchButton(page);
    steps.value = '1';
    steps.dispatch('input');
    assert.is(button.textContent, 'Deposit and go online', 'the button does not promise a payment from the deposit');
    await buy(page, 1n);
    assert.is(page.byId('message').className, 'error');
    assert.match(page.byId('message').textContent, /No browser wallet found/);
    assert.equal(prompts, [], 'no wallet, nothing signed');
    assert.is(
      JSON.parse(storage.get('sluice-batch-channel')!).ceiling,
      JSON.parse(before!).ceiling,
      'no new voucher kept',
    );
  },
);

test(
  '"give me the rest back now": the page\'s key signs the refund request; the customer gets exactly the rest, to ' +
    'the unit',
  async () => {
    const page = await loadPage({ base: rig.world.base, storage, languages: ['en-US'], now: Date.now() });
    const box = page.byId('channel');
    assert.match(box.text(), new RegExp(`Coming back to you: ${Number(PRICE - charged) / 1e6} USDC`), box.text());
    const button = box.all().find((e) => e.tagName === 'button')!;
    button.dispatch('click');
    await page.batch.pending;
    await page.settle();
    assert.match(
      page.byId('message').textContent,
      /came back to your wallet|on its way back/,
      page.byId('message').textContent,
    );
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.buyer.address)) === FUNDS - charged,
      60_000,
      'the rest refunded',
    );
    assert.is(await rig.world.usdc.balanceOf(rig.world.receiver), charged);
    // The chain shows the refund before the router has read its receipt and recorded it: the page's next refresh
    // tells what the router says, so it is fired once the router says it.
    const channelId = (JSON.parse(storage.get('sluice-batch-channel')!) as { channelId: string }).channelId;
    await rig.world.lab.waitFor(
      async () => {
        const r = await fetch(`${rig.world.base}/batch/channel?id=${channelId}`);
        return r.ok && ((await r.json()) as { refund?: { state?: string } }).refund?.state === 'done';
      },
      60_000,
      'the router has recorded the refund',
    );
    page.fire(30_000);
    await page.settle();
    assert.match(box.text(), new RegExp(`${Number(PRICE - charged) / 1e6} USDC came back to your wallet`), box.text());
  },
);

test.run();
