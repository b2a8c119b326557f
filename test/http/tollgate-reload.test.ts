// tier: daemon
/**
 * TollGate switched by a reload, no restart (the door is the cashu plugin's, opened and closed by the plugin host):
 * against the real daemon (DaemonLab) and the lab Cashu mint, a reload that adds the tollgate section opens the door
 * and it sells; one that moves `tollgate.listen` moves the door (the old port refuses); one that removes the section
 * closes the door while the session it sold runs on, gate open; one that adds it back opens the door again and sells.
 * Each reload answers restart_required [].
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:http';
import { freePort } from '../helpers/net.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { startCashuMint, type CashuMint } from '../peers/cashu-mint.ts';

const PHONE = { ip: '127.0.0.2', mac: '02:00:00:00:54:02' };
const LAPTOP = { ip: '127.0.0.3', mac: '02:00:00:00:54:03' };
const PRICE = 21;

/** One HTTP exchange from `from` to the door on `port`; null when the connection is refused. */
function door(
  port: number,
  from: string,
  method: string,
  body?: string,
): Promise<{ status: number; text: string } | null> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent: false,
        host: '127.0.0.1',
        port,
        method,
        path: '/',
        localAddress: from,
        headers: { 'content-type': 'text/plain', ...(body !== undefined && { 'content-length': body.length }) },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => (text += d))
          .on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve(null) : reject(err)));
    req.end(body);
  });
}

const section = (mint: CashuMint, port: number): string => `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${port}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '${PRICE}'
\toption min_steps '1'
`;

test('tollgate on, moved, off and on again by reloads: the door follows, no restart, its sessions run on', async () => {
  const mint = await startCashuMint();
  const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
  try {
    for (const d of [PHONE, LAPTOP]) lab.portal.addClient(d.mac, d.ip);
    await lab.startDaemon();
    const first = await freePort();
    assert.is(await door(first, PHONE.ip, 'GET'), null, 'no door before the section');

    // On: the door opens and sells.
    lab.writeConfig(section(mint, first));
    const on = await lab.call('reload');
    assert.equal(on.restart_required, []);
    assert.equal(on.moved, ['tollgate.listen'], "the init script hands procd the door's WAN rule");
    await lab.waitFor(async () => (await door(first, PHONE.ip, 'GET'))?.status === 200, 30_000, 'the door opens');
    const paid = await door(first, PHONE.ip, 'POST', await mint.fundToken(10 * PRICE));
    assert.is(paid?.status, 200, paid?.text);
    assert.is((JSON.parse(paid!.text) as { kind: number }).kind, 1022);
    assert.is((await lab.session(PHONE.mac)).state, 'ACTIVE');
    await lab.waitFor(() => lab.clientState(PHONE.mac) === 'Authenticated', 30_000, 'the phone gate opens');

    // Moved: the new port answers, the old one refuses.
    const second = await freePort();
    lab.writeConfig(section(mint, second));
    assert.equal((await lab.call('reload')).restart_required, []);
    await lab.waitFor(async () => (await door(second, PHONE.ip, 'GET'))?.status === 200, 30_000, 'the door moves');
    await lab.waitFor(async () => (await door(first, PHONE.ip, 'GET')) === null, 30_000, 'the old port closes');

    // Off: the door closes; the session it sold runs on, its gate open.
    lab.writeConfig();
    assert.equal((await lab.call('reload')).restart_required, []);
    await lab.waitFor(async () => (await door(second, PHONE.ip, 'GET')) === null, 30_000, 'the door closes');
    assert.is((await lab.session(PHONE.mac)).state, 'ACTIVE');
    assert.is(lab.clientState(PHONE.mac), 'Authenticated');
    const refused = await lab.callStatus('purchase', {
      mac: LAPTOP.mac,
      plan: 'time',
      payment: { method: 'cashu', token: await mint.fundToken(PRICE) },
    });
    assert.is.not(refused.status, 0, 'cashu does not sell while tollgate is off');

    // On again: the door opens and sells.
    lab.writeConfig(section(mint, second));
    assert.equal((await lab.call('reload')).restart_required, []);
    await lab.waitFor(async () => (await door(second, LAPTOP.ip, 'GET'))?.status === 200, 30_000, 'it opens again');
    const again = await door(second, LAPTOP.ip, 'POST', await mint.fundToken(5 * PRICE));
    assert.is(again?.status, 200, again?.text);
    assert.is((await lab.session(LAPTOP.mac)).state, 'ACTIVE');
    assert.is((await lab.session(PHONE.mac)).state, 'ACTIVE');
    assert.is(lab.daemon?.exitCode, null, 'one daemon throughout');
  } finally {
    await lab.close();
    await mint.stop();
  }
});

test.run();
