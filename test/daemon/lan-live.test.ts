// tier: daemon
/**
 * The LAN endpoint follows what is served over it, with no restart (docs/configuration.md "config http"): the real
 * daemon, started with `http.listen` set and nothing to serve, opens its door once the first batch of printed vouchers
 * is made over ubus (the reply comes after the door is open) and once a reload adds a free-trial plan; a reload that
 * takes the plan away takes /trial and its form with it and, with nothing left to serve, the endpoint; the session
 * the trial opened stays, gate open; x402 switched on by a reload offers /buy at once, switched off withdraws it (and
 * its purchases over ubus) while the session stays; a reload that moves http.listen rebinds the endpoint (the old port
 * refused, the session untouched), and one whose port is in use leaves it where it was and says so (ERR_HTTP_LISTEN).
 * Nothing here restarts the daemon.
 */
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from './harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection, usdcPlanSection } from '../helpers/uci-sections.ts';

const MAC = '02:00:00:00:1b:01';
const DEVICE = 'lan-live-device-token-0001';
const TRIAL_PLAN = `
config pricing 'try'
\toption metric 'seconds'
\toption step_size '900'
\toption price_per_step '0'
\toption min_steps '1'
\toption max_steps '1'
\toption trial_every '1d'
`;

type Answer = { status: number; body: Record<string, any> };

function asker(port: number) {
  const ask = async (path: string, init?: RequestInit): Promise<Answer | 'refused'> => {
    let res: Response;
    try {
      res = await fetch(`http://127.0.0.1:${port}${path}`, init);
    } catch {
      return 'refused';
    }
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  return {
    get: (path: string) => ask(path),
    post: (path: string, body: unknown) =>
      ask(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  };
}

test('the first batch of printed vouchers opens POST /voucher and the form at once, no restart', async () => {
  const port = await freePort();
  const { get, post } = asker(port);
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: httpSection(port) });
  try {
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.startDaemon();
    assert.ok(lab.output.includes('nothing is served over it'));
    assert.is(await get('/'), 'refused', 'no endpoint before the first batch');
    const made = await lab.call('voucher_create', { plan: 'time', count: 2, steps: 30 });
    const [code] = made.codes as string[];
    const plans = await get('/');
    assert.ok(plans !== 'refused', 'the endpoint listens once voucher_create has answered');
    assert.is(plans.body.methods.voucher, true, 'the page shows its voucher form');
    const sold = await post('/voucher', { code });
    assert.ok(sold !== 'refused');
    assert.is(sold.status, 200, JSON.stringify(sold.body));
    assert.is(sold.body.session.mac, MAC);
    assert.is(sold.body.session.allotment, '1800');
    assert.match(lab.output, /LAN endpoint listening.*serves.*vouchers/);
    assert.not.match(lab.output, /sluice running[\s\S]*sluice running/, 'one start, no restart');
  } finally {
    await lab.close();
  }
});

test('a reload adds /trial and its endpoint, a reload takes them away; the trial session stays', async () => {
  const port = await freePort();
  const { get, post } = asker(port);
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: httpSection(port) });
  try {
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.startDaemon();
    assert.is(await get('/'), 'refused');

    lab.writeConfig(TRIAL_PLAN);
    const added = await lab.call('reload');
    assert.equal(added.restart_required, []);
    const trial = await post('/trial', { plan: 'try', device: DEVICE });
    assert.ok(trial !== 'refused', 'the reload opened the endpoint');
    assert.is(trial.status, 200, JSON.stringify(trial.body));
    const id = trial.body.session.id as string;
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 10_000, 'gate open');

    lab.writeConfig();
    const removed = await lab.call('reload');
    assert.equal(removed.restart_required, []);
    assert.is(await post('/trial', { plan: 'try', device: DEVICE }), 'refused', 'nothing is served: no endpoint');
    assert.match(lab.output, /LAN endpoint stopped: nothing is served over it any more/);
    const session = await lab.session(MAC);
    assert.equal([session.id, session.state], [id, 'ACTIVE'], 'the paid session is untouched');
    assert.is(lab.clientState(MAC), 'Authenticated', 'its gate stays open');

    // Something to serve again (the first batch): the endpoint is back, /trial's form and plan gone.
    await lab.call('voucher_create', { plan: 'time', count: 1, steps: 1 });
    const plans = await get('/');
    assert.ok(plans !== 'refused');
    assert.not.ok(
      (plans.body.plans as Array<{ id: string }>).some((p) => p.id === 'try'),
      'the trial plan is gone from the page',
    );
    const again = await post('/trial', { plan: 'try', device: DEVICE });
    assert.ok(again !== 'refused');
    assert.is(again.body.error.code, 'ERR_UNKNOWN_PLAN');
    assert.not.match(lab.output, /sluice running[\s\S]*sluice running/, 'one start, no restart');
  } finally {
    await lab.close();
  }
});

test('a port another program holds at start: the endpoint binds on its own once it is free, no restart', async () => {
  const port = await freePort();
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(port, '127.0.0.1', r));
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: TRIAL_PLAN + httpSection(port) });
  try {
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.startDaemon();
    assert.match(lab.output, /LAN endpoint not started: tried again until it binds.*ERR_HTTP_LISTEN/);
    assert.equal((await lab.call('stats')).http, { listening: false }, 'stats: no endpoint yet');
    await new Promise<void>((r) => holder.close(() => r()));
    const answers: Array<Answer | 'refused'> = [];
    await lab.waitFor(
      async () =>
        answers.push(await asker(port).post('/trial', { plan: 'try', device: DEVICE })) > 0 &&
        answers.at(-1) !== 'refused',
      30_000,
      'the endpoint bound once the port was free',
    );
    const answer = answers.at(-1)!;
    assert.ok(answer !== 'refused' && answer.status === 200, JSON.stringify(answer));
    assert.match(lab.output, /LAN endpoint listening/);
    assert.is(lab.output.match(/LAN endpoint not started/g)?.length, 1, 'said once, not at every try');
    assert.not.match(lab.output, /sluice running[\s\S]*sluice running/, 'one start, no restart');
  } finally {
    holder.close();
    await lab.close();
  }
});

test('a reload moves http.listen: the new port answers, the old one stops, a port in use is a problem', async () => {
  const [first, second] = [await freePort(), await freePort()];
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: TRIAL_PLAN });
  const holder = createServer();
  try {
    lab.portal.addClient(MAC, '127.0.0.1');
    lab.writeConfig(httpSection(first));
    await lab.startDaemon();
    const trial = await asker(first).post('/trial', { plan: 'try', device: DEVICE });
    assert.ok(trial !== 'refused' && trial.status === 200, JSON.stringify(trial));
    const id = trial.body.session.id as string;
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 10_000, 'gate open');

    lab.writeConfig(httpSection(second));
    const moved = await lab.call('reload');
    assert.equal(moved.restart_required, [], 'http.listen takes no restart');
    assert.equal(moved.moved, ['http.listen']);
    assert.equal(moved.problems, []);
    const there = await asker(second).get('/session');
    assert.ok(there !== 'refused', 'the endpoint answers on the new port once reload has answered');
    assert.is(there.body.session.id, id, 'the paid session is the same, seen through the new port');
    assert.is(await asker(first).get('/'), 'refused', 'the old port is closed');
    assert.is(lab.clientState(MAC), 'Authenticated', 'its gate stays open');
    assert.is(((await lab.call('stats')).http as { port: number }).port, second);

    // A port another program holds: the endpoint stays on `second`, and the reply says why.
    const held = await freePort();
    await new Promise<void>((r) => holder.listen(held, '127.0.0.1', r));
    lab.writeConfig(httpSection(held));
    const refused = await lab.call('reload');
    assert.equal(refused.restart_required, []);
    assert.is(refused.moved, undefined);
    const problem = (refused.problems as Array<{ path: string; reason: string }>).find((p) => p.path === 'http.listen');
    assert.ok(problem, JSON.stringify(refused.problems));
    assert.match(problem.reason, /^ERR_HTTP_LISTEN: cannot listen on 127\.0\.0\.1:\d+/);
    assert.match(problem.reason, new RegExp(`stays on 127\\.0\\.0\\.1:${second}`));
    const still = await asker(second).get('/session');
    assert.ok(still !== 'refused', 'the endpoint still answers where it was');
    assert.is(((await lab.call('stats')).http as { port: number }).port, second, 'stats: in use');
    assert.equal((await lab.session(MAC)).id, id);
    assert.not.match(lab.output, /sluice running[\s\S]*sluice running/, 'one start, no restart');
  } finally {
    holder.close();
    await lab.close();
  }
});

const X402 = `
config x402 'x402'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption pay_to '0x${'1'.repeat(40)}'
\toption token_name 'USDC'
\toption token_version '2'
`;

test('a reload switches x402 on (/buy offers it at once) and off (its offer and purchases go)', async () => {
  const port = await freePort();
  const { get } = asker(port);
  const plan = usdcPlanSection({ asset: `0x${'4'.repeat(40)}`, price: 1000 });
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: httpSection(port) + TRIAL_PLAN + plan });
  try {
    lab.portal.addClient(MAC, '127.0.0.1');
    await lab.startDaemon();
    const { post } = asker(port);
    const trial = await post('/trial', { plan: 'try', device: DEVICE });
    assert.ok(trial !== 'refused' && trial.status === 200, JSON.stringify(trial));
    const before = await get('/buy?plan=wifi');
    assert.ok(before !== 'refused');
    assert.is(before.status, 501, 'no x402 yet');

    lab.writeConfig(TRIAL_PLAN + plan + X402);
    const on = await lab.call('reload');
    assert.equal(on.restart_required, []);
    const offered = await get('/buy?plan=wifi');
    assert.ok(offered !== 'refused');
    assert.is(offered.status, 402, JSON.stringify(offered.body));
    assert.is(
      (offered.body.accepts as Array<{ scheme: string }> | undefined)?.[0]?.scheme,
      'exact',
      JSON.stringify(offered.body),
    );
    const page = await get('/');
    assert.ok(page !== 'refused' && page.body.methods.x402 === true, 'the page offers the wallet');

    lab.writeConfig(TRIAL_PLAN + plan);
    const off = await lab.call('reload');
    assert.equal(off.restart_required, []);
    const withdrawn = await get('/buy?plan=wifi');
    assert.ok(withdrawn !== 'refused');
    assert.equal([withdrawn.status, withdrawn.body.error.code], [501, 'ERR_UNKNOWN_PAYMENT_METHOD']);
    const ubus = await lab.callStatus('purchase', {
      mac: MAC,
      plan: 'wifi',
      payment: { method: 'x402', payload: 'e30=' },
    });
    assert.is((ubus.data as { error: { code: string } }).error.code, 'ERR_UNKNOWN_PAYMENT_METHOD');
    const session = await lab.session(MAC);
    assert.is(session.state, 'ACTIVE', 'the trial session is untouched');
    assert.match(lab.output, /payment method x402 switched on by a reload[\s\S]*switched off by a reload/);
    assert.not.match(lab.output, /sluice running[\s\S]*sluice running/, 'one start, no restart');
  } finally {
    await lab.close();
  }
});

test.run();
