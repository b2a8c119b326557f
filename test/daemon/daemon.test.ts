// tier: daemon
/**
 * The real daemon process against the embedded broker and the ndsctl stand-in (the real openNDS format and exit codes):
 * purchase → gate, top-up, terminate, time expiry, device limit, kill -9 and restart, a burst of concurrent purchases.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from './harness.ts';
import { UbusClient } from '../../src/ubus/index.ts';
import { UbusBroker } from '../../src/ubus/broker/index.ts';

const A = '02:00:00:00:0a:01';
const B = '02:00:00:00:0a:02';
const C = '02:00:00:00:0a:03';
const MiB = 1048576;

let lab: DaemonLab;

test.before.each(async () => {
  lab = await DaemonLab.create({ pollInterval: 0.3, checkpointInterval: 5, maxDevicesPerUser: 2 });
  lab.portal.addClient(A, '10.0.0.11');
  lab.portal.addClient(B, '10.0.0.12');
  lab.portal.addClient(C, '10.0.0.13');
  await lab.startDaemon();
});

test.after.each(async () => {
  await lab.close();
});

// HEADROOM: traffic here comes in bursts (a MiB at once), which the meter reads as a rate; it cuts a session ahead of
// its crossing when rate × the time a gate takes to close covers what is left (src/meter, "cut at the crossing"). On
// a loaded machine the stand-in makes closing take seconds, so a session that must not be cut yet keeps several
// bursts' worth of allotment left.

/**
 * Waits until traffic from now on is billed to mac's new session: its gate is open and a meter tick dispatched after
 * the session started has committed. A delta counts only from such a tick on (src/meter/meter.ts, billing rules), and
 * on a loaded machine that tick's reading can come seconds after the grant's reply.
 */
async function billedFromNow(mac: string): Promise<void> {
  await lab.waitFor(() => lab.clientState(mac) === 'Authenticated', 30_000, `gate of ${mac} open`);
  const ticks = async () => ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
  // The tick in flight now may have been dispatched before the start; the one after it was not.
  const from = await ticks();
  await lab.waitFor(
    async () => (await ticks()) >= from + 2,
    60_000,
    'a meter tick dispatched after the session started',
  );
}

test('grant opens the gate with a safety net, traffic is metered, the gate closes at the allotment', async () => {
  const events: Array<Record<string, unknown>> = [];
  const listener = await lab.client.listen('sluice.*', (type, data) => events.push({ type, ...data }));
  // 8 MiB with 1 MiB flowing first: the headroom keeps the meter from cutting ahead of the crossing (see HEADROOM).
  const reply = await lab.call('grant', { mac: A.toUpperCase().replaceAll(':', '-'), bytes: 8 * MiB });
  const session = reply.session as Record<string, unknown>;
  assert.is(session.mac, A, 'MAC normalized');
  assert.is(session.state, 'ACTIVE');
  assert.is(session.allotment, String(8 * MiB));
  // 'opening' when ndsctl has not answered within the reply's bounded wait (a loaded machine): the gate opens after.
  assert.ok(reply.gate === 'opened' || reply.gate === 'opening', String(reply.gate));
  await billedFromNow(A);
  const quota = lab.portal.read().model.get(A)?.downloadQuota;
  assert.ok(quota !== undefined && quota !== null && quota >= 2048, `safety-net quota set (${quota})`);

  // 1 MiB flows: metered, not yet cut.
  lab.portal.addTraffic(A, MiB, 0);
  await lab.waitFor(async () => (await lab.session(A)).used === String(MiB), 30_000, 'usage of 1 MiB');
  assert.is(lab.clientState(A), 'Authenticated');

  // Past the allotment: the session expires with data-limit and the gate closes (openNDS drops the client).
  lab.portal.addTraffic(A, 7 * MiB + 4096, 0);
  await lab.waitFor(async () => (await lab.session(A)).state === 'EXPIRED', 30_000, 'data-limit');
  const ended = await lab.session(A);
  assert.is(ended.end_cause, 'data-limit');
  await lab.waitFor(() => lab.clientState(A) !== 'Authenticated', 30_000, 'gate closed');

  // ubus events: started and ended exactly once, usage batches in between carrying the session's figures.
  await lab.waitFor(() => events.some((e) => e.event === 'ended'), 15_000, 'ended event');
  await listener.remove();
  const kinds = events.filter((e) => e.type === 'sluice.session').map((e) => e.event);
  assert.is(kinds.filter((k) => k === 'started').length, 1);
  assert.is(kinds.filter((k) => k === 'ended').length, 1);
  const usage = events.filter((e) => e.event === 'usage').flatMap((e) => e.sessions as Array<Record<string, unknown>>);
  assert.ok(usage.length >= 2, 'usage batches');
  assert.ok(usage.every((u) => u.id === session.id && u.mac === A));
  assert.is(usage.at(-1)!.remaining, '0');
  const endedEvent = events.find((e) => e.event === 'ended')!.session as Record<string, unknown>;
  assert.is(endedEvent.end_cause, 'data-limit');
});

test('a top-up grows the allotment, keeps usage and start, and does not re-auth', async () => {
  await lab.call('grant', { mac: A, bytes: MiB });
  // The first grant's auth may come after its reply on a loaded machine (gate 'opening'): it is not the top-up's.
  await billedFromNow(A);
  lab.portal.enableLog();
  lab.portal.addTraffic(A, 512 * 1024, 0);
  await lab.waitFor(async () => (await lab.session(A)).used === String(512 * 1024), 30_000, 'usage');
  const before = await lab.session(A);
  const reply = await lab.call('grant', { mac: A, bytes: 8 * MiB });
  assert.is(reply.topped_up, true);
  const after = reply.session as Record<string, unknown>;
  assert.is(after.id, before.id);
  assert.is(after.allotment, String(9 * MiB));
  assert.is(after.used, String(512 * 1024));
  assert.is(after.started_at, before.started_at);
  assert.not.ok(
    lab.portal.logLines().some((l) => / auth /.test(` ${l} `) && l.includes(A)),
    'no ndsctl auth on top-up',
  );
  // Usage beyond the first allotment does not cut the client now.
  lab.portal.addTraffic(A, MiB, 0);
  await lab.waitFor(async () => (await lab.session(A)).used === String(512 * 1024 + MiB), 30_000, 'usage after top-up');
  assert.is((await lab.session(A)).state, 'ACTIVE');
  assert.is(lab.clientState(A), 'Authenticated');
});

test(
  'a grant to a device not on the portal: gate pending ' + 'in the reply, in session and sessions, until it joins',
  async () => {
    const D = '02:00:00:00:0a:04';
    const reply = await lab.call('grant', { mac: D, seconds: 3600 });
    // 'opening' when ndsctl has not answered within the reply's bounded wait (a loaded machine); then it fails.
    assert.ok(reply.gate === 'pending' || reply.gate === 'opening', String(reply.gate));
    assert.is((reply.session as Record<string, unknown>).state, 'ACTIVE');
    await lab.waitFor(async () => (await lab.session(D)).gate === 'pending', 30_000, 'gate pending in session');
    const listed = (await lab.call('sessions', { state: 'LIVE' })).sessions as Array<Record<string, unknown>>;
    assert.is(listed.find((s) => s.mac === D)!.gate, 'pending');
    assert.is(listed.find((s) => s.mac === D)!.state, 'ACTIVE');
    // The device joins: the next tick opens its gate and the lists say so.
    lab.portal.addClient(D, '10.0.0.14');
    await lab.waitFor(() => lab.clientState(D) === 'Authenticated', 30_000, 'gate opened once the device joined');
    await lab.waitFor(async () => (await lab.session(D)).gate === 'open', 30_000, 'gate open in session');
    // An ended session has no gate.
    await lab.call('terminate', { mac: D });
    assert.is((await lab.session(D)).gate, undefined);
  },
);

test('terminate ends the session as TERMINATED/admin and closes the gate; unknown MAC is NOT_FOUND', async () => {
  await lab.call('grant', { mac: A, seconds: 3600 });
  await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, 'gate open');
  const reply = await lab.call('terminate', { mac: A });
  const s = reply.session as Record<string, unknown>;
  assert.is(s.state, 'TERMINATED');
  assert.is(s.end_cause, 'admin');
  await lab.waitFor(() => lab.clientState(A) !== 'Authenticated', 30_000, 'gate closed');
  const missing = await lab.callStatus('terminate', { mac: C });
  assert.is(missing.status, 4);
  assert.is((missing.data?.error as Record<string, unknown>).code, 'ERR_SESSION_NOT_FOUND');
});

test(
  'extend adds to a live session only (an unknown MAC is NOT_FOUND and gets no session); every admin call is ' +
    'logged with its caller, and a session id rpcd does not know is refused',
  async () => {
    await lab.call('grant', { mac: A, seconds: 3600 });
    const reply = await lab.call('extend', { mac: A, seconds: 600 });
    assert.is((reply.session as Record<string, unknown>).allotment, '4200');
    const missing = await lab.callStatus('extend', { mac: C, seconds: 600 });
    assert.is((missing.data!.error as Record<string, unknown>).code, 'ERR_SESSION_NOT_FOUND');
    assert.is(((await lab.call('sessions', { mac: C })).sessions as unknown[]).length, 0, 'no free session');
    const both = await lab.callStatus('extend', { mac: A, seconds: 1, bytes: 1 });
    assert.is((both.data!.error as Record<string, unknown>).code, 'ERR_INVALID_ARGUMENT');
    // No rpcd on this bus: a call carrying a session id cannot be named, so it is refused and nothing changes.
    const unnamed = await lab.callStatus('extend', { mac: A, seconds: 600, ubus_rpc_session: 'f'.repeat(32) });
    assert.is((unnamed.data!.error as Record<string, unknown>).code, 'ERR_CALLER_UNKNOWN');
    assert.is((await lab.session(A)).allotment, '4200');
    await lab.waitFor(() => lab.output.includes('result=ERR_CALLER_UNKNOWN'), 5000, 'the log line');
    const lines = lab.output.split('\n').filter((l) => l.includes('admin call'));
    assert.ok(
      lines.some((l) => /method=extend mac=\S+ seconds=600 account=\S+ result=ok/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => /method=extend .*result=ERR_SESSION_NOT_FOUND/.test(l)));
    assert.not.ok(lab.output.includes('f'.repeat(32)), 'the session id is never logged');
  },
);

test('extend is capped at one largest purchase of its plan: ten years is refused, logged, adds nothing', async () => {
  await lab.call('grant', { mac: B, seconds: 600, plan: 'time' });
  const years = await lab.callStatus('extend', { mac: B, seconds: 315_360_000 });
  assert.is((years.data!.error as Record<string, unknown>).code, 'ERR_EXTEND_TOO_LARGE');
  assert.is((await lab.session(B)).allotment, '600');
  // The time plan: max_steps 1440 × step_size 60 s.
  const over = await lab.callStatus('extend', { mac: B, seconds: 86_401 });
  assert.is((over.data!.error as Record<string, unknown>).code, 'ERR_EXTEND_TOO_LARGE');
  const most = await lab.call('extend', { mac: B, seconds: 86_400 });
  assert.is((most.session as Record<string, unknown>).allotment, String(600 + 86_400));
  await lab.waitFor(() => lab.output.includes('result=ERR_EXTEND_TOO_LARGE'), 5000, 'the log line');
  const lines = lab.output.split('\n').filter((l) => l.includes('admin call'));
  assert.ok(
    lines.some((l) => /method=extend mac=\S+ seconds=315360000 account=\S+ result=ERR_EXTEND_TOO_LARGE/.test(l)),
    lines.join('\n'),
  );
  await lab.call('terminate', { mac: B });
});

test('a time session ends at its deadline (within 1 s) and the gate closes', async () => {
  await lab.call('grant', { mac: B, seconds: 2 });
  await lab.waitFor(async () => (await lab.session(B)).state === 'EXPIRED', 30_000, 'time-limit');
  const ended = await lab.session(B);
  assert.is(ended.end_cause, 'time-limit');
  // The deadline as it stands at the end, not the reply's: the clock starts when the gate opens, which on a loaded
  // machine can be after the reply (gate 'opening'), and moves expires_at by that much.
  const deadline = (ended.expires_at as number) * 1000;
  const endedAt = (ended.ended_at as number) * 1000;
  assert.ok(endedAt - deadline <= 1000 && endedAt >= deadline - 1000, `ended at ${endedAt} vs deadline ${deadline}`);
  await lab.waitFor(() => lab.clientState(B) !== 'Authenticated', 30_000, 'gate closed');
});

test('device limit: a third device of the same user ends the oldest with device-limit', async () => {
  await lab.call('grant', { mac: A, seconds: 600, user: 'room-7' });
  await new Promise((r) => setTimeout(r, 20));
  await lab.call('grant', { mac: B, seconds: 600, user: 'room-7' });
  await lab.call('grant', { mac: C, seconds: 600, user: 'room-7' });
  const a = await lab.session(A);
  assert.is(a.state, 'TERMINATED');
  assert.is(a.end_cause, 'device-limit');
  assert.is((await lab.session(B)).state, 'ACTIVE');
  assert.is((await lab.session(C)).state, 'ACTIVE');
  await lab.waitFor(() => lab.clientState(A) !== 'Authenticated', 30_000, 'old device gate closed');
  // A grant answers within a bounded wait even when the portal is slower (a loaded machine): wait for the gate.
  await lab.waitFor(() => lab.clientState(C) === 'Authenticated', 30_000, 'new device gate open');
});

test(
  'kill -9 mid-session, restart: the session is back with ' + 'its allotment and usage; no free access meanwhile',
  async () => {
    await lab.call('grant', { mac: A, bytes: 8 * MiB });
    await billedFromNow(A);
    type Stats = { sessions: { checkpoints: number }; journal: { fsyncs: number } };
    const fsyncsBefore = ((await lab.call('stats')) as unknown as Stats).journal.fsyncs;
    lab.portal.addTraffic(A, MiB, 0);
    await lab.waitFor(async () => (await lab.session(A)).used === String(MiB), 30_000, 'usage');
    // Let the usage checkpoint (due checkpoint_interval = 5 s after the change) reach the journal: counted and fsynced.
    // A data session writes nothing else meanwhile, so the next fsync is the checkpoint's.
    await lab.waitFor(
      async () => {
        const stats = (await lab.call('stats')) as unknown as Stats;
        return stats.sessions.checkpoints >= 1 && stats.journal.fsyncs > fsyncsBefore;
      },
      60_000,
      'a usage checkpoint on flash',
    );
    const before = await lab.session(A);
    await lab.stopDaemon('SIGKILL');
    // While sluice is down, the portal's safety net still bounds the client (quota passed at auth)…
    const quota = lab.portal.read().model.get(A)?.downloadQuota ?? 0;
    assert.ok(quota > 0 && quota < 64 * 1024, `bounded safety net while down (${quota} KiB)`);
    // …and the client keeps using its open gate: those bytes must be billed after the restart, not forgiven.
    lab.portal.addTraffic(A, MiB, 0);
    await lab.startDaemon();
    const after = await lab.session(A);
    assert.is(after.id, before.id);
    assert.is(after.state, 'ACTIVE');
    assert.is(after.allotment, String(8 * MiB));
    assert.is(lab.clientState(A), 'Authenticated');
    await lab.waitFor(
      async () => (await lab.session(A)).used === String(2 * MiB),
      30_000,
      'downtime usage billed from the checkpointed mark',
    );
    // Metering goes on and still cuts at the allotment.
    lab.portal.addTraffic(A, 6 * MiB, 0);
    await lab.waitFor(async () => (await lab.session(A)).state === 'EXPIRED', 30_000, 'data-limit after restart');
    await lab.waitFor(() => lab.clientState(A) !== 'Authenticated', 30_000, 'gate closed');
    assert.is((await lab.session(A)).used, String(8 * MiB));
  },
);

test('kill -9 while no session: an authenticated client without a session is deauthed on start', async () => {
  await lab.stopDaemon('SIGKILL');
  lab.portal.update((model) => {
    model.auth(C);
  });
  assert.is(lab.clientState(C), 'Authenticated');
  await lab.startDaemon();
  assert.ok(lab.clientState(C) !== 'Authenticated', 'free access removed by reconcile');
});

test('a burst of 200 concurrent grants loses none, across a restart', async () => {
  const macs = Array.from(
    { length: 200 },
    (_, i) => `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );
  const replies = await Promise.all(macs.map((mac, i) => lab.call('grant', { mac, seconds: 3600 + i })));
  assert.is(replies.length, 200);
  assert.ok(replies.every((r) => (r.session as Record<string, unknown>).state === 'ACTIVE'));
  await lab.stopDaemon('SIGKILL');
  await lab.startDaemon();
  const list = (await lab.call('sessions', { state: 'ACTIVE', limit: 500 })).sessions as Record<string, unknown>[];
  const found = new Set(list.map((s) => s.mac));
  assert.is(macs.filter((m) => found.has(m)).length, 200, 'every accepted grant survived kill -9');
});

test('bad input gets clear errors and the daemon keeps serving', async () => {
  const cases: Array<[string, Record<string, unknown>, number, string]> = [
    ['grant', { mac: 'zz:zz', seconds: 10 }, 2, 'ERR_INVALID_ARGUMENT'],
    ['grant', { mac: A, seconds: -5 }, 2, 'ERR_INVALID_ARGUMENT'],
    ['grant', { mac: A, bytes: '1e9' }, 2, 'ERR_INVALID_ARGUMENT'],
    ['grant', { mac: A }, 2, 'ERR_INVALID_ARGUMENT'],
    ['purchase', { mac: A, payment: { method: 'grant' } }, 6, 'ERR_PAYMENT_METHOD_ADMIN_ONLY'],
    ['purchase', { mac: A, payment: { method: 'nope' } }, 2, 'ERR_UNKNOWN_PAYMENT_METHOD'],
    ['purchase', { mac: A, plan: 'data', amount: '-1', payment: { method: 'x' } }, 2, 'ERR_INVALID_ARGUMENT'],
    ['quote', { plan: 'data', amount: '999' }, 2, 'ERR_AMOUNT_TOO_SMALL'],
    ['quote', { plan: 'gold' }, 2, 'ERR_UNKNOWN_PLAN'],
    ['quote', { plan: 'data', amount: '1'.repeat(60) }, 2, 'ERR_INVALID_ARGUMENT'],
    ['session', { mac: C }, 4, 'ERR_SESSION_NOT_FOUND'],
  ];
  for (const [method, args, status, code] of cases) {
    const r = await lab.callStatus(method, args as never);
    assert.is(r.status, status, `${method} ${JSON.stringify(args)} → status`);
    assert.is(
      (r.data?.error as Record<string, unknown> | undefined)?.code,
      code,
      `${method} ${JSON.stringify(args)} → code`,
    );
  }
  const quote = (await lab.call('quote', { plan: 'data', amount: '2500' })).quote as Record<string, unknown>;
  assert.is(quote.steps, '2');
  assert.is(quote.price, '2000', 'charged only for whole steps');
  assert.is(quote.allotment, String(2 * MiB));
  // uhttpd adds ubus_rpc_session to every call: ignored.
  const pricing = await lab.call('pricing', { ubus_rpc_session: '0123' });
  assert.is(pricing.default, 'data');
  assert.is((pricing.plans as unknown[]).length, 2);
});

test(
  'reload: a bad plan is left out and named, the rest applies; an unparsable file is refused, old config kept; ' +
    'SIGHUP too',
  async () => {
    const good = (await lab.call('pricing')).plans as Record<string, unknown>[];
    assert.is(good[0]!.price_per_step, '1000');
    lab.writeConfig(`config pricing 'data'\n\toption price_per_step '1.5'\n`);
    const partly = await lab.call('reload');
    assert.is(partly.reloaded, true);
    assert.equal(partly.problems, [
      {
        path: 'pricing[data].price_per_step',
        reason: 'must be a non-negative integer (smallest unit of the asset)',
        effect: 'plan-left-out',
      },
    ]);
    assert.equal(
      ((await lab.call('pricing')).plans as Record<string, unknown>[]).map((p) => p.id),
      ['time'],
      'the good plan stays on sale',
    );
    assert.equal(
      ((await lab.call('stats')).config_problems as Record<string, unknown>[]).map((p) => p.path),
      ['pricing[data].price_per_step'],
    );
    assert.match(lab.output, /config problem ignored.*pricing\[data\]\.price_per_step/);

    lab.writeConfig(`config pricing 'broken\n`);
    const bad = await lab.callStatus('reload');
    assert.is(bad.status, 12, 'UBUS_STATUS_PARSE_ERROR');
    assert.is((bad.data?.error as { code: string }).code, 'ERR_UCI_PARSE');
    assert.equal(
      ((await lab.call('pricing')).plans as Record<string, unknown>[]).map((p) => p.id),
      ['time'],
      'running config kept',
    );
    assert.is(((await lab.call('grant', { mac: A, seconds: 60 })).session as Record<string, unknown>).state, 'ACTIVE');

    lab.options.extraConfig =
      `config pricing 'promo'\n\toption metric 'seconds'\n\toption ` + `step_size '60'\n\toption price_per_step '1'\n`;
    lab.writeConfig();
    const ok = await lab.call('reload');
    assert.equal([ok.restart_required, ok.problems], [[], []], 'a new plan applies live');
    assert.is(((await lab.call('pricing')).plans as unknown[]).length, 3);
    assert.equal((await lab.call('stats')).config_problems, []);

    lab.options.extraConfig = '';
    lab.writeConfig();
    lab.daemon!.kill('SIGHUP');
    await lab.waitFor(
      async () => ((await lab.call('pricing')).plans as unknown[]).length === 2,
      30_000,
      'SIGHUP reload',
    );
    assert.is(lab.daemon!.exitCode, null, 'SIGHUP does not stop the daemon');
  },
);

test(
  'reload: restart_required compares with the running engine, stays until reverted, and stats shows the running ' +
    'value',
  async () => {
    const runningDir = ((await lab.call('stats')).config as Record<string, unknown>).stateDir;
    const main = (options: string) => `config sluice 'main'\n${options}`;
    lab.writeConfig(main(`\toption state_dir '/tmp/sluice-not-in-use'\n`));
    assert.equal((await lab.call('reload')).restart_required, ['main.state_dir']);
    assert.equal((await lab.call('reload')).restart_required, ['main.state_dir'], 'a second reload still reports it');
    const stats = await lab.call('stats');
    assert.is((stats.config as Record<string, unknown>).stateDir, runningDir, 'stats shows the path in use');
    assert.equal(stats.restart_required, ['main.state_dir']);

    lab.writeConfig(main(`\toption poll_interval '0.7'\n\toption log_level 'info'\n`));
    assert.equal(
      (await lab.call('reload')).restart_required,
      ['main.poll_interval'],
      'state_dir reverted, poll_interval changed',
    );
    assert.is(((await lab.call('stats')).config as Record<string, unknown>).pollIntervalMs, 300);
    assert.is(
      ((await lab.call('stats')).config as Record<string, unknown>).logLevel,
      'info',
      'reloadable options do apply',
    );
    // The LAN endpoint's rate limit is set at start: a new one waits for the restart; its listen address moves on
    // reload (test/daemon/lan-live.test.ts).
    lab.writeConfig(`config http 'http'\n\toption listen '127.0.0.1:2122'\n\toption rate_limit '60'\n`);
    assert.equal((await lab.call('reload')).restart_required, ['http.rate_limit']);
    assert.equal((await lab.call('stats')).restart_required, ['http.rate_limit']);
    lab.writeConfig();
    assert.equal((await lab.call('reload')).restart_required, [], 'back to the running values');
    assert.equal((await lab.call('stats')).restart_required, []);
  },
);

test(
  'start on a partly bad config: bad plan left out, bad upstream disabled, bad main option defaulted; stats and ' +
    'log say so',
  async () => {
    await lab.stopDaemon();
    lab.writeConfig(
      `config sluice 'main'\n\toption workers '99'\n` +
        `config pricing 'huge'\n\toption metric 'bytes'\n\toption step_size '1TiB'\n\toption max_steps ` +
        `'10000'\n\toption price_per_step '1'\n` +
        `config radius 'radius'\n\toption enabled '1'\n\toption server 'not_a host!'\n\toption secret 's'\n`,
    );
    await lab.startDaemon();
    const stats = await lab.call('stats');
    assert.equal(
      (stats.config_problems as Record<string, unknown>[]).map((p) => `${p.path} ${p.effect}`),
      ['main.workers default-used', 'pricing[huge].max_steps plan-left-out', 'radius.server section-disabled'],
    );
    assert.is((stats.config as Record<string, unknown>).workers, 1);
    assert.equal(
      ((await lab.call('pricing')).plans as Record<string, unknown>[]).map((p) => p.id),
      ['data', 'time'],
    );
    for (const path of ['main.workers', 'pricing\\[huge\\].max_steps', 'radius.server']) {
      assert.match(lab.output, new RegExp(`config problem ignored.*${path}`));
    }
    assert.is(
      ((await lab.call('grant', { mac: A, bytes: MiB })).session as Record<string, unknown>).state,
      'ACTIVE',
      'and it serves',
    );
  },
);

test('main.enabled 0: a reload stops the daemon cleanly (exit 0); a start with it exits 0 at once', async () => {
  await lab.call('grant', { mac: A, seconds: 600 });
  lab.writeConfig(`config sluice 'main'\n\toption enabled '0'\n`);
  const exited = new Promise<number | null>((r) => lab.daemon!.once('exit', (code) => r(code)));
  const reply = await lab.call('reload');
  assert.is(reply.stopping, true);
  assert.is(await exited, 0);
  assert.match(lab.output, /main\.enabled is 0: stopping/);
  assert.match(lab.output, /sluice stopped/);
  lab.daemon = undefined;

  let failure = '';
  await lab.startDaemon().catch((err: Error) => {
    failure = err.message;
  });
  assert.match(failure, /daemon exited \(code 0/);
  assert.match(lab.output, /main\.enabled is 0: not starting/);
  lab.writeConfig();
  await lab.startDaemon();
  assert.is((await lab.session(A)).state, 'ACTIVE', 'the paid session survived the disabled period');
});

test(
  "stats shows the ubus socket in use (--ubus-socket), not the file's; a restarted ubusd is logged once each way " +
    'and sluice is back on it',
  async () => {
    const config = (await lab.call('stats')).config as Record<string, unknown>;
    assert.is(config.ubusSocket, lab.socket, 'the --ubus-socket the daemon was started with');
    lab.writeConfig(`config sluice 'main'\n\toption ubus_socket '/tmp/sluice-not-this.sock'\n`);
    assert.equal(
      (await lab.call('reload')).restart_required,
      [],
      'the command line wins over the file, so a restart would change nothing',
    );
    assert.is(((await lab.call('stats')).config as Record<string, unknown>).ubusSocket, lab.socket);

    // ubusd goes away for a while (procd restarts it on a router): sluice retries silently and registers again.
    lab.client.destroy();
    await lab.broker.close();
    // Away until sluice has seen it go (instead of a fixed pause): the retry, not a lucky race, brings it back.
    await lab.waitFor(() => lab.output.includes('ubus connection lost'), 20_000, 'the loss log line');
    lab.broker = await UbusBroker.listen({ socketPath: lab.socket });
    await lab.waitFor(() => lab.output.includes('ubus connection re-established'), 20_000, 'the reconnect log line');
    lab.client = await UbusClient.connect({ socketPath: lab.socket, timeoutMs: 20_000 });
    await lab.waitFor(async () => (await lab.client.lookup('sluice')).length === 1, 30_000, 'sluice registered again');
    assert.is(((await lab.call('stats')).config as Record<string, unknown>).ubusSocket, lab.socket, 'and answers');
    const count = (needle: string) => lab.output.split(needle).length - 1;
    assert.is(count('ubus connection lost'), 1, 'one line when lost');
    assert.is(count('ubus connection re-established'), 1, 'one line when back');
  },
);

test('SIGTERM checkpoints usage and exits 0; the usage is there after a restart', async () => {
  await lab.call('grant', { mac: A, bytes: 32 * MiB });
  await billedFromNow(A);
  lab.portal.addTraffic(A, 3 * MiB, 0);
  await lab.waitFor(async () => (await lab.session(A)).used === String(3 * MiB), 30_000, 'usage');
  // Stopped long before the 5 s checkpoint interval: only the clean-stop checkpoint can have saved it.
  const code = await lab.stopDaemon('SIGTERM');
  assert.is(code, 0);
  assert.match(lab.output, /sluice stopped/);
  await lab.startDaemon();
  assert.is((await lab.session(A)).used, String(3 * MiB));
});

test.run();
