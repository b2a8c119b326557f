// tier: lab
/**
 * A phone in headless Chromium with sluice as the gate (`main.portal 'sluice'`, lab.sh --sluice: no portal daemon):
 * it opens Android's probe URL, is sent to the pay page by sluice's own probe answer (a 302, no splash), takes the free
 * trial there by tapping its button, and then browses a page the lab's upstream serves under its name.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';
import { Browser, browserUnavailableReason } from './browser.ts';
import { PHONE, messageOf } from './phone-kit.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, scenario } = lab;
const LISTEN = '10.77.0.1:2122';
const TRIAL = [
  `config pricing 'trial'`,
  `\toption metric 'seconds'`,
  `\toption step_size '60'`,
  `\toption price_per_step '0'`,
  `\toption min_steps '10'`,
  `\toption max_steps '10'`,
  `\toption trial_every '1d'`,
  ``,
].join('\n');
const skip = pre.daemon ?? browserUnavailableReason();

if (pre.lab) {
  skipTest(test, 'e2e phone with sluice as the gate', pre.lab, { ciInstalls: true });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: '8mbit', clients: 1, sluice: true });
    if (skip !== null) return;
    lab.sluice = await Sluice.start(lab.lab, {
      extraConfig: `${TRIAL}\nconfig http 'http'\n\toption listen '${LISTEN}'\n`,
    });
    figure(`lab ${lab.lab.id}: no portal daemon, sluice is the gate, pay page on ${LISTEN}`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

scenario('1 probe → 302 to the pay page → the free trial tapped → the phone browses', skip, async () => {
  const c = L().client(1);
  const browser = await Browser.launch(c.ns);
  try {
    const page = await browser.newPage(PHONE);
    await page.goto('http://connectivitycheck.gstatic.com/generate_204');
    await page.waitFor(
      'the pay page with its trial',
      `location.href === 'http://${LISTEN}/portal' && !!document.querySelector('#trials button')`,
      20_000,
    );
    await page.click('#trials button');
    const said = await messageOf(page, 'ok');
    figure(`the page said: ${said}`);
    await page.goto('http://upstream.lab/ping');
    const body = await page.evaluate<string>('document.body.innerText');
    assert.is(body.trim(), 'ok', 'the upstream page, by its name');
  } finally {
    await browser.close();
  }
});

test.run();
