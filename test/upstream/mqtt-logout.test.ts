// tier: peers; needs mosquitto
/**
 * Inbound PC-sync: the PC system's "user X logged out" on the signed MQTT command channel ends that
 * user's WiFi sessions at once (cause pc-logout, gates closed), the real daemon against a real mosquitto; the same
 * command replayed or forged is refused. `change` rides the same channel (the ubus method of that name).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../daemon/harness.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { Subscriber } from './mqtt-rig.ts';

const A = '02:00:00:00:0d:01';
const B = '02:00:00:00:0d:02';
const C = '02:00:00:00:0d:03';
const SECRET = 'logout-test-command-secret';
const MiB = 1048576;

let lab: DaemonLab | undefined;
let broker: Mosquitto | undefined;
let sub: Subscriber | undefined;

test.after.each(async () => {
  await sub?.close();
  await lab?.close();
  await broker?.close();
  lab = broker = sub = undefined;
});

function command(body: Record<string, unknown>, key = SECRET): string {
  const text = JSON.stringify(body);
  return JSON.stringify({ command: text, sig: signCommand(key, text) });
}

test(
  'a signed logout ends every session of the user and ' + 'closes their gates; replayed or forged, it is refused',
  async () => {
    broker = await Mosquitto.create();
    sub = await Subscriber.connect(broker.url);
    lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: `
config mqtt 'mqtt'
\toption enabled '1'
\toption url '${broker.url}'
\toption commands '1'
\toption command_secret '${SECRET}'
`,
    });
    for (const [mac, ip] of [
      [A, '10.0.2.1'],
      [B, '10.0.2.2'],
      [C, '10.0.2.3'],
    ] as const)
      lab.portal.addClient(mac, ip);
    await lab.startDaemon();
    const s = sub;
    const l = lab;
    await s.waitFor(() => s.on('status').some((m) => m.body['online'] === true), 10_000, 'online status');
    const topic = `sluice/${String(s.on('status').find((m) => m.body['online'] === true)!.body['router'])}/cmd`;
    await l.call('grant', { mac: A, seconds: 3600, user: 'pc-7' });
    await l.call('grant', { mac: B, bytes: 8 * MiB, user: 'pc-7' });
    await l.call('grant', { mac: C, seconds: 3600, user: 'pc-8' });
    for (const m of [A, B, C]) await l.waitFor(() => l.clientState(m) === 'Authenticated', 10_000, `gate of ${m}`);

    const logout = command({
      cmd: 'logout',
      args: { user: 'pc-7' },
      ts: Date.now(),
      nonce: 'logout-nonce-01',
      id: 'lo1',
    });
    await s.client.publishAsync(topic, logout, { qos: 1 });
    await s.waitFor(() => s.on('reply').length === 1, 10_000, 'logout reply');
    const reply = s.on('reply')[0]!.body;
    assert.equal([reply['ok'], reply['cmd'], reply['id']], [true, 'logout', 'lo1'], JSON.stringify(reply));
    assert.is((reply['result'] as Record<string, unknown>)['ended'], 2);
    for (const m of [A, B]) {
      const ended = await l.session(m);
      assert.equal([ended.state, ended.end_cause], ['TERMINATED', 'pc-logout']);
      assert.is.not(l.clientState(m), 'Authenticated', 'gate closed before the reply');
    }
    assert.is((await l.session(C)).state, 'ACTIVE', 'another user untouched');

    // The same bytes again (a replay), and one signed with another key: refused, C still runs.
    await s.client.publishAsync(topic, logout, { qos: 1 });
    await s.client.publishAsync(
      topic,
      command(
        { cmd: 'logout', args: { user: 'pc-8' }, ts: Date.now(), nonce: 'logout-nonce-02' },
        'forged-secret-forged-secret',
      ),
      { qos: 1 },
    );
    await s.waitFor(() => s.on('reply').length === 3, 10_000, 'two refusals');
    assert.equal(
      s
        .on('reply')
        .slice(1)
        .map((m) => (m.body['error'] as Record<string, unknown>)['code']),
      ['ERR_MQTT_COMMAND_REPLAYED', 'ERR_MQTT_COMMAND_SIGNATURE'],
    );
    assert.is((await l.session(C)).state, 'ACTIVE');

    // change: the ubus method's arguments, the session's new limits in the reply.
    await s.client.publishAsync(
      topic,
      command({ cmd: 'change', args: { mac: C, seconds: 7200 }, ts: Date.now(), nonce: 'change-nonce-01' }),
      { qos: 1 },
    );
    await s.waitFor(() => s.on('reply').length === 4, 10_000, 'change reply');
    const changed = s.on('reply')[3]!.body;
    assert.is(changed['ok'], true, JSON.stringify(changed));
    assert.is(
      ((changed['result'] as Record<string, unknown>)['session'] as Record<string, unknown>)['allotment'],
      '7200',
    );
  },
);

test.run();
