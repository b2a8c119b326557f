// tier: lab
/**
 * The free trial's throttled rate on the real openNDS lab: a trial plan (`trial_every`, price 0) with `rate_down` /
 * `rate_up` set. A lab client takes the trial from the pay page's API (POST /trial, as the page does), downloads for
 * 12 s, and the goodput curl measures (bytes of the body over the transfer's time, as in rates.test.ts) must be the
 * plan's rate ± 5 %. A second trial for the same device inside `trial_every` is refused (ERR_TRIAL_USED), by its MAC
 * and by its browser's device token.
 *
 * The lab's uplink shaper is off (as in rates.test.ts): nothing else limits the client but sluice.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HTTP_SECTION, PAY_PAGE_LISTEN, api, errorCode, type ApiReply } from './captive-api.ts';
import { Lab, downloadGoodput, waitFor, type Client } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;
const RATE = 2e6;
const SECONDS = 12;
const DEVICE = 'lab-trial-browser-token-01';
const PLANS = [
  `config pricing 'trial'`,
  `\toption metric 'seconds'`,
  `\toption step_size '60'`,
  `\toption price_per_step '0'`,
  `\toption min_steps '10'`,
  `\toption max_steps '10'`,
  `\toption trial_every '1d'`,
  `\toption rate_down '2mbit'`,
  `\toption rate_up '2mbit'`,
  ``,
].join('\n');

if (pre.lab) {
  skipTest(test, 'e2e trial scenarios', pre.lab, { ciInstalls: true });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: null, theme: PAY_PAGE_LISTEN });
    figure(`lab ${lab.lab.id}: uplink unshaped, portal ${lab.lab.portal}, pay page ${PAY_PAGE_LISTEN}`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

/**
 * POST /trial from the client, once sluice knows the client (it learns it from the portal): probed with GET /devices,
 * which the payment-attempt rate limit does not count, where retried trials would use it up.
 */
async function trial(c: Client, device: string): Promise<ApiReply> {
  await waitFor(
    `sluice to know ${c.mac}`,
    10_000,
    async () => (errorCode(await api(c, '/devices')) === 'ERR_HTTP_CLIENT_UNKNOWN' ? undefined : true),
    250,
  );
  return api(c, '/trial', { plan: 'trial', device });
}

const mbit = (bps: number): string => `${(bps / 1e6).toFixed(3)} Mbit/s`;

scenario('sluice daemon starts with a throttled trial plan', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: 1, extraConfig: `${PLANS}\n${HTTP_SECTION}` });
});

scenario("1 a trial of 2 Mbit/s: the client downloads at the plan's rate ± 5 % (goodput)", pre.daemon, async () => {
  const c = L().client(1);
  await L().visitPortal(c);
  const r = await trial(c, DEVICE);
  assert.is(r.status, 200, JSON.stringify(r.json));
  await waitFor(
    `the gate of ${c.mac} to open`,
    10_000,
    async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
    250,
  );
  const bps = await downloadGoodput(c, SECONDS);
  figure(`1 trial download goodput over ${SECONDS} s: ${mbit(bps)} (plan 2 Mbit/s)`);
  assert.ok(Math.abs(bps - RATE) <= RATE * 0.05, `trial at ${mbit(bps)}`);
});

scenario(
  '2 a second trial on the same device inside trial_every is refused, by MAC and by device token',
  pre.daemon,
  async () => {
    const c = L().client(1);
    await S().call('terminate', { mac: c.mac });
    // The deauth drops the client from openNDS's list: it comes back through the splash page, as a customer does.
    await waitFor(
      `the gate of ${c.mac} to close`,
      10_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? undefined : true),
      250,
    );
    await L().visitPortal(c);
    const again = await trial(c, DEVICE);
    figure(`2 second trial, same MAC and token: ${again.status} ${JSON.stringify(again.json)}`);
    assert.ok(again.status >= 400, 'refused');
    assert.is(errorCode(again), 'ERR_TRIAL_USED');
    const otherToken = await trial(c, 'lab-trial-browser-token-02');
    assert.is(errorCode(otherToken), 'ERR_TRIAL_USED', 'a fresh browser token on the same MAC');
    const other = L().client(2);
    await L().visitPortal(other);
    const otherMac = await trial(other, DEVICE);
    assert.is(errorCode(otherMac), 'ERR_TRIAL_USED', 'the same browser token on another MAC');
    assert.is.not(await L().portalState(c.mac), 'Authenticated', 'no gate opened for a refused trial');
  },
);

if (pre.daemon !== null) scenario('e2e trial', pre.daemon, async () => {});
test.run();
