// tier: daemon
/**
 * With the real daemon binary: the LAN endpoint ran only for x402 exact/batch/upto, RADIUS and
 * PC-sync, so a router selling only escrow, or offering only a free trial, had no pay page, /receipt or /trial, and a
 * damaged x402.json took them all down. Now it runs for whatever the config serves over it, and a damaged state file
 * disables that method's routes alone (503 ERR_PAYMENT_METHOD_UNAVAILABLE, listed in `stats` → `http.unavailable`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { httpSection } from '../helpers/uci-sections.ts';

const test = suite('LAN endpoint: every method that needs it, a damaged store disables its method alone');
const MAC = '02:00:00:00:0e:41';
const DEVICE = 'lan-methods-device-token-01';

const TRIAL_PLAN = `
config pricing 'try'
\toption metric 'seconds'
\toption step_size '900'
\toption price_per_step '0'
\toption min_steps '1'
\toption max_steps '1'
\toption trial_every '1d'
`;
/** Escrow requires an asset on every plan (the lab's own plans, without one, are left out as config problems). */
const TRIAL_PLAN_WITH_ASSET = `${TRIAL_PLAN}\toption asset '0x${'4'.repeat(40)}'\n`;
const X402 = `
config x402 'x402'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption pay_to '0x${'1'.repeat(40)}'
`;
const ESCROW = `
config escrow 'escrow'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption address '0x${'2'.repeat(40)}'
\toption seller '0x${'3'.repeat(40)}'
`;

type Answer = { status: number; body: Record<string, any> };

async function lab(
  extra: string,
  before?: (state: string) => void,
): Promise<{ lab: DaemonLab; get: (p: string) => Promise<Answer>; post: (p: string, b: unknown) => Promise<Answer> }> {
  const port = await freePort();
  const l = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: extra + httpSection(port) });
  l.portal.addClient(MAC, '127.0.0.1');
  const state = join(l.dir, 'state');
  mkdirSync(state, { recursive: true });
  before?.(state);
  await l.startDaemon();
  const ask = async (path: string, init?: RequestInit): Promise<Answer> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
    const text = await res.text();
    let body: Record<string, any> = {};
    try {
      body = JSON.parse(text) as Record<string, any>;
    } catch {
      body = { text };
    }
    return { status: res.status, body };
  };
  return {
    lab: l,
    get: (path) => ask(path),
    post: (path, b) =>
      ask(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }),
  };
}

const httpStats = async (l: DaemonLab) => ((await l.call('stats')) as Record<string, any>).http as Record<string, any>;

test('a router offering only a free trial: the pay page, the plans and POST /trial are served', async () => {
  const { lab: l, get, post } = await lab(TRIAL_PLAN);
  try {
    assert.match(l.output, 'LAN endpoint listening');
    assert.is((await get('/portal')).status, 200);
    const plans = await get('/');
    assert.ok((plans.body.plans as Array<{ id: string }>).some((p) => p.id === 'try'));
    const trial = await post('/trial', { plan: 'try', device: DEVICE });
    assert.is(trial.status, 200, JSON.stringify(trial.body));
    assert.is(trial.body.session.mac, MAC);
    assert.is((await get('/devices')).status, 200, '/devices answers for the caller');
  } finally {
    await l.close();
  }
});

test(
  'a router selling only escrow: POST /receipt is served ' + '(it answers for the receipt, not "nothing listens")',
  async () => {
    const { lab: l, get, post } = await lab(ESCROW);
    try {
      assert.is((await get('/portal')).status, 200);
      const r = await post('/receipt', { cumulative_units: '1', signature: `0x${'ab'.repeat(65)}` });
      assert.ok(r.body.error?.code?.startsWith('ERR_RECEIPT_'), JSON.stringify(r));
      assert.equal((await httpStats(l)).unavailable, []);
    } finally {
      await l.close();
    }
  },
);

test(
  'a damaged x402.json disables x402 alone: /buy 503 ERR_PAYMENT_METHOD_UNAVAILABLE; trials and receipts still ' +
    'served; then a damaged trials.json disables /trial alone',
  async () => {
    const {
      lab: l,
      get,
      post,
    } = await lab(X402 + ESCROW + TRIAL_PLAN_WITH_ASSET, (state) =>
      writeFileSync(join(state, 'x402.json'), '{"version":1,"records":[{"key":"0xab'),
    );
    try {
      assert.match(l.output, /ERR_X402_STORE/);
      const buy = await get('/buy?plan=try');
      assert.is(buy.status, 503, JSON.stringify(buy.body));
      assert.is(buy.body.error.code, 'ERR_PAYMENT_METHOD_UNAVAILABLE');
      assert.equal((await get('/')).body.methods.unavailable, ['x402']);
      assert.equal((await httpStats(l)).unavailable, ['x402']);
      const trial = await post('/trial', { plan: 'try', device: DEVICE });
      assert.is(trial.status, 200, JSON.stringify(trial.body));
      const receipt = await post('/receipt', { cumulative_units: '1', signature: `0x${'ab'.repeat(65)}` });
      assert.ok(receipt.body.error?.code?.startsWith('ERR_RECEIPT_'), JSON.stringify(receipt));

      // The operator moves x402.json aside; meanwhile trials.json is torn: now the trial is the one method out.
      await l.stopDaemon();
      const state = join(l.dir, 'state');
      rmSync(join(state, 'x402.json'));
      writeFileSync(join(state, 'trials.json'), '{"try|mac:02:00:00:00:0e:41": 17');
      await l.startDaemon();
      assert.match(l.output, /ERR_TRIAL_STORE/);
      const refused = await post('/trial', { plan: 'try', device: 'another-device-token-02' });
      assert.is(refused.status, 503, JSON.stringify(refused.body));
      assert.is(refused.body.error.code, 'ERR_PAYMENT_METHOD_UNAVAILABLE');
      assert.is(refused.body.error.message.includes('trial'), true);
      assert.equal((await httpStats(l)).unavailable, ['trial']);
      assert.is.not((await get('/buy?plan=try')).status, 503, 'x402 is back');
    } finally {
      await l.close();
    }
  },
);

test.run();
