/**
 * PC-sync, inbound, with the real daemon (dist/sluice.mjs): http.pcsync_secret alone runs the LAN endpoint; a signed
 * POST /pcsync/logout ends the user's session TERMINATED `pc-logout` and its gate closes on the portal; the same call
 * replayed after a restart is refused (the nonce was on flash before the logout ran); `stats` never shows the secret.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../peers/freeradius.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { pcsyncSignature } from '../../src/http/index.ts';

const test = suite('PC-sync logout, real daemon');
const SECRET = 'icafe-pcsync-secret-42';
const MAC = '02:00:00:00:0f:21';
let lab: DaemonLab;
let base: string;

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = await DaemonLab.create({
    pollInterval: 0.3, portalSocket: true,
    extraConfig: `\nconfig http 'http'\n\toption listen '127.0.0.1:${port}'\n\toption pcsync_secret '${SECRET}'\n`,
  });
  lab.portal.addClient(MAC, '192.168.1.50');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
});

async function logout(body: string, nonce: string): Promise<{ status: number; body: Record<string, any> }> {
  const ts = Date.now();
  const res = await fetch(`${base}/pcsync/logout`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-sluice-timestamp': String(ts), 'x-sluice-nonce': nonce, 'x-sluice-signature': pcsyncSignature(SECRET, ts, nonce, body) },
  });
  return { status: res.status, body: await res.json() as Record<string, any> };
}

test('a signed logout ends the user\'s session pc-logout and closes its gate; a replay after a restart is refused', async () => {
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
});

test.run();
