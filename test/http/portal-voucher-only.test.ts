// tier: peers; needs freeradius
/**
 * A voucher-only router (radius on, x402 off): the LAN endpoint still runs for the pay page, whose plans carry no x402
 * offer (so the page disables its wallet buttons), /buy says 501, and a voucher typed on the page buys the session
 * (real FreeRADIUS). With neither x402 nor radius the endpoint stays off.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:http';
import { FreeRadius } from '../peers/freeradius.ts';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { httpSection, radiusSection } from '../helpers/uci-sections.ts';

const test = suite('pay page, vouchers only');
const MAC = '02:00:00:00:0d:11';
let radius: FreeRadius;
let lab: DaemonLab;
let base: string;

test.before(async () => {
  radius = await FreeRadius.start();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: radiusSection(radius) + httpSection(port),
  });
  lab.portal.addClient(MAC, '127.0.0.1');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await radius?.close();
});

function http(path: string, method = 'GET', body?: string) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method, agent: false, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('the page is served; plans without an x402 offer; /buy 501; a voucher buys the session', async () => {
  assert.is((await http('/portal')).status, 200);
  const plans = JSON.parse((await http('/')).text) as { plans: Array<{ x402: unknown }> };
  assert.ok(plans.plans.length > 0);
  assert.ok(plans.plans.every((p) => p.x402 === null));
  const buy = await http('/buy?plan=time');
  assert.is(buy.status, 501);
  assert.is((JSON.parse(buy.text) as { error: { code: string } }).error.code, 'ERR_UNKNOWN_PAYMENT_METHOD');
  const v = await http('/voucher', 'POST', JSON.stringify({ code: 'timeuser', password: 'timepass' }));
  assert.is(v.status, 200, v.text);
  assert.is((JSON.parse(v.text) as { session: { mac: string } }).session.mac, MAC);
});

test(
  'nothing served over it (no method, trial or several-devices plan, no PC-sync): the endpoint stays off and the ' +
    'log says why',
  async () => {
    const port = await freePort();
    const off = await DaemonLab.create({
      portalSocket: true,
      extraConfig: `\nconfig http 'http'\n\toption listen '127.0.0.1:${port}'\n`,
    });
    try {
      await off.startDaemon();
      await off.waitFor(() => off.output.includes('nothing is served over it'), 10_000, 'the log line');
      const refused = await fetch(`http://127.0.0.1:${port}/portal`).then(
        () => false,
        () => true,
      );
      assert.ok(refused, 'nothing listens');
    } finally {
      await off.close();
    }
  },
);

test.run();
