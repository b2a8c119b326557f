// tier: peers; needs mosquitto freeradius radclient
/**
 * A session's rate change is an event of its own, on MQTT's session topic, on the hook and as the
 * ubus `sluice.session` event: `rates`, with the session (its id, mac and the new `rate_down`/`rate_up`), the rates
 * before (`previous`) and who asked (`by`). The real daemon (dist/sluice.mjs) with a real mosquitto (a subscriber
 * decodes what it publishes), a real HTTP hook receiver, and the three ways a rate changes: ubus `change`, MQTT's
 * signed `change` command, and a RADIUS CoA-Request from FreeRADIUS's radclient. tc and nft are /bin/true here (what
 * the kernel holds is daemon-coa-rates.test.ts's part, as root).
 */
import * as assert from 'uvu/assert';
import { radclient } from '../peers/freeradius.ts';
import { HookReceiver } from '../peers/hook-receiver.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { mac, radiusDaemonSuite, type RadiusLab } from './radius/daemon-lab.ts';
import { Subscriber } from './mqtt-rig.ts';

const SECRET = 'rates-events-command-secret';
const broker = await Mosquitto.create();
const hook = await HookReceiver.listen();

const t = radiusDaemonSuite(
  'rate changes as events (MQTT, hook, ubus)',
  `
config sluice 'main'
\toption tc '/bin/true'
\toption nft '/bin/true'

config pricing 'tier'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
\toption min_steps '1'
\toption max_steps '1440'
\toption rate_down '2mbit'
\toption rate_up '1mbit'

config mqtt 'mqtt'
\toption enabled '1'
\toption url '${broker.url}'
\toption commands '1'
\toption command_secret '${SECRET}'

config hook 'hook'
\toption enabled '1'
\toption url '${hook.url}'
\toption secret 'rates-events-hook-secret-0123456789'
\toption backoff_max '1'
`,
);
t.after(async () => {
  await broker.close();
  await hook.close();
});

type Body = Record<string, any>;
const ratesOf = (b: Body) => ({
  id: b.session.id,
  mac: b.session.mac,
  down: b.session.rate_down,
  up: b.session.rate_up,
  previous: [b.previous.rate_down, b.previous.rate_up],
  by: b.by,
});

t(
  'ubus change, the MQTT change command and a CoA each publish one `rates` event naming who asked, in MQTT, ' +
    'the hook and ubus',
  async (c: RadiusLab) => {
    const sub = await Subscriber.connect(broker.url);
    const ubusEvents: Body[] = [];
    const listener = await c.lab.client.listen('sluice.session', (_type, data) => {
      ubusEvents.push(data as Body);
    });
    try {
      const m = mac(31);
      const g = await c.lab.call('grant', { mac: m, seconds: 600, plan: 'tier' });
      const id = (g.session as Body).id as string;
      await c.lab.waitFor(() => c.lab.clientState(m) === 'Authenticated', 30_000, `gate of ${m}`);
      const mqttRates = () =>
        sub
          .on('session')
          .map((x) => x.body as Body)
          .filter((b) => b.event === 'rates');
      const hookRates = () => hook.posts.map((p) => p.body).filter((b) => b.event === 'rates');

      // 1. An admin's ubus call (LuCI, the CLI).
      await c.lab.call('change', { mac: m, rate_down: '8mbit' });
      // 2. MQTT's signed command channel.
      await sub.waitFor(() => sub.on('status').some((x) => x.body['online'] === true), 10_000, 'online status');
      const router = sub.on('status').find((x) => x.body['online'] === true)!.body['router'] as string;
      const text = JSON.stringify({
        cmd: 'change',
        args: { id, rate_up: '512kbit' },
        ts: Date.now(),
        nonce: 'rates-events-1',
        id: 'c1',
      });
      await sub.client.publishAsync(
        `sluice/${router}/cmd`,
        JSON.stringify({ command: text, sig: signCommand(SECRET, text) }),
        { qos: 1 },
      );
      await sub.waitFor(() => sub.on('reply').length === 1, 10_000, "the command's reply");
      assert.is(sub.on('reply')[0]!.body['ok'], true, JSON.stringify(sub.on('reply')[0]!.body));
      // 3. A RADIUS server's CoA-Request.
      const r = await radclient(
        `127.0.0.1:${c.coaPort}`,
        'coa',
        c.radius.secret,
        `Acct-Session-Id="${id}", WISPr-Bandwidth-Max-Down=4000000`,
        { timeoutS: 5 },
      );
      assert.match(r.output, /Received CoA-ACK/, r.output);

      const expected = [
        { id, mac: m, down: 8_000_000, up: 1_000_000, previous: [2_000_000, 1_000_000], by: 'ubus' },
        { id, mac: m, down: 8_000_000, up: 512_000, previous: [8_000_000, 1_000_000], by: 'mqtt' },
        { id, mac: m, down: 4_000_000, up: 512_000, previous: [8_000_000, 512_000], by: 'coa' },
      ];
      await sub.waitFor(() => mqttRates().length >= 3, 10_000, 'three MQTT rates events');
      assert.equal(mqttRates().map(ratesOf), expected, 'MQTT: one event per change, in order');
      await c.lab.waitFor(() => hookRates().length >= 3, 10_000, 'three hook posts');
      assert.equal(hookRates().map(ratesOf), expected, 'hook: the same');
      await c.lab.waitFor(() => ubusEvents.filter((e) => e.event === 'rates').length >= 3, 10_000, 'three ubus events');
      assert.equal(
        ubusEvents
          .filter((e) => e.event === 'rates')
          .map((e) => ({
            id: e.session.id,
            mac: e.session.mac,
            down: e.session.rate_down,
            up: e.session.rate_up,
            previous: [e.previous.rate_down, e.previous.rate_up],
            by: e.by,
          })),
        expected,
        'ubus: the same',
      );
      // Each on the router's one series of session messages (a consumer deduplicates by router + seq).
      const seqs = mqttRates().map((b) => b.seq as number);
      assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `seq ${seqs.join(',')}`);
      assert.ok(mqttRates().every((b) => b.type === 'session' && b.router === router));
      // Not folded into anything else: no other session event followed the changes (the grant's `started` only).
      assert.equal(
        sub.on('session').map((x) => x.body['event']),
        ['started', 'rates', 'rates', 'rates'],
      );
      assert.equal(
        hook.posts.map((p) => p.body.event),
        ['started', 'rates', 'rates', 'rates'],
      );
    } finally {
      await listener.remove();
      await sub.close();
    }
  },
);

t('a change refused before the journal (a bad rate, a NAKed CoA) announces nothing', async (c: RadiusLab) => {
  const sub = await Subscriber.connect(broker.url);
  try {
    const m = mac(32);
    const g = await c.lab.call('grant', { mac: m, seconds: 600, plan: 'tier' });
    const id = (g.session as Body).id as string;
    await c.lab.waitFor(() => c.lab.clientState(m) === 'Authenticated', 30_000, `gate of ${m}`);
    const before = hook.posts.length;
    const bad = await c.lab.callStatus('change', { mac: m, rate_down: 'fast' });
    assert.is((bad.data?.error as Body | undefined)?.code, 'ERR_INVALID_ARGUMENT');
    const r = await radclient(
      `127.0.0.1:${c.coaPort}`,
      'coa',
      c.radius.secret,
      `Acct-Session-Id="${id}", WISPr-Bandwidth-Max-Down=100`,
      { timeoutS: 5 },
    );
    assert.match(r.output, /Received CoA-NAK/, r.output);
    // A change that goes through afterwards is the first `rates` event either side sees (no lost ordering).
    await c.lab.call('change', { mac: m, rate_up: 'none' });
    await sub.waitFor(() => sub.on('session').some((x) => x.body['event'] === 'rates'), 10_000, 'the rates event');
    await c.lab.waitFor(() => hook.posts.slice(before).some((p) => p.body.event === 'rates'), 10_000, 'the hook post');
    const mine = (bodies: Body[]) => bodies.filter((b) => b.event === 'rates' && b.session.id === id).map(ratesOf);
    const one = [{ id, mac: m, down: 2_000_000, up: null, previous: [2_000_000, 1_000_000], by: 'ubus' }];
    assert.equal(mine(sub.on('session').map((x) => x.body as Body)), one);
    assert.equal(mine(hook.posts.slice(before).map((p) => p.body)), one);
  } finally {
    await sub.close();
  }
});

t.run();
