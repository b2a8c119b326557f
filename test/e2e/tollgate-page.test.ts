// tier: peers; needs chromium
/**
 * TollGate's own captive-portal page (OpenTollGate/tollgate-captive-portal-site), built from its public source with its
 * own `npm run build` outside this repository (docs/tollgate.md "TollGate's own page" says how), pays sluice in
 * headless Chromium as it would on a TollGate router: the built files served from their own origin on :2051 (a static
 * server, as the router's uhttpd), calling sluice's TollGate door on :2121 of the same host (the page always calls
 * `http://<its host>:2121`), the real daemon, the lab Cashu mint. A customer pastes a token and presses the button:
 *   - every answer the page receives finishes loading (DevTools' loadingFinished), read by the page or not;
 *   - the 1022 Chromium received for the payment is the purchase (signed by the router's key, `p` the page's 21000
 *     pubkey, the device's MAC, the paid allotment), and the session is an ordinary cashu session over ubus;
 *   - the page shows the session: "access granted" with the paid time and the device's MAC, and, polling `/usage` as it
 *     does, keeps showing it while the session lives and says "session expired" once it has ended (its 30 s poll runs
 *     every 0.3 s here: each `setInterval` of 30 s or more is scaled down by SPEEDUP before the page's scripts run;
 *     the page's code is the built files as they are).
 * Finds the build in SLUICE_TOLLGATE_PAGE (the build directory) or ~/.cache/sluice-peers/tollgate-captive-portal-site/
 * build; without one it is a counted skip (CI cannot fetch it). SLUICE_E2E_SCREENSHOTS=<dir> keeps a PNG of each step.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { startCashuMint, type CashuMint } from '../peers/cashu-mint.ts';
import { skipTest } from '../helpers/skip.ts';
import { Browser, type Page } from './browser.ts';
import { NetworkLog, describe } from './browser-network.ts';
import { startStaticSite, type StaticSite } from './static-site.ts';
import { verifyEvent, type NostrEvent } from '../../src/payments/cashu/nostr/event.ts';

const test = suite("TollGate's own page pays sluice in Chromium");

const BUILD =
  process.env['SLUICE_TOLLGATE_PAGE'] ?? join(homedir(), '.cache/sluice-peers/tollgate-captive-portal-site/build');
/**
 * The router's address as the page sees it. Not 127.0.0.1 nor localhost: on those host names the page falls back to
 * its built-in demo data when the door does not answer, which would hide a failure.
 */
const HOST = '127.0.0.52';
/** The ports a TollGate router uses: the page calls :2121 on its own host, whatever serves it. */
const DOOR_PORT = 2121;
const PAGE_PORT = 2051;
/** Chromium's requests to 127.0.0.52 come from 127.0.0.1: the portal lists it as the phone. */
const PHONE = { ip: '127.0.0.1', mac: '02:00:00:00:52:10' };
const PRICE = 21;
const STEPS = 2;
const STEP_MS = 60_000;
/** The page's 30 s /usage poll, every 0.3 s. */
const SPEEDUP = 100;
const SHOTS = process.env['SLUICE_E2E_SCREENSHOTS'];

const why = !existsSync(join(BUILD, 'splash.html'))
  ? `no build of tollgate-captive-portal-site at ${BUILD} (SLUICE_TOLLGATE_PAGE; docs/tollgate.md says how to build it)`
  : null;

let lab: DaemonLab;
let mint: CashuMint;
let site: StaticSite;
let browser: Browser;
let page: Page;
let net: NetworkLog;
const door = `http://${HOST}:${DOOR_PORT}`;

const tag = (e: NostrEvent, name: string): string[] | undefined => e.tags.find((t) => t[0] === name);
const text = (selector: string): Promise<string> =>
  page.evaluate(`document.querySelector(${JSON.stringify(selector)})?.innerText ?? ''`);
const shot = async (name: string): Promise<void> => {
  if (SHOTS) await page.screenshot(join(SHOTS, `tollgate-page-${name}.png`));
};

if (why) {
  skipTest(test, "TollGate's own page", why, { ciInstalls: false });
} else {
  test.before(async () => {
    // v1 keyset ids (`00…`): the page decodes tokens with cashu-ts 2.9, which cannot read a V4 token of a mint with
    // v2 ids (it names a keyset by a short id only the mint's list resolves): such a token shows as CU102, undecodable.
    mint = await startCashuMint({ idVersion: 0 });
    lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '${HOST}:${DOOR_PORT}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '${PRICE}'
\toption min_steps '1'
`,
    });
    lab.portal.addClient(PHONE.mac, PHONE.ip);
    await lab.startDaemon();
    site = await startStaticSite({ host: HOST, port: PAGE_PORT, dir: BUILD, index: 'splash.html' });
    browser = await Browser.launch(null);
    page = await browser.newPage({ width: 390, height: 844, mobile: true });
    net = await NetworkLog.attach(page);
    await page.send('Page.addScriptToEvaluateOnNewDocument', {
      source: `(() => {
        const every = window.setInterval.bind(window);
        window.setInterval = (fn, ms, ...args) => every(fn, ms >= 30000 ? ms / ${SPEEDUP} : ms, ...args);
      })();`,
    });
  });

  test.after(async () => {
    await browser?.close();
    await site?.close();
    await lab?.close();
    await mint?.stop();
  });

  test('a pasted token buys the session; every answer finishes; the 1022 is right; the page shows it', async () => {
    await page.goto(`${site.origin}/splash.html`);
    const input = '.tollgate-captive-portal-method-input input';
    await page.waitFor('the token field', `!!document.querySelector(${JSON.stringify(input)})`);
    assert.match(await text('.tollgate-captive-portal-method-footer'), PHONE.mac);
    await shot('1-open');

    const token = await mint.fundToken(STEPS * PRICE);
    await page.evaluate(`document.querySelector(${JSON.stringify(input)}).focus()`);
    await page.send('Input.insertText', { text: token });
    const buy = '.tollgate-captive-portal-method-submit button.cta';
    await page.waitFor('the purchase button', `!!document.querySelector(${JSON.stringify(buy)})`);
    await shot('2-token');
    await page.click(buy);
    const granted = '.tollgate-captive-portal-access-granted';
    await page.waitFor('access granted', `!!document.querySelector(${JSON.stringify(granted)})`);
    assert.match(await text(granted), `${STEPS} minutes`);
    await shot('3-granted');

    const session = await lab.session(PHONE.mac);
    assert.is(session.state, 'ACTIVE');
    assert.is((session.payments as Array<{ method: string }>)[0]!.method, 'cashu');

    // The page has polled /usage on the live session (scaled: a few polls by now) and still shows it.
    const polled = () => net.to(`${door}/usage`).filter((x) => x.status === 200).length;
    await lab.waitFor(() => polled() >= 2, 10_000, 'the page polling /usage');
    const live = `${granted}-duration`;
    assert.ok(await page.evaluate<boolean>(`!!document.querySelector(${JSON.stringify(live)})`), 'still the session');

    const exchanges = await net.settled(door);
    console.log(`# ${exchanges.length} exchanges with the door:\n${describe(exchanges).replace(/^/gm, '#   ')}`);
    assert.ok(
      exchanges.every((x) => x.state === 'finished'),
      `every answer of the door finishes loading:\n${describe(exchanges)}`,
    );
    const paid = exchanges.filter((x) => x.method === 'POST');
    assert.is(paid.length, 1, describe(exchanges));
    assert.is(paid[0]!.status, 200);
    const event = JSON.parse(await net.body(paid[0]!.id)) as NostrEvent;
    const advert = JSON.parse(await net.body(exchanges.find((x) => x.url === `${door}/`)!.id)) as NostrEvent;
    assert.is(event.kind, 1022);
    assert.ok(verifyEvent(event));
    assert.is(event.pubkey, advert.pubkey);
    assert.is(tag(event, 'p')?.[1]?.length, 64, "p: the page's 21000 pubkey");
    assert.equal(tag(event, 'device-identifier'), ['device-identifier', 'mac', PHONE.mac]);
    assert.equal(tag(event, 'allotment'), ['allotment', String(STEPS * STEP_MS)]);
    assert.equal(tag(event, 'metric'), ['metric', 'milliseconds']);

    // The session ends (the operator ends it): the page's next polls read -1/-1 and it says so.
    const t = await lab.callStatus('terminate', { mac: PHONE.mac });
    assert.is(t.status, 0, JSON.stringify(t.data));
    await page.waitFor(
      'session expired',
      `!document.querySelector(${JSON.stringify(live)}) && ` +
        `!!document.querySelector(${JSON.stringify(`${granted} button.cta`)})`,
    );
    assert.match(await text(granted), /expired/i);
    await shot('4-expired');
    const after = await net.settled(door);
    assert.ok(
      after.every((x) => x.state === 'finished'),
      describe(after),
    );
    assert.ok(after.some((x) => x.url === `${door}/usage` && x.state === 'finished'));
  });
}

test.run();
