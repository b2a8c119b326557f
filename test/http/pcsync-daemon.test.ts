// tier: daemon
/**
 * PC-sync, inbound, with the real daemon (dist/sluice.mjs): http.pcsync_secret alone runs the LAN endpoint; a signed
 * POST /pcsync/logout ends the user's session TERMINATED `pc-logout` and its gate closes on the portal; the same call
 * replayed after a restart is refused (the nonce was on flash before the logout ran); `stats` never shows the secret.
 * A damaged pcsync-nonces.json is not read as "no nonces": the captured logout replayed after a restart is refused
 * (ERR_PCSYNC_NONCES_LOST, counted in `stats`) and the user's new session survives, until the window has passed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { pcsyncSignature } from '../../src/http/pcsync-verify.ts';

const test = suite('PC-sync logout, real daemon');
const SECRET = 'icafe-pcsync-secret-42';
const MAC = '02:00:00:00:0f:21';
/**
 * http.pcsync_window: short, so the refusal after damage ends within the test, and long enough that the captured
 * call is still inside it after two restarts on a loaded machine (at 5 s it had expired by the first replay at load
 * 18, so the refusal read ERR_PCSYNC_EXPIRED and said nothing of the damaged record).
 */
const WINDOW_S = 45;
let lab: DaemonLab;
let base: string;

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig:
      `\nconfig http 'http'\n\toption listen '127.0.0.1:${port}'\n\toption pcsync_secret '${SECRET}'\n\toption ` +
      `pcsync_window '${WINDOW_S}'\n`,
  });
  lab.portal.addClient(MAC, '192.168.1.50');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
});

/** A signed call as it goes over the LAN: what a listener there captures, headers and body, to send again as it is. */
function signed(body: string, nonce: string, ts = Date.now()): { body: string; headers: Record<string, string> } {
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-sluice-timestamp': String(ts),
      'x-sluice-nonce': nonce,
      'x-sluice-signature': pcsyncSignature(SECRET, ts, nonce, body),
    },
  };
}

async function send(call: {
  body: string;
  headers: Record<string, string>;
}): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${base}/pcsync/logout`, { method: 'POST', ...call });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

function logout(body: string, nonce: string): Promise<{ status: number; body: Record<string, any> }> {
  return send(signed(body, nonce));
}

async function pcsyncStats(): Promise<Record<string, any>> {
  return ((await lab.call('stats')) as Record<string, any>).http.pcsync;
}

test(
  "a signed logout ends the user's session pc-logout and " + 'closes its gate; a replay after a restart is refused',
  async () => {
    await lab.call('grant', { mac: MAC, seconds: 3600, user: 'pc-7' });
    await lab.waitFor(() => lab.clientState(MAC) === 'Authenticated', 20_000, 'the gate to open');
    const body = JSON.stringify({ user: 'pc-7' });
    const r = await logout(body, 'icafe-call-0001');
    assert.is(r.status, 200, JSON.stringify(r.body));
    assert.is(r.body.ended, 1);
    const s = await lab.session(MAC);
    assert.is(s.state, 'TERMINATED');
    assert.is(s.end_cause, 'pc-logout');
    await lab.waitFor(() => lab.clientState(MAC) !== 'Authenticated', 20_000, 'the gate to close');
    const stats = JSON.stringify(await lab.call('stats'));
    assert.not.match(stats, SECRET);

    await lab.stopDaemon();
    await lab.startDaemon();
    await lab.call('grant', { mac: MAC, seconds: 3600, user: 'pc-7' });
    const replay = await logout(body, 'icafe-call-0001');
    assert.is(replay.status, 409);
    assert.is(replay.body.error.code, 'ERR_PCSYNC_REPLAYED');
    assert.is((await lab.session(MAC)).state, 'ACTIVE', 'the replay ended nothing');
  },
);

test(
  'a damaged pcsync-nonces.json: the captured logout replayed after a restart is refused and the new session ' +
    'survives; later calls run',
  async () => {
    await lab.call('grant', { mac: MAC, seconds: 3600, user: 'pc-8' });
    const captured = signed(JSON.stringify({ mac: MAC }), 'icafe-call-0002');
    const first = await send(captured);
    assert.is(first.status, 200, JSON.stringify(first.body));
    assert.is(first.body.ended, 1);

    // A bad flash tears the file while the daemon is down.
    await lab.stopDaemon();
    const file = join(lab.dir, 'state', 'pcsync-nonces.json');
    assert.match(readFileSync(file, 'utf8'), 'icafe-call-0002', 'the nonce was on flash');
    writeFileSync(file, '{"refused_up_to":null,"nonces":[["icafe-call-00');
    await lab.startDaemon();
    assert.match(lab.output, 'ERR_PCSYNC_NONCES_LOST', 'the start logs the damage with its code');
    let stats = await pcsyncStats();
    assert.is(stats.nonces, 'damaged');
    let refusedUpTo = stats.refused_up_to as number;

    await lab.call('grant', { mac: MAC, seconds: 3600, user: 'pc-8' });
    const replay = await send(captured);
    assert.is(replay.status, 503, JSON.stringify(replay.body));
    assert.is(replay.body.error.code, 'ERR_PCSYNC_NONCES_LOST');
    assert.is((await lab.session(MAC)).state, 'ACTIVE', 'the new session survives the replay');
    stats = await pcsyncStats();
    assert.is(stats.refused_nonces_lost, 1, 'counted in stats');

    // Another restart before the window has passed: still refused (the damaged file was not taken for empty), now up
    // to this start plus the window.
    await lab.stopDaemon();
    await lab.startDaemon();
    stats = await pcsyncStats();
    assert.is(stats.nonces, 'damaged');
    assert.ok(stats.refused_up_to >= refusedUpTo);
    refusedUpTo = stats.refused_up_to as number;
    const again = await send(captured);
    assert.is(again.body.error.code, 'ERR_PCSYNC_NONCES_LOST');
    assert.is((await lab.session(MAC)).state, 'ACTIVE');

    // Once the floor is behind the clock, a call signed now runs (the captured one is refused as expired by then).
    await lab.waitFor(() => Date.now() > refusedUpTo + 50, (WINDOW_S + 30) * 1000, 'the refusal window to pass');
    const fresh = await logout(JSON.stringify({ mac: MAC }), 'icafe-call-0003');
    assert.is(fresh.status, 200, JSON.stringify(fresh.body));
    assert.is(fresh.body.ended, 1);
    assert.not.equal((await send(captured)).status, 200);
  },
);

test.run();
