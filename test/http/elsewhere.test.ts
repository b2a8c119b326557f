// tier: fast
/**
 * The pay page without a browser wallet (elsewhere.js on the stand-in DOM): links that open the page in three wallet
 * apps' browsers, in their documented forms, and a QR code of the page's address that decodes to the module matrix
 * qr.js makes for it; with a wallet, neither.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPage } from './fake-dom.ts';

const PLANS = { status: 200, body: { methods: { x402: true, voucher: false, batch_settlement: false }, plans: [] } };
const handler = (path: string) =>
  path === '/' ? PLANS : { status: 404, body: { error: { code: 'ERR_SESSION_NOT_FOUND', message: '' } } };

test(
  "no wallet: MetaMask, Coinbase Wallet and Trust Wallet links to this page, and its QR code, in the customer's " +
    'language',
  async () => {
    const page = await loadPage({ handler, languages: ['fr-FR'] });
    const url = 'http://192.168.1.1:2122/portal';
    const links = page
      .byId('wallet-apps')
      .all()
      .filter((e) => e.tagName === 'a')
      .map((a) => [a.textContent, a.getAttribute('href')]);
    assert.equal(links, [
      ['MetaMask', 'https://metamask.app.link/dapp/192.168.1.1:2122/portal'],
      ['Coinbase Wallet', `https://go.cb-w.com/dapp?cb_url=${encodeURIComponent(url)}`],
      ['Trust Wallet', `https://link.trustwallet.com/open_url?coin_id=60&url=${encodeURIComponent(url)}`],
    ]);
    assert.match(page.byId('wallet-apps').text(), 'Ouvrez cette page');
    assert.is(page.byId('page-qr-box').hidden, false);
    const src = page.byId('page-qr').getAttribute('src')!;
    assert.ok(src.startsWith('data:image/svg+xml,'));
    const svg = decodeURIComponent(src.slice('data:image/svg+xml,'.length));
    // The image draws exactly the dark modules of the page address's code (qr.test.ts checks those against vectors).
    const sandbox: Record<string, unknown> = {};
    runInNewContext(
      readFileSync(new URL('../../files/usr/share/sluice/portal/qr.js', import.meta.url), 'utf8'),
      sandbox,
    );
    const code = (sandbox.SluiceQr as { encode(t: string, l: string): { modules: boolean[][] } }).encode(url, 'M');
    assert.is(svg.match(/h1v1h-1z/g)!.length, code.modules.flat().filter(Boolean).length);
    assert.match(
      svg,
      /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 37 37"/,
      'version 3 (29 modules) with a 4-module quiet zone',
    );
    assert.is(page.byId('wallet-hint').hidden, false);
  },
);

test('with a browser wallet: no links, no code', async () => {
  const page = await loadPage({ handler, ethereum: { request: async () => [] } });
  assert.equal(page.byId('wallet-apps').children, []);
  assert.is(page.byId('page-qr-box').hidden, true);
});

test.run();
