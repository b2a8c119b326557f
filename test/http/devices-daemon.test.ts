// tier: daemon
/**
 * Several devices per purchase with the real daemon (dist/sluice.mjs): two MACs share one data allotment. The buyer's
 * device reads its code (GET /devices), the second device joins with it from its own IP (POST /devices/join), its gate
 * opens; a kill -9 and a restart keep both devices; the meter bills the sum of both and the session ends `data-limit`
 * for both at once, both gates closing. The LAN endpoint runs here on http.pcsync_secret alone (no x402, no RADIUS).
 */
import { request } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';

const test = suite('several devices per purchase, real daemon');
const A = '02:00:00:00:0f:31';
const B = '02:00:00:00:0f:32';
const C = '02:00:00:00:0f:33';
const MiB = 1024 * 1024;
let lab: DaemonLab;
let port: number;

test.before(async () => {
  port = await freePort();
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig:
      `\nconfig http 'http'\n\toption listen '127.0.0.1:${port}'\n\toption pcsync_secret ` +
      `'pcsync-secret-for-the-lab'\n`,
  });
  lab.portal.addClient(A, '127.0.0.1');
  lab.portal.addClient(B, '127.0.0.2');
  lab.portal.addClient(C, '127.0.0.3');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
});

/** A request from `from` (the device's own address: the endpoint finds its MAC by it). */
function http(from: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: text ? 'POST' : 'GET',
        localAddress: from,
        agent: false,
        headers: text ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let out = '';
        res.on('data', (d) => (out += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(out) as Record<string, any> }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

async function ticksPast(): Promise<void> {
  const ticks = async () => ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
  const from = await ticks();
  await lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'two meter ticks');
}

test(
  'two devices share one data allotment: join by code, ' + 'survive a kill -9, billed as their sum, cut together',
  async () => {
    const granted = await lab.call('grant', { mac: A, bytes: 4 * MiB, devices: 2 });
    const session = granted.session as Record<string, any>;
    assert.is(session.max_devices, 2);
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, "A's gate open");

    // The pay page loads its devices part (its own file, same origin).
    const page = await fetch(`http://127.0.0.1:${port}/portal`).then((r) => r.text());
    assert.match(page, '<script src="/devices.js"></script>');
    const script = await fetch(`http://127.0.0.1:${port}/devices.js`);
    assert.is(script.status, 200);
    assert.match(await script.text(), "'/devices/join'");
    const mine = await http('127.0.0.1', '/devices');
    assert.is(mine.status, 200, JSON.stringify(mine.body));
    assert.match(mine.body.code, /^[0-9A-Z]{8}$/);
    assert.match(mine.body.join_url, `/portal?join=${mine.body.code}`);
    const wrong = await http('127.0.0.2', '/devices/join', { code: 'ZZZZZZZZ' });
    assert.is(wrong.status, 404);
    assert.is(wrong.body.error.code, 'ERR_DEVICE_CODE_INVALID');
    const joined = await http('127.0.0.2', '/devices/join', { code: mine.body.code });
    assert.is(joined.status, 200, JSON.stringify(joined.body));
    assert.equal(joined.body.session.devices, [A, B]);
    await lab.waitFor(() => lab.clientState(B) === 'Authenticated', 30_000, "B's gate open");

    // A crash after the join: both devices are still the session's, their gates open, billing resumes.
    await lab.stopDaemon('SIGKILL');
    await lab.startDaemon();
    const back = await lab.session(B);
    assert.is(back.id, session.id);
    assert.equal(back.devices, [A, B]);
    await lab.waitFor(
      () => lab.clientState(A) === 'Authenticated' && lab.clientState(B) === 'Authenticated',
      30_000,
      'both gates open',
    );
    await ticksPast();

    lab.portal.addTraffic(A, MiB, 0);
    lab.portal.addTraffic(B, MiB, 0);
    await lab.waitFor(async () => (await lab.session(A)).used === String(2 * MiB), 30_000, 'the sum of both billed');
    assert.is((await lab.session(B)).state, 'ACTIVE');
    lab.portal.addTraffic(B, 2 * MiB + 4096, 0);
    await lab.waitFor(async () => (await lab.session(A)).state === 'EXPIRED', 30_000, 'data-limit');
    assert.is((await lab.session(B)).end_cause, 'data-limit');
    await lab.waitFor(
      () => lab.clientState(A) !== 'Authenticated' && lab.clientState(B) !== 'Authenticated',
      30_000,
      'both gates closed',
    );
  },
);

test(
  "removing a device from the buyer's page closes its gate alone; a stranger cannot remove it; the buyer's MAC " +
    'is refused',
  async () => {
    // The end above deauthed both: openNDS forgets a deauthed client until it comes back.
    lab.portal.addClient(A, '127.0.0.1');
    lab.portal.addClient(B, '127.0.0.2');
    await lab.call('grant', { mac: A, seconds: 3600, devices: 2 });
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, "A's gate open");
    const { code } = (await http('127.0.0.1', '/devices')).body;
    assert.is((await http('127.0.0.2', '/devices/join', { code })).status, 200);
    await lab.waitFor(() => lab.clientState(B) === 'Authenticated', 30_000, "B's gate open");
    const full = await http('127.0.0.3', '/devices/join', { code });
    assert.is(full.status, 409);
    assert.is(full.body.error.code, 'ERR_DEVICE_LIMIT');
    const stranger = await http('127.0.0.3', '/devices/remove', { mac: B });
    assert.is(stranger.status, 404);
    assert.is(stranger.body.error.code, 'ERR_DEVICE_NOT_MEMBER');
    const buyer = await lab.callStatus('remove_device', { mac: A });
    assert.ok(buyer.status !== 0, "the buyer's own MAC is not removed (terminate ends the session)");
    const removed = await http('127.0.0.1', '/devices/remove', { mac: B });
    assert.is(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.session.devices, [A]);
    await lab.waitFor(() => lab.clientState(B) !== 'Authenticated', 30_000, "B's gate closed");
    assert.is(lab.clientState(A), 'Authenticated', 'A goes on');
    assert.is((await lab.session(A)).state, 'ACTIVE');
    // The freed place: C joins, and ubus removes it.
    assert.is((await http('127.0.0.3', '/devices/join', { code })).status, 200);
    const viaUbus = await lab.call('remove_device', { mac: C });
    assert.equal((viaUbus.session as Record<string, unknown>).devices, [A]);
  },
);

test.run();
