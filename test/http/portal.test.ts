// tier: peers; needs freeradius
/**
 * The customer's pay page (files/usr/share/sluice/portal, served by the LAN endpoint at /portal) against the real
 * daemon: the page's own code (portal.js, run here without a DOM) renders the plans the endpoint lists, builds the
 * EIP-712 request a browser wallet signs, and its PAYMENT-SIGNATURE buys a session that settles on chain. The wallet is
 * anvil's own eth_signTypedData_v4 (the JSON-RPC method the page calls on window.ethereum), so the typed data is
 * checked by an implementation that is not sluice's. The voucher form's POST /voucher goes to a real FreeRADIUS.
 * The openNDS ThemeSpec that links to the page is run by sh with libopennds.sh's calls stood in.
 */
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address } from 'viem';
import { startChain, type TestChain, type TestToken } from '../chain/index.ts';
import { startFacilitator, type TestFacilitator } from '../chain/facilitator.ts';
import { FreeRadius } from '../peers/freeradius.ts';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { httpSection, radiusSection, timePlanSection, x402Section } from '../helpers/uci-sections.ts';
import { testNeeding } from '../helpers/skip.ts';

const test = suite('pay page');
const ROOT = new URL('../../', import.meta.url).pathname;
const PORTAL_JS = readFileSync(`${ROOT}files/usr/share/sluice/portal/portal.js`, 'utf8');
const THEME = `${ROOT}files/usr/lib/opennds/theme_sluice.sh`;
const PRICE = 10_000n;
const MAC = '02:00:00:00:0d:01';
const VOUCHER_MAC = '02:00:00:00:0d:02';
/**
 * anvil's dev account (the test chain's deployer): unlocked, so anvil signs for it (eth_signTypedData_v4) as a wallet
 * would.
 */
let WALLET: Address;

interface Portal {
  planView(plan: unknown): {
    id: string;
    title: string;
    priceText: string;
    minSteps: number;
    maxSteps: number;
    payable: boolean;
  };
  totalText(plan: unknown, steps: number): string;
  typedData(
    req: unknown,
    from: string,
    nonce: string,
    now: number,
  ): Record<string, unknown> & { message: Record<string, string> };
  paymentPayload(req: unknown, resource: unknown, data: unknown, signature: string): unknown;
  encodeHeader(obj: unknown, btoaFn?: (s: string) => string): string;
  randomNonce(c?: unknown): string;
  errorText(status: number, body: unknown): string;
  sessionText(s: unknown, elapsedSeconds?: number): string;
  leftText(metric: string, value: string): string;
}

let chain: TestChain;
let usdc: TestToken;
let facilitator: TestFacilitator;
let radius: FreeRadius;
let payTo: Address;
let lab: DaemonLab;
let base: string;
let portal: Portal;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  facilitator = await startFacilitator(chain);
  radius = await FreeRadius.start();
  payTo = chain.newAccount().address;
  WALLET = chain.deployer.address;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig:
      timePlanSection({ asset: usdc.address, price: PRICE }) +
      x402Section({ facilitatorUrl: facilitator.url, payTo }) +
      radiusSection(radius) +
      httpSection(port, 60),
  });
  lab.portal.addClient(MAC, '127.0.0.1');
  lab.portal.addClient(VOUCHER_MAC, '127.0.0.2');
  await lab.startDaemon();
  // The page's script as a browser runs it, minus the DOM: it leaves its pure part on the global object.
  const sandbox: Record<string, unknown> = { btoa, crypto: webcrypto };
  runInNewContext(PORTAL_JS, sandbox);
  portal = sandbox.SluicePortal as Portal;
});

test.after(async () => {
  await lab?.close();
  await radius?.close();
  await facilitator?.stop();
  await chain?.stop();
});

function http(
  path: string,
  options: { localAddress?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        agent: false,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.localAddress && { localAddress: options.localAddress }),
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function json(path: string, options: Parameters<typeof http>[1] = {}) {
  const r = await http(path, options);
  return { ...r, body: (r.text ? JSON.parse(r.text) : {}) as Record<string, any> };
}

/** The wallet: JSON-RPC to anvil, which holds WALLET's key. */
async function wallet(method: string, params: unknown[]): Promise<any> {
  const res = await fetch(chain.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`wallet ${method}: ${body.error.message}`);
  return body.result;
}

test('GET /portal and /portal.js serve the shipped files with a same-origin content policy', async () => {
  const page = await http('/portal');
  assert.is(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.is(page.text, readFileSync(`${ROOT}files/usr/share/sluice/portal/index.html`, 'utf8'));
  assert.ok(page.text.includes('<script src="/portal.js"></script>'));
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  const js = await http('/portal.js');
  assert.is(js.status, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);
  assert.is(js.text, PORTAL_JS);
  const other = await json('/portal/../../etc/config/sluice');
  assert.is(other.status, 404);
});

test('the page renders the plans the endpoint lists: names, readable prices, totals', async () => {
  const r = await json('/');
  assert.is(r.status, 200);
  const plans = r.body.plans as Array<Record<string, unknown>>;
  const wifi = plans.find((p) => p.id === 'wifi')!;
  // (JSON: the object comes from the script's own realm)
  const v = JSON.parse(JSON.stringify(portal.planView(wifi))) as unknown;
  // The plan's own name, not "Time: wifi"; units in the locale's short form (English here: no navigator).
  assert.equal(v, {
    id: 'wifi',
    title: 'Wifi',
    priceText: '0.01 USDC per 1 min',
    minSteps: 1,
    maxSteps: 100,
    payable: true,
  });
  assert.is(portal.totalText(wifi, 90), '90 min for 0.9 USDC');
  assert.is(portal.totalText(wifi, 60), '1 hr for 0.6 USDC');
  assert.is(portal.totalText(wifi, 3), '3 min for 0.03 USDC');
  assert.equal(
    [
      portal.leftText('seconds', '7198'),
      portal.leftText('seconds', '90061'),
      portal.leftText('seconds', '42'),
      portal.leftText('bytes', String(1.5 * 2 ** 30)),
      portal.leftText('bytes', String(300 * 2 ** 20)),
    ],
    ['1 hr 59 min', '1 day 1 hr', '42 sec', '1.5\u00a0GiB', '300\u00a0MiB'],
  );
});

test(
  "the page's payment: the wallet signs its typed data, GET /buy with its header buys the session, settled on " +
    'chain',
  async () => {
    await usdc.mint(WALLET, 1_000_000n);
    const offer = await json('/buy?plan=wifi&steps=2');
    assert.is(offer.status, 402);
    const req = offer.body.accepts[0];
    const now = Math.floor(Date.now() / 1000);
    const data = portal.typedData(req, WALLET, portal.randomNonce(webcrypto), now);
    assert.is((data.domain as Record<string, unknown>).chainId, 84532);
    assert.is(data.message.value, String(2n * PRICE));
    // What the page hands window.ethereum: eth_signTypedData_v4 [from, JSON text].
    const signature = (await wallet('eth_signTypedData_v4', [WALLET, JSON.stringify(data)])) as string;
    assert.match(signature, /^0x[0-9a-f]{130}$/);
    const header = portal.encodeHeader(portal.paymentPayload(req, offer.body.resource, data, signature), btoa);
    const before = await usdc.balanceOf(payTo);
    const paid = await json('/buy?plan=wifi&steps=2', { headers: { 'PAYMENT-SIGNATURE': header } });
    assert.is(paid.status, 200, paid.text);
    assert.is(paid.body.session.mac, MAC);
    assert.is(paid.body.session.allotment, '120');
    assert.ok(paid.headers['payment-response'], 'PAYMENT-RESPONSE');
    assert.is((await usdc.balanceOf(payTo)) - before, 2n * PRICE);
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 10_000, 'gate open');
    const s = await json('/session');
    assert.match(portal.sessionText(s.body.session), /^Your access is active: ([12] min|\d+ sec) left of 2 min\.$/);
    // The same header again pays nothing twice: the page says so in the customer's words.
    const again = await json('/buy?plan=wifi&steps=2', { headers: { 'PAYMENT-SIGNATURE': header } });
    assert.ok(again.status !== 200);
    assert.is((await usdc.balanceOf(payTo)) - before, 2n * PRICE);
    assert.is(portal.errorText(again.status, again.body), 'This payment was already used. Your access is shown above.');
  },
);

test(
  'voucher form: POST /voucher buys with a RADIUS voucher ' + "for the caller; a wrong code gets the customer's words",
  async () => {
    const post = (body: unknown) =>
      json('/voucher', {
        method: 'POST',
        localAddress: '127.0.0.2',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const bad = await post({ code: 'nope', password: 'x' });
    assert.is(bad.status, 403);
    assert.is(bad.body.error.code, 'ERR_VOUCHER_REJECTED');
    assert.is(
      portal.errorText(bad.status, bad.body),
      'This voucher was not accepted. Please check the code and the password.',
    );
    const malformed = await post({ password: 'x' });
    assert.is(malformed.status, 400);
    assert.is(malformed.body.error.code, 'ERR_VOUCHER_REQUEST_INVALID');
    const ok = await post({ code: 'timeuser', password: 'timepass' });
    assert.is(ok.status, 200, ok.text);
    assert.equal(
      [ok.body.session.mac, ok.body.session.metric, ok.body.session.allotment, ok.body.session.user],
      [VOUCHER_MAC, 'seconds', '600', 'timeuser'],
    );
    await lab.waitFor(() => lab.clientState(VOUCHER_MAC) === 'Authenticated', 10_000, 'gate open');
    // The pay page's key per voucher: the same POST again (a lost answer, a double click) buys nothing twice, though
    // FreeRADIUS accepts the code every time.
    const keyed = { code: 'timeuser', password: 'timepass', idempotency_key: 'v-test-1' };
    const first = await post(keyed);
    assert.is(first.status, 200, first.text);
    assert.equal([first.body.topped_up, first.body.session.allotment], [true, '1200']);
    const again = await post(keyed);
    assert.is(again.body.error.code, 'ERR_PAYMENT_REPLAYED', again.text);
    assert.ok(portal.errorText(again.status, again.body).length > 0);
    assert.is((await post({ code: 'x', idempotency_key: 42 })).body.error.code, 'ERR_INVALID_ARGUMENT');
    const unknown = await json('/voucher', { method: 'POST', localAddress: '127.0.0.3', body: '{"code":"timeuser"}' });
    assert.is(unknown.body.error.code, 'ERR_HTTP_CLIENT_UNKNOWN');
  },
);

/** libopennds.sh's part: source the theme, call header, generate_splash_sequence (which ends with footer). */
function theme(listen: string, gatewayname: string): { status: number | null; out: string } {
  const stub = `uci() { [ "$*" = "-q get sluice.http.listen" ] && [ -n '${listen}' ] && echo '${listen}'; }`;
  const r = spawnSync(
    'sh',
    ['-c', `${stub}\ngatewayname='${gatewayname}'\n. '${THEME}'\nheader\ngenerate_splash_sequence\necho not-reached`],
    { encoding: 'utf8' },
  );
  return { status: r.status, out: r.stdout };
}

test('openNDS ThemeSpec: sends the client to the pay page at http.listen; says so when the endpoint is off', () => {
  const on = theme('192.168.1.1:2122', 'Café <Bar>');
  assert.is(on.status, 0);
  assert.ok(on.out.includes('<meta http-equiv="refresh" content="0; url=http://192.168.1.1:2122/portal">'));
  assert.ok(on.out.includes('href="http://192.168.1.1:2122/portal"'));
  assert.ok(on.out.includes('<title>Café &lt;Bar&gt;</title>'));
  assert.ok(on.out.trimEnd().endsWith('</html>'));
  assert.ok(!on.out.includes('not-reached'), 'footer ends the script, as libopennds expects');
  const off = theme('', 'Café');
  assert.is(off.status, 0);
  assert.ok(off.out.includes('payment page is not switched on'));
  assert.ok(!off.out.includes('refresh'));
});

// Without shellcheck (a fresh Debian): a counted skip; in CI, which installs it, a failure (test/helpers/skip.ts).
testNeeding(test, ['shellcheck'], 'openNDS ThemeSpec passes shellcheck (Debian shellcheck)', () => {
  const sc = spawnSync('shellcheck', ['--severity=style', THEME], { encoding: 'utf8' });
  assert.ok(!sc.error, 'shellcheck is installed (.ci/run installs it)');
  assert.is(sc.status, 0, sc.stdout);
});

test.run();
