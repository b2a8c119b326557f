// tier: chain
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
import * as assert from 'uvu/assert';
import type { Hex } from 'viem';
import { batchPageRig, FUNDS, PRICE, STEPS } from './batch-page-rig.ts';
import { loadPage, PORTAL_DIR, type FakePage } from './fake-dom.ts';

const rig = batchPageRig('pay page: batch-settlement on anvil, end to end', {
  mac: '02:00:00:00:0c:41',
  refund: 'at-end',
  holdingProxy: true,
});
const { test, MAC, storage, prompts, ethereum, batchButton, buy, terminate } = rig;

let channelId: Hex;
let charged = 0n;

/** The page loaded again from storage, a purchase of STEPS paid on it. */
async function boughtPage(): Promise<FakePage> {
  const page = await loadPage({ base: rig.world.base, ethereum, storage, languages: ['en-US'], now: Date.now() });
  await buy(page, STEPS);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  return page;
}

/** A purchase of STEPS on `page` that one wallet signature pays: the top-up deposit. */
async function topUp(page: FakePage): Promise<void> {
  prompts.length = 0;
  await buy(page, STEPS);
  assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
  const signatures = prompts.filter((m) => m === 'eth_signTypedData_v4').length;
  assert.is(signatures, 1, 'one wallet signature: the top-up deposit');
}

test("the daemon serves the page's batch-settlement scripts as they are built", async () => {
  for (const file of ['batch.js', 'batch-page.js']) {
    const res = await fetch(`${rig.world.base}/${file}`);
    assert.is(res.status, 200, file);
    assert.is(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.is(await res.text(), readFileSync(`${PORTAL_DIR}/${file}`, 'utf8'), file);
  }
  // batch.js, then batch-page.js, before portal.js (which attaches them; other methods' scripts may sit between).
  assert.match(
    readFileSync(`${PORTAL_DIR}/index.html`, 'utf8'),
    new RegExp(
      /<script src="\/batch\.js"><\/script>\s*<script src="\/batch-page\.js"><\/script>/.source +
        /[\s\S]*?<script src="\/portal\.js">/.source,
    ),
  );
});

test(
  "the page offers the deposit beside the prepaid price; one wallet signature deposits, the page's key signs the " +
    'voucher',
  async () => {
    const page = await loadPage({ base: rig.world.base, ethereum, storage, languages: ['en-US'], now: Date.now() });
    const { card } = batchButton(page);
    assert.match(
      card.text(),
      /Or deposit 0\.01 USDC: you pay only for what you use, the rest comes back to your wallet\./,
    );
    await buy(page, STEPS);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    assert.match(page.byId('message').textContent, /^Paid\. You are online: 10 min/);
    assert.equal(prompts.filter((m) => m === 'eth_signTypedData_v4').length, 1, 'the wallet signed once: the deposit');
    const rec = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
    assert.match(rec.key, /^0x[0-9a-f]{64}$/);
    assert.is(rec.config.payer.toLowerCase(), rig.buyer.address.toLowerCase());
    assert.is.not(
      rec.config.payerAuthorizer.toLowerCase(),
      rig.buyer.address.toLowerCase(),
      "vouchers are signed by the page's own key",
    );
    assert.is(rec.ceiling, String(PRICE));
    channelId = rec.channelId as Hex;
    const session = await rig.world.lab.session(MAC);
    // The reference is channelId:ceiling (a server that numbers the channel's purchases appends :n).
    assert.match(
      String((session.payments as Array<Record<string, unknown>>).at(-1)!.reference),
      new RegExp(`^${channelId}:${PRICE}(:\\d+)?$`),
    );
    await rig.world.lab.waitFor(() => rig.world.lab.clientState(MAC) === 'Authenticated', 30_000, 'gate open');
    assert.is(
      await rig.world.usdc.balanceOf(rig.buyer.address),
      FUNDS - PRICE,
      'the deposit is the price of the steps chosen',
    );
    assert.equal(await rig.world.channel(channelId), [PRICE, 0n]);
  },
);

test(
  'the window closes; the session ends: the receiver gets exactly the metered price, the customer exactly the ' +
    'rest',
  async () => {
    charged = await terminate();
    assert.ok(charged > 0n && charged < PRICE);
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.world.receiver)) === charged,
      60_000,
      'claimed and settled',
    );
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.buyer.address)) === FUNDS - charged,
      60_000,
      'the rest refunded',
    );
    assert.equal(await rig.world.channel(channelId), [charged, charged]);
  },
);

test(
  'the page again, from storage: the same channel and key, the charge re-synced from the router, a top-up ' +
    'deposit; to the unit',
  async () => {
    prompts.length = 0;
    const page = await loadPage({ base: rig.world.base, ethereum, storage, languages: ['de-DE'], now: Date.now() });
    assert.match(batchButton(page).card.text(), /Oder hinterlegen Sie 0,01 USDC/);
    await buy(page, STEPS);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    const rec = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
    assert.is(rec.channelId, channelId, 'the same channel');
    assert.is(rec.charged, String(charged), 're-synced from the corrective 402');
    assert.is(rec.ceiling, String(charged + PRICE));
    assert.equal(
      prompts.filter((m) => m === 'eth_signTypedData_v4').length,
      1,
      'one wallet signature: the top-up deposit',
    );
    const session = await rig.world.lab.session(MAC);
    assert.match(
      String((session.payments as Array<Record<string, unknown>>).at(-1)!.reference),
      new RegExp(`^${channelId}:${charged + PRICE}(:\\d+)?$`),
    );
    assert.is(await rig.world.usdc.balanceOf(rig.buyer.address), FUNDS - charged - PRICE);

    const second = await terminate();
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.world.receiver)) === charged + second,
      60_000,
      'claimed and settled',
    );
    await rig.world.lab.waitFor(
      async () => (await rig.world.usdc.balanceOf(rig.buyer.address)) === FUNDS - charged - second,
      60_000,
      'the rest refunded',
    );
    assert.equal(await rig.world.channel(channelId), [charged + second, charged + second]);
  },
);

test(
  "the page loaded while the last session's refund has landed on chain and not yet on the router: the top-up " +
    'deposit is sized from the balance the refund leaves',
  async () => {
    const { world } = rig;
    let page = await boughtPage();
    const refundHeld = world.proxy!.delayAnswer('refund');
    const before = (await world.channel(channelId))[0];
    const third = await terminate();
    // The refund is on chain (the facilitator answered it), its answer held from the daemon.
    const answerRefund = await refundHeld;
    const [balance] = await world.channel(channelId);
    assert.ok(balance < before, 'the refund landed on chain');

    // The page asks the router for its channel while the refund's answer is out; the answer goes once the router has
    // answered the page, or after a while when it waits for the refund (then the page's request is either waiting or
    // not yet sent: both see the balance the refund leaves).
    let channelAnswered!: () => void;
    const answered = new Promise<void>((r) => (channelAnswered = r));
    const loading = loadPage({
      handler: async (path, init) => {
        const res = await fetch(`${world.base}${path}`, init);
        const text = await res.text();
        if (path.startsWith('/batch/channel')) channelAnswered();
        return { status: res.status, headers: Object.fromEntries(res.headers), text };
      },
      ethereum,
      storage,
      languages: ['en-US'],
      now: Date.now(),
    });
    await Promise.race([answered, new Promise((r) => setTimeout(r, 2000))]);
    answerRefund();
    page = await loading;
    await topUp(page);
    const charged = (await world.channel(channelId))[1];
    assert.is(charged, BigInt(JSON.parse(storage.get('sluice-batch-channel')!).charged));
    assert.ok(third > 0n);
    assert.equal(await world.channel(channelId), [charged + PRICE, charged], 'the deposit tops up to the new ceiling');
  },
);

test(
  'a refund that lands after the page last asked for its channel: the purchase asks again and sizes the top-up ' +
    'deposit from the balance the refund leaves',
  async () => {
    const { world } = rig;
    const page = await boughtPage();
    // The purchase's answer refreshed the page's channel; the session's end and its refund come after, and the page's
    // 30 s refresh is not fired before the next click.
    const refund = async () => {
      const r = await fetch(`${world.base}/batch/channel?id=${channelId}`);
      return ((await r.json()) as { refund: { state: string; done_at?: number } }).refund;
    };
    const before = (await world.channel(channelId))[0];
    const lastRefund = await refund();
    await terminate();
    await world.lab.waitFor(
      async () => {
        const r = await refund();
        return r.state === 'done' && r.done_at !== lastRefund.done_at;
      },
      60_000,
      'the router has recorded the refund',
    );
    const [balance, charged] = await world.channel(channelId);
    assert.ok(balance < before, 'the refund landed on chain');
    await topUp(page);
    const rec = JSON.parse(storage.get('sluice-batch-channel')!) as { charged: string; ceiling: string };
    assert.is(BigInt(rec.charged), charged);
    // Above the last ceiling signed (a voucher at or below it could be a replay), and at least charged + the price.
    assert.ok(BigInt(rec.ceiling) > before && BigInt(rec.ceiling) >= charged + PRICE, rec.ceiling);
    assert.equal(
      await world.channel(channelId),
      [BigInt(rec.ceiling), charged],
      'the deposit tops up to the new ceiling',
    );
  },
);

test.run();
