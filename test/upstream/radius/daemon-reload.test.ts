// tier: peers; needs freeradius radclient
/**
 * radius.enabled applies on reload, with the real daemon (dist/sluice.mjs) and a real FreeRADIUS: RADIUS is a plugin of
 * the list (payments/radius/), opened and closed by it. Switched on, its `voucher` sells (the Access-Request goes out
 * and the accounting Start comes in), its sink shows in stats and its Disconnect/CoA listener holds its port; switched
 * off, a RADIUS code is a wrong code like any other, the sink is gone and the port is free; switched on again, it
 * sells again. No reload lists radius.enabled as restart-only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createSocket } from 'node:dgram';
import { DaemonLab } from '../../daemon/harness.ts';
import { FreeRadius } from '../../peers/freeradius.ts';
import { freePort } from '../../helpers/net.ts';
import { mac } from './daemon-lab.ts';

/** Whether a UDP port is free to bind on all addresses (the Disconnect/CoA listener's default). */
async function udpFree(port: number): Promise<boolean> {
  const socket = createSocket({ type: 'udp6' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '::', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise<void>((r) => {
      try {
        socket.close(() => r());
      } catch {
        r();
      }
    });
  }
}

test('radius.enabled on, off and on again by reloads: its voucher, sink and listener follow, no restart', async () => {
  const radius = await FreeRadius.start();
  const coaPort = await freePort();
  const section = (enabled: boolean): string => `
config radius 'radius'
\toption enabled '${enabled ? 1 : 0}'
\toption server '127.0.0.1'
\toption auth_port '${radius.authPort}'
\toption acct_port '${radius.acctPort}'
\toption secret '${radius.secret}'
\toption nas_identifier 'router-test'
\toption nas_ip '127.0.0.1'
\toption coa_port '${coaPort}'
\toption timeout '0.3'
\toption retries '1'
`;
  const lab = await DaemonLab.create({ portalSocket: true, pollInterval: 0.3, extraConfig: section(false) });
  for (let i = 1; i <= 4; i++) lab.portal.addClient(mac(i), `10.0.1.${i}`);
  const buy = (n: number, code: string, password: string) =>
    lab.callStatus('purchase', { mac: mac(n), payment: { method: 'voucher', code, password } });
  const upstream = async (): Promise<Record<string, unknown>> =>
    (await lab.call('stats')).upstream as Record<string, unknown>;
  try {
    await lab.startDaemon();
    const off = await buy(1, 'testuser', 'testpass');
    assert.is((off.data?.error as Record<string, unknown>).code, 'ERR_VOUCHER_REJECTED', 'off: a wrong code');
    assert.not.ok('radius' in (await upstream()), 'off: no RADIUS sink');

    lab.writeConfig(section(true));
    const on = await lab.call('reload');
    assert.equal(on.restart_required, [], 'switching RADIUS on takes no restart');
    const sold = await buy(2, 'testuser', 'testpass');
    assert.is(sold.status, 0, JSON.stringify(sold.data));
    const session = (sold.data?.session as Record<string, unknown>) ?? {};
    assert.is(session.user, 'testuser');
    assert.ok('radius' in (await upstream()), 'on: the RADIUS sink runs');
    await lab.waitFor(
      () => radius.acctLines().some((l) => l.startsWith('Start ') && l.includes(session.id as string)),
      30_000,
      'the accounting Start of the voucher session',
    );
    assert.not.ok(await udpFree(coaPort), 'on: the Disconnect/CoA listener holds its port');

    lab.writeConfig(section(false));
    const offAgain = await lab.call('reload');
    assert.equal(offAgain.restart_required, [], 'switching RADIUS off takes no restart');
    const refused = await buy(3, 'testuser', 'testpass');
    assert.is((refused.data?.error as Record<string, unknown>).code, 'ERR_VOUCHER_REJECTED', 'off again: a wrong code');
    assert.not.ok('radius' in (await upstream()), 'off again: the sink is gone');
    assert.ok(await udpFree(coaPort), 'off again: the listener is closed');
    assert.is((await lab.session(mac(2))).state, 'ACTIVE', 'the session RADIUS sold runs on');

    lab.writeConfig(section(true));
    assert.equal((await lab.call('reload')).restart_required, []);
    const again = await buy(4, 'biguser', 'bigpass');
    assert.is(again.status, 0, JSON.stringify(again.data));
    assert.ok('radius' in (await upstream()), 'on again: the sink runs');
  } finally {
    await lab.close();
    await radius.close();
  }
});

test.run();
