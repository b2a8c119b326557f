// tier: peers; needs chromium
/**
 * TollGate's door as a browser page on another origin calls it (TollGate's own page lives on the router's :2051 and
 * calls the door on :2121): headless Chromium (test/e2e/browser.ts) on a blank page of its own origin fetches every
 * route the way TollGate's page does, mostly without reading the body (TollGate's page never reads the 1022 of its
 * payment), against the real daemon and the lab Cashu mint. Every answer must finish loading in Chromium, read or not
 * (DevTools' loadingFinished: the whole body arrived and the loader closed), and the bodies received must be the
 * right events. The page reads one payment's body itself, as a client reading the 1022 would.
 * docs/tollgate.md "TollGate's own page"; test/e2e/tollgate-page.test.ts runs TollGate's page itself when it is built.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { startCashuMint, type CashuMint } from '../peers/cashu-mint.ts';
import { Browser, type Page } from '../e2e/browser.ts';
import { NetworkLog, describe } from '../e2e/browser-network.ts';
import { startStaticSite, type StaticSite } from '../e2e/static-site.ts';
import { httpSection } from '../helpers/uci-sections.ts';
import { signEvent, verifyEvent, type NostrEvent } from '../../src/payments/cashu/nostr/event.ts';

const test = suite("TollGate's door from a page on another origin, in Chromium");

/** Chromium's requests to a loopback address come from 127.0.0.1: the portal lists it as the phone. */
const PHONE = { ip: '127.0.0.1', mac: '02:00:00:00:52:08' };
const PRICE = 21;
const STEP_MS = 60_000;

let lab: DaemonLab;
let mint: CashuMint;
let site: StaticSite;
let browser: Browser;
let page: Page;
let net: NetworkLog;
let door = '';
/** sluice's own LAN endpoint (the pay page): its answers are read by its own page, on its own origin. */
let lan = '';

const tag = (e: NostrEvent, name: string): string[] | undefined => e.tags.find((t) => t[0] === name);

test.before(async () => {
  mint = await startCashuMint();
  const port = await freePort();
  door = `http://127.0.0.1:${port}`;
  const lanPort = await freePort();
  lan = `http://127.0.0.1:${lanPort}`;
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${port}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '${PRICE}'
\toption min_steps '1'
${httpSection(lanPort)}`,
  });
  lab.portal.addClient(PHONE.mac, PHONE.ip);
  await lab.startDaemon();
  site = await startStaticSite({ host: '127.0.0.1', port: await freePort(), dir: null });
  browser = await Browser.launch(null);
  page = await browser.newPage({ width: 390, height: 844, mobile: true });
  net = await NetworkLog.attach(page);
  await page.goto(`${site.origin}/`);
});

test.after(async () => {
  await browser?.close();
  await site?.close();
  await lab?.close();
  await mint?.stop();
});

test('every answer finishes loading, read or not; the 1022 is the purchase; a page reading it gets it', async () => {
  const routerKey = (JSON.parse(await (await fetch(`${door}/`)).text()) as NostrEvent).pubkey;
  const paid = await mint.fundToken(2 * PRICE);
  const payment = signEvent(
    {
      kind: 21000,
      created_at: Math.floor(Date.now() / 1000),
      content: '',
      tags: [
        ['p', routerKey],
        ['device-identifier', 'mac', PHONE.mac],
        ['payment', paid],
      ],
    },
    Uint8Array.from(randomBytes(32)),
  );
  const raw = await mint.fundToken(PRICE);
  // As TollGate's page calls the door: the advertisement, /whoami, then the payment as application/json (a CORS
  // preflight first); /usage while the session runs. Only the last payment's body is read, by the page.
  const statuses = await page.evaluate<Record<string, number | string>>(`(async () => {
    const door = ${JSON.stringify(door)};
    const out = {};
    const call = async (label, path, init) => { out[label] = (await fetch(door + path + '?' + label, init)).status; };
    await call('advert', '/');
    await call('whoami', '/whoami');
    await call('usage-before', '/usage');
    await call('balance', '/balance');
    const pay = {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: ${JSON.stringify(JSON.stringify(payment))},
    };
    await call('pay', '/', pay);
    await call('pay-again', '/', pay);
    await call('usage-after', '/usage');
    await call('unknown-route', '/portal');
    const r = await fetch(door + '/?pay-raw-read', {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: ${JSON.stringify(raw)},
    });
    out['pay-raw-read'] = r.status;
    out['pay-raw-read-body'] = await r.text();
    return out;
  })()`);
  assert.equal(
    { ...statuses, 'pay-raw-read-body': undefined },
    {
      advert: 200,
      whoami: 200,
      'usage-before': 200,
      balance: 200,
      pay: 200,
      'pay-again': 402,
      'usage-after': 200,
      'unknown-route': 404,
      'pay-raw-read': 200,
      'pay-raw-read-body': undefined,
    },
  );

  const exchanges = await net.settled(door);
  assert.ok(
    exchanges.every((x) => x.state === 'finished'),
    `every answer of the door finishes loading:\n${describe(exchanges)}`,
  );
  // The preflight was asked and answered for the JSON payment; its answer lets the page read the payment's answer.
  assert.ok(exchanges.some((x) => x.method === 'OPTIONS' && x.status === 204));

  const byLabel = (label: string) => exchanges.find((x) => x.method !== 'OPTIONS' && x.url.endsWith(`?${label}`))!;
  const session = JSON.parse(await net.body(byLabel('pay').id)) as NostrEvent;
  assert.is(session.kind, 1022);
  assert.ok(verifyEvent(session));
  assert.is(session.pubkey, routerKey);
  assert.equal(tag(session, 'p'), ['p', payment.pubkey]);
  assert.equal(tag(session, 'device-identifier'), ['device-identifier', 'mac', PHONE.mac]);
  assert.equal(tag(session, 'allotment'), ['allotment', String(2 * STEP_MS)]);
  assert.equal(tag(session, 'metric'), ['metric', 'milliseconds']);
  const refusal = JSON.parse(await net.body(byLabel('pay-again').id)) as NostrEvent;
  assert.is(refusal.kind, 21023);
  assert.equal(tag(refusal, 'code'), ['code', 'payment-error-token-spent']);
  assert.is(await net.body(byLabel('whoami').id), `mac=${PHONE.mac}`);
  assert.is(await net.body(byLabel('usage-before').id), '-1/-1');
  assert.match(await net.body(byLabel('usage-after').id), /^\d+\/120000$/);

  // The body the page read itself: the top-up's 1022, the allotment now three steps.
  const topUp = JSON.parse(String(statuses['pay-raw-read-body'])) as NostrEvent;
  assert.is(topUp.kind, 1022);
  assert.ok(verifyEvent(topUp));
  assert.equal(tag(topUp, 'allotment'), ['allotment', String(3 * STEP_MS)]);
});

test("sluice's own pay page, paying with Cashu: every answer of the LAN endpoint finishes loading", async () => {
  const own = await browser.newPage({ width: 390, height: 844, mobile: true });
  const ownNet = await NetworkLog.attach(own);
  await own.goto(`${lan}/portal`);
  await own.waitFor('the Cashu form', `!!document.getElementById('cashu-token')`);
  const token = await mint.fundToken(PRICE);
  await own.evaluate(`document.getElementById('cashu-token').value = ${JSON.stringify(token)}`);
  await own.click('#cashu-pay');
  await own.waitFor('the session shown', `!document.getElementById('session').hidden`);
  const exchanges = await ownNet.settled(lan);
  const routes = [...new Set(exchanges.map((x) => `${x.method} ${new URL(x.url).pathname}`))];
  console.log(`# the pay page's ${exchanges.length} exchanges: ${routes.join(', ')}`);
  assert.ok(exchanges.some((x) => x.method === 'POST' && x.url === `${lan}/cashu/pay` && x.status === 200));
  assert.ok(
    exchanges.every((x) => x.state === 'finished'),
    `every answer of the LAN endpoint finishes loading:\n${describe(exchanges)}`,
  );
});

test.run();
