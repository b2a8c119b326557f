// tier: fast
// max_balance (docs/tollgate.md "The cap") against the lab mint and the lab LNURL server (test/peers/, in-process on
// loopback): ecash taken by a payout still in flight counts against the cap until the mint says it is gone, for a
// token (cashu.ts precheck) and a Lightning invoice (lightning.ts openQuote) alike — a melt that fails gives it back,
// so without it the router could end up holding a payout's worth more than the cap. Once the payout is paid, there
// is room again. Payments asked at once never pass the cap together, nor the open-invoice limits (2 per device, 32 on
// the router: docs/tollgate.md "Pay page"); a request that fails gives its place back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { createPaymentRegistry } from '../../src/payments/index.ts';
import { CashuMethod } from '../../src/payments/cashu/cashu.ts';
import { CashuCustody } from '../../src/payments/cashu/custody.ts';
import { openQuote } from '../../src/payments/cashu/lightning.ts';
import { INVOICE_ROOM_DIVISOR, MAX_OPEN_INVOICES } from '../../src/payments/cashu/invoice-slots.ts';
import { cashuLanFace } from '../../src/payments/cashu/lan-face.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { startLnurlServer } from '../peers/lnurl-server.ts';
import { setup } from '../sessions/helpers.ts';

const MAC = '02:00:00:00:ca:31';
const OTHER = '02:00:00:00:ca:32';

/** 'ok', or the refusal's code. */
async function outcomeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected a refusal');
}

/** The cashu method and the custody on one store, 60 sat at most (or `maxBalance`), payouts to the lab LNURL server. */
async function rig(mint: CashuMint, maxBalance = 60) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cashu-cap-'));
  const ln = await startLnurlServer({ invoice: (sat) => mint.invoice(sat) });
  const config = configFromUci(
    parseUci(`
config sluice 'main'
\toption state_dir '${dir}'
config pricing 'time'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption price_per_step '2'
\toption min_steps '2'
\toption max_balance '${maxBalance}'
\toption payout_address '${ln.lnurl}'
\toption payout_min '100000'
`),
    { hostname: 'r' },
  );
  const env = await setup();
  const cashu = await CashuMethod.open({ config, sessions: env.manager, clock: env.time, timers: env.time });
  await cashu.refreshKeysets();
  const custody = CashuCustody.open({ store: cashu.store, stateDir: dir, tollgate: config.tollgate! });
  const merchant = new Merchant({
    pricing: new Pricing(config.pricing),
    sessions: env.manager,
    payments: createPaymentRegistry([cashu]),
    clock: env.time,
  });
  const buy = (token: string, mac = MAC) => merchant.purchase({ mac, payment: { method: 'cashu', token } });
  const close = async () => {
    await custody.close();
    await cashu.close();
    await env.manager.close();
    await ln.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...env, cashu, custody, buy, close, config };
}

test('a payout in flight counts against max_balance until the mint says paid: tokens and invoices alike', async () => {
  const mint = await CashuMint.start();
  mint.setAutoPay(false);
  const r = await rig(mint);
  try {
    await r.buy(mint.issuedToken(40));
    mint.meltOutcome('pending');
    const out = await r.custody.payout();
    assert.is(out.state, 'pending');
    assert.is(r.cashu.store.total(), 0n, 'the taken proofs are out of the spendable balance');
    // 40 sat on their way out + 40 would pass 60: if the melt failed, the router would hold 80.
    const token = mint.issuedToken(40);
    assert.is(await codeOf(r.buy(token, OTHER)), 'ERR_CASHU_BALANCE_FULL');
    assert.is(await codeOf(openQuote(r.cashu, OTHER, undefined, 20n)), 'ERR_CASHU_BALANCE_FULL', '40 sat invoice');
    assert.is(mint.calls('POST /v1/swap'), 1, 'the refused token was not swapped');
    assert.is(mint.calls('POST /v1/mint/quote/bolt11'), 0, 'no invoice asked of the mint');
    // What still fits beside the payout is taken: 40 + 10 ≤ 60.
    await r.buy(mint.issuedToken(10), OTHER);

    mint.settleMelt(out.quote as string, 'paid');
    await r.custody.runPass();
    assert.equal(r.cashu.store.takes(), [], 'the payout ended: its proofs are gone');
    const held = r.cashu.store.total();
    assert.ok(held >= 10n && held <= 12n, `10 sat and the payout's change: ${held}`);
    const invoice = await openQuote(r.cashu, OTHER, undefined, 2n);
    assert.is(invoice.amount, '4', 'room again for an invoice');
    // ≤ 12 held + the open invoice's 4 + 40 ≤ 60.
    await r.buy(token, OTHER);
    assert.ok(r.cashu.store.total() >= 50n, 'and for the token refused before');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test('a payout that fails gives its ecash back: the cap held all along, so the router stays within it', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.buy(mint.issuedToken(50));
    mint.meltOutcome('pending');
    const out = await r.custody.payout();
    assert.is(out.state, 'pending');
    assert.is(await codeOf(r.buy(mint.issuedToken(20), OTHER)), 'ERR_CASHU_BALANCE_FULL');
    mint.settleMelt(out.quote as string, 'failed');
    await r.custody.runPass();
    assert.is(r.cashu.store.total(), 50n, 'held again');
    assert.ok(r.cashu.store.total() <= 60n, 'within max_balance');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test('payments at once are each counted as they are let in: never two that pass max_balance together', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    // 40 + 40 would pass 60: whichever comes second is refused, though neither is on flash when the other is checked.
    const tokens = [mint.issuedToken(40), mint.issuedToken(40)];
    const codes = await Promise.all([r.buy(tokens[0]!), r.buy(tokens[1]!, OTHER)].map((p) => outcomeOf(p)));
    assert.equal(codes.sort(), ['ERR_CASHU_BALANCE_FULL', 'ok']);
    assert.is(r.cashu.store.exposure(), 40n);
    assert.is(mint.calls('POST /v1/swap'), 1, 'the refused token was not swapped');
    // Two 10-sat invoices fit beside it (60), a third asked at the same time does not.
    const macs = ['02:00:00:00:ca:41', '02:00:00:00:ca:42', '02:00:00:00:ca:43'];
    const invoices = macs.map((mac) => outcomeOf(openQuote(r.cashu, mac, undefined, 5n)));
    assert.equal((await Promise.all(invoices)).sort(), ['ERR_CASHU_BALANCE_FULL', 'ok', 'ok']);
    assert.is(r.cashu.store.exposure(), 60n);
    assert.is(mint.calls('POST /v1/mint/quote/bolt11'), 2, 'the one that did not fit was refused before the mint');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test('invoices asked at once are each counted as they are let in: 2 per device, 32 on the router', async () => {
  const mint = await CashuMint.start();
  mint.setAutoPay(false);
  const r = await rig(mint, 1000);
  try {
    const quotes = () => mint.calls('POST /v1/mint/quote/bolt11');
    const three = [1, 2, 3].map(() => outcomeOf(openQuote(r.cashu, MAC, undefined, 2n)));
    assert.equal((await Promise.all(three)).sort(), ['ERR_PAYMENT_IN_PROGRESS', 'ok', 'ok'], 'one device');
    assert.is(quotes(), 2, 'the third was refused before the mint was asked');
    // 30 places left on the router: 31 devices at once, one each, and one of them refused.
    const macs = Array.from(
      { length: MAX_OPEN_INVOICES - 1 },
      (_, i) => `02:00:00:00:cb:${i.toString(16).padStart(2, '0')}`,
    );
    const codes = await Promise.all(macs.map((mac) => outcomeOf(openQuote(r.cashu, mac, undefined, 2n))));
    assert.is(codes.filter((c) => c === 'ok').length, MAX_OPEN_INVOICES - 2);
    assert.equal([...new Set(codes.filter((c) => c !== 'ok'))], ['ERR_PAYMENT_IN_PROGRESS']);
    assert.is(quotes(), MAX_OPEN_INVOICES);
    assert.is(r.cashu.store.openIntents().length, MAX_OPEN_INVOICES, 'on flash: the limit, not more');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test('an invoice whose mint quote or write fails gives its place back', async () => {
  const mint = await CashuMint.start();
  mint.setAutoPay(false);
  const r = await rig(mint, 1000);
  try {
    const down = mint.fault('POST /v1/mint/quote/bolt11', '5xx');
    assert.is(await codeOf(openQuote(r.cashu, MAC, undefined, 2n)), 'ERR_CASHU_MINT_UNAVAILABLE');
    await down.clear();
    const store = r.cashu.store;
    const write = store.beginSwap.bind(store);
    store.beginSwap = () => Promise.reject(new Error('EIO: the flash write failed'));
    assert.match(await codeOf(openQuote(r.cashu, MAC, undefined, 2n)), /EIO/);
    store.beginSwap = write;
    assert.is(store.openIntents().length, 0, 'neither is open');
    // Both places still this device's: two invoices at once, then a refusal.
    const two = [1, 2].map(() => outcomeOf(openQuote(r.cashu, MAC, undefined, 2n)));
    assert.equal(await Promise.all(two), ['ok', 'ok']);
    assert.is(await codeOf(openQuote(r.cashu, MAC, undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test("an invoice buys no more steps than a token or the offer: the plan's max_steps, one rule", async () => {
  const mint = await CashuMint.start();
  mint.setAutoPay(false);
  const r = await rig(mint, 100_000);
  try {
    // The tollgate section sets no max_steps: the plan's (100 by default) is the cap for all three.
    const offer = cashuLanFace(() => r.config, r.cashu).offer();
    assert.is(offer.max_steps, '100');
    assert.is(await codeOf(openQuote(r.cashu, MAC, undefined, 2380n)), 'ERR_INVALID_ARGUMENT');
    assert.is(await codeOf(openQuote(r.cashu, MAC, undefined, 101n)), 'ERR_INVALID_ARGUMENT');
    assert.is(await codeOf(r.buy(mint.issuedToken(202))), 'ERR_CASHU_TOO_LARGE');
    assert.throws(() => cashuLanFace(() => r.config, r.cashu).offer(101n), /steps: from 2 to 100/);
    assert.is(mint.calls('POST /v1/mint/quote/bolt11'), 0, 'the mint was never asked');
    assert.is((await openQuote(r.cashu, MAC, undefined, 100n)).amount, '200');
  } finally {
    await r.close();
    await mint.stop();
  }
});

test('invoices from many MACs hold at most their share of max_balance: tokens keep the rest', async () => {
  const mint = await CashuMint.start();
  mint.setAutoPay(false);
  const r = await rig(mint, 1000);
  try {
    const share = 1000n / INVOICE_ROOM_DIVISOR;
    // 40 devices (rotated MACs) at once, each the most a device may owe in one invoice here (50 steps, 100 sat).
    const macs = Array.from({ length: 40 }, (_, i) => `02:00:00:00:cc:${i.toString(16).padStart(2, '0')}`);
    const codes = await Promise.all(macs.map((mac) => outcomeOf(openQuote(r.cashu, mac, undefined, 50n))));
    assert.is(codes.filter((c) => c === 'ok').length, Number(share / 100n), 'only the invoices within the share');
    assert.equal([...new Set(codes.filter((c) => c !== 'ok'))], ['ERR_PAYMENT_IN_PROGRESS']);
    assert.is(r.cashu.store.exposure(), share);
    // And one by one afterwards, the same: the share is full.
    assert.is(await codeOf(openQuote(r.cashu, '02:00:00:00:cd:01', undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS');
    // Tokens still have the rest of max_balance (each within the cap of 100 steps, 200 sat).
    for (const [i, sat] of [200, 200, 100].entries()) await r.buy(mint.issuedToken(sat), `02:00:00:00:cd:0${i}`);
    assert.is(r.cashu.store.exposure(), 1000n);
  } finally {
    await r.close();
    await mint.stop();
  }
});

test.run();
