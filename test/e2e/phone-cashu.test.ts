// tier: lab
/**
 * The pay page's Cashu form on a phone: headless Chromium at phone size in a lab client's namespace joins the WiFi, is
 * sent by the real openNDS to sluice's pay page, and pays with Cashu (docs/tollgate.md "Pay page"). The lab mint
 * (tollgate-mint.ts, its own process in the router's namespace, where sluice runs) funds the customer's tokens; sluice
 * sells only through the tollgate section (no x402, no door port: the pay page alone).
 *
 *   1 the Pay with Cashu card: the price in sat, the `cashu:creqA…` wallet link and its QR code
 *   2 a pasted token pays: the gate opens, the upstream answers
 *   3 the same token pasted again is refused in the customer's words ("already used here")
 *   4 Pay with Lightning on a second phone: the router's invoice as a QR code and a lightning: link; the lab mint's
 *     fake Lightning node pays it (auto), the router mints the ecash, the page says so and the session starts
 *
 * SLUICE_E2E_SCREENSHOTS=<dir> keeps a PNG of each step (docs/pay-page/ holds the ones in the docs: cashu-*.png).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_DIR, Lab, UPSTREAM_IP, waitFor } from './lab.ts';
import { dumpLogs, figure, scenario } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';
import { Browser, type Page } from './browser.ts';
import { PAY_PAGE, PHONE, messageOf, phoneSkipReason } from './phone-kit.ts';

const skip = phoneSkipReason();
const PRICE = 2; // sat per 60 s step
let lab: Lab | null = null;
let sluice: Sluice | null = null;
let mintProcess: ChildProcess | null = null;
let tokens: string[] = [];
let browser: Browser | null = null;
let page: Page | null = null;
let failed = false;

async function shot(p: Page, name: string): Promise<void> {
  const dir = process.env['SLUICE_E2E_SCREENSHOTS'] ?? join(lab!.dir, 'screenshots');
  mkdirSync(dir, { recursive: true });
  await p.screenshot(join(dir, `${name}.png`));
}

/** The lab mint in the router's namespace: its URL and `count` funded tokens of `amount` sat. */
function startMint(amount: number, count: number): Promise<{ url: string; tokens: string[] }> {
  const child = (mintProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      lab!.rtNs,
      process.execPath,
      '--import',
      'tsx',
      join(E2E_DIR, 'tollgate-mint.ts'),
      String(amount),
      String(count),
    ],
    { cwd: join(E2E_DIR, '..', '..'), stdio: ['pipe', 'pipe', 'inherit'] },
  ));
  process.once('exit', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve(JSON.parse(line) as { url: string; tokens: string[] }),
    );
    child.once('exit', (code) => reject(new Error(`the lab mint exited with ${code}`)));
  });
}

/** The pasted token, then Pay with Cashu tapped. */
async function paste(p: Page, token: string): Promise<void> {
  await p.evaluate(
    `(() => { const t = document.getElementById('cashu-token'); t.value = ${JSON.stringify(token)}; ` +
      `t.dispatchEvent(new Event('input')); })()`,
  );
  await p.click('#cashu-pay');
}

if (skip) {
  skipTest(test, 'e2e phone Cashu scenarios', skip, { ciInstalls: true });
} else {
  test.before(async () => {
    lab = await Lab.up({ rate: '8mbit', theme: PAY_PAGE });
    const mint = await startMint(10, 1);
    tokens = mint.tokens;
    sluice = await Sluice.start(lab, {
      pollInterval: 1,
      extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption price_per_step '${PRICE}'
\toption min_steps '1'

config http 'http'
\toption listen '${PAY_PAGE}'
`,
    });
    figure(
      `lab ${lab.id}: openNDS with sluice's splash, pay page on ${PAY_PAGE}, the lab mint ${mint.url} in the ` +
        `router's namespace`,
    );
  });
  test.after(async () => {
    await browser?.close().catch(() => undefined);
    if (failed && lab) dumpLogs(lab, sluice ? () => sluice!.logTail() : null);
    mintProcess?.stdin?.end();
    await sluice?.stop();
    if (mintProcess && mintProcess.exitCode === null) mintProcess.kill('SIGKILL');
    await lab?.down();
  });
}

scenario('1 the pay page offers Cashu: price in sat, the cashu: wallet link and its QR code', skip, async () => {
  try {
    const client = lab!.client(1);
    browser = await Browser.launch(client.ns);
    page = await browser.newPage(PHONE);
    for (let attempt = 1; ; attempt++) {
      await page.goto(`http://${UPSTREAM_IP}/`);
      try {
        await page.waitFor(
          'the pay page with its Cashu card',
          `location.host === ${JSON.stringify(PAY_PAGE)} && !document.getElementById('cashu-section').hidden`,
          20_000,
        );
        break;
      } catch (err) {
        const title = await page.evaluate<string>('document.title').catch(() => '');
        if (attempt < 3 && /Client Session Status/.test(title)) {
          figure(`openNDS answered its 511 page (attempt ${attempt}); opening the page again`);
          continue;
        }
        throw err;
      }
    }
    const offer = await page.evaluate<string>(`document.getElementById('cashu-offer').textContent`);
    const link = await page.evaluate<string>(`document.getElementById('cashu-link').getAttribute('href')`);
    const qr = await page.evaluate<boolean>(
      `!document.getElementById('cashu-qr-box').hidden && ` +
        `document.getElementById('cashu-qr').getAttribute('src').startsWith('data:image/svg+xml,')`,
    );
    figure(`c1 the Cashu card: "${offer}", link ${link.slice(0, 24)}…, QR ${qr}`);
    assert.match(offer, `${PRICE} sat`);
    assert.match(link, /^cashu:creqA/);
    assert.ok(qr, 'the payment request as a QR code');
    const width = await page.scrollWidth();
    assert.ok(width.scroll <= width.viewport, `no sideways scrolling at ${PHONE.width} px: ${width.scroll} px wide`);
    await shot(page, 'cashu-1-offer');
  } catch (err) {
    failed = true;
    throw err;
  }
});

scenario('2 a pasted token pays: the gate opens, the upstream answers', skip, async () => {
  try {
    const client = lab!.client(1);
    await paste(page!, tokens[0]!);
    const text = await messageOf(page!, 'ok');
    const session = await sluice!.waitSession(client.mac, 'c1 ACTIVE', 10_000, (s) => s.state === 'ACTIVE');
    figure(`c1 paid 10 sat: "${text}"; session ${session.id} ${session.state}, ${session.remaining} s left`);
    assert.is(String(session.allotment), String(5 * 60), '10 sat at 2 sat a step: 5 steps of 60 s');
    await page!.waitFor('the Pay button back', `!document.getElementById('cashu-pay').disabled`);
    await shot(page!, 'cashu-2-paid');
    const up = await browser!.newPage(PHONE);
    await waitFor(
      'the upstream to answer c1',
      10_000,
      async () => {
        await up.goto(`http://${UPSTREAM_IP}/ping`);
        return (await up.evaluate<string>('document.body.innerText')).trim() === 'ok' ? true : undefined;
      },
      300,
    );
  } catch (err) {
    failed = true;
    throw err;
  }
});

scenario("3 the same token again: refused in the customer's words, nothing added", skip, async () => {
  try {
    const client = lab!.client(1);
    const before = await sluice!.waitSession(client.mac, 'c1 ACTIVE', 10_000, (s) => s.state === 'ACTIVE');
    await paste(page!, tokens[0]!);
    const text = await messageOf(page!, 'error');
    figure(`c1 the same token again: "${text}"`);
    assert.not.match(text, /ERR_|\{/, 'written for a customer: no codes or JSON');
    assert.match(text, /already used/);
    await shot(page!, 'cashu-3-replayed');
    const after = await sluice!.waitSession(client.mac, 'c1 ACTIVE', 10_000, (s) => s.state === 'ACTIVE');
    assert.is(String(after.allotment), String(before.allotment), 'nothing added');
  } catch (err) {
    failed = true;
    throw err;
  }
});

scenario(
  '4 Pay with Lightning: the invoice as a QR code and a link; paid, the router mints and the session starts',
  skip,
  async () => {
    try {
      const client = lab!.client(2);
      const b = await Browser.launch(client.ns);
      try {
        const p = await b.newPage(PHONE);
        await p.goto(`http://${UPSTREAM_IP}/`);
        await p.waitFor(
          'the pay page with its Cashu card',
          `location.host === ${JSON.stringify(PAY_PAGE)} && !document.getElementById('cashu-section').hidden`,
          30_000,
        );
        const shown = await p.evaluate<string>(`document.getElementById('cashu-link').getAttribute('href')`);
        // Typed, as a customer does: the field's input event (the total follows it).
        await p.evaluate(
          `(() => { const s = document.getElementById('cashu-steps'); s.value = '3'; ` +
            `s.dispatchEvent(new Event('input')); })()`,
        );
        // The router's request for 3 steps in place first: the page is settled when the customer taps.
        await p.waitFor(
          'the Cashu request for 3 steps',
          `document.getElementById('cashu-link').getAttribute('href') !== ${JSON.stringify(shown)}`,
        );
        await p.click('#lightning-pay');
        const link = await p.waitFor<string>(
          'the invoice',
          `(() => { const b = document.getElementById('lightning-box'); return b && !b.hidden ? ` +
            `document.getElementById('lightning-link').getAttribute('href') : ''; })()`,
        );
        const qr = await p.evaluate<boolean>(
          `(document.getElementById('lightning-qr').getAttribute('src') || '').startsWith('data:image/svg+xml,')`,
        );
        figure(`c2 the invoice: ${link.slice(0, 24)}…, QR ${qr}`);
        assert.match(link, /^lightning:lnbc/);
        await shot(p, 'cashu-4-invoice');
        const text = await messageOf(p, 'ok');
        const session = await sluice!.waitSession(client.mac, 'c2 ACTIVE', 30_000, (s) => s.state === 'ACTIVE');
        figure(`c2 paid by Lightning: "${text}"; session ${session.id}, ${session.remaining} s left`);
        assert.is(String(session.allotment), String(3 * 60));
        await p.waitFor(
          'the session box',
          `(() => { const s = document.getElementById('session'); return s && !s.hidden ? s.textContent : ''; })()`,
        );
        await shot(p, 'cashu-5-lightning-paid');
      } finally {
        await b.close().catch(() => undefined);
      }
    } catch (err) {
      failed = true;
      throw err;
    }
  },
);

test.run();
