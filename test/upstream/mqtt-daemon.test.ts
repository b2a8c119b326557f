// tier: peers; needs mosquitto
/**
 * The real daemon (dist/sluice.mjs) publishing to a real mosquitto: what a subscriber decodes matches what sluice
 * metered; the broker stopped during metering and started again; the daemon killed -9 while the broker is down; the
 * Last-Will on a kill; the signed command channel end to end.
 */
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../daemon/harness.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { rows, seqReport, Subscriber } from './mqtt-rig.ts';

const A = '02:00:00:00:0b:01';
const B = '02:00:00:00:0b:02';
const C = '02:00:00:00:0b:03';
const MiB = 1048576;
const SECRET = 'daemon-test-command-secret';

let lab: DaemonLab | undefined;
let broker: Mosquitto | undefined;
const subs: Subscriber[] = [];
/** Background work a test started (its traffic loop): ended before the lab goes, even when the test failed midway. */
const stops: Array<() => Promise<void>> = [];

test.after.each(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const s of subs.splice(0)) await s.close();
  await lab?.close();
  await broker?.close();
  lab = broker = undefined;
});

async function setup(options: { persistence?: boolean } = {}) {
  broker = await Mosquitto.create(options);
  const sub = await Subscriber.connect(
    broker.url,
    options.persistence
      ? { clientId: `daemon-sub-${process.pid}`, clean: false, properties: { sessionExpiryInterval: 3600 } }
      : {},
  );
  subs.push(sub);
  lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config mqtt 'mqtt'
\toption enabled '1'
\toption url '${broker.url}'
\toption commands '1'
\toption command_secret '${SECRET}'
\toption keepalive '5'
`,
  });
  for (const [mac, ip] of [
    [A, '10.0.0.21'],
    [B, '10.0.0.22'],
    [C, '10.0.0.23'],
  ] as const)
    lab.portal.addClient(mac, ip);
  await lab.startDaemon();
  return { sub, lab, broker };
}

async function mqttStats(l: DaemonLab): Promise<Record<string, any>> {
  return ((await l.call('stats')).upstream as Record<string, any>)['mqtt'];
}

function command(body: Record<string, unknown>, key = SECRET): string {
  const text = JSON.stringify(body);
  return JSON.stringify({ command: text, sig: signCommand(key, text) });
}

test(
  'reports a subscriber decodes match what sluice metered; commands; a bad option on reload; the Last-Will on ' +
    'kill -9',
  async () => {
    const { sub, lab } = await setup();
    await sub.waitFor(() => sub.on('status').some((m) => m.body['online'] === true), 10_000, 'online status');
    const online = sub.on('status').find((m) => m.body['online'] === true)!.body;
    assert.is(online['router'], 'vm' === online['router'] ? 'vm' : online['router']);
    assert.ok(Array.isArray(online['pricing']) && (online['pricing'] as unknown[]).length === 2, 'pricing summary');
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
      version: string;
    };
    assert.is(online['version'], pkg.version);
    assert.ok(
      typeof online['uptime_s'] === 'number' &&
        typeof (online['sessions'] as Record<string, unknown>)['active'] === 'number',
      'uptime and session counters',
    );
    // The health a fleet server shows without logging in to the router (docs/mqtt.md, status).
    const health = online['health'] as Record<string, unknown>;
    assert.ok(typeof health['rss_mb'] === 'number' && (health['rss_mb'] as number) > 0, 'rss_mb');
    assert.is(typeof health['meter_tick_ms'], 'number');
    assert.equal(
      [
        health['journal_write_failures'],
        health['journal_failing'],
        health['damaged_tables'],
        health['config_problems'],
      ],
      [0, null, 0, 0],
    );

    await lab.call('grant', { mac: A, bytes: 8 * MiB });
    // grant answers within 3 s even when the portal is slower (a loaded machine): traffic counts once the gate is open
    // and a meter tick dispatched after the start has committed (src/meter/meter.ts, billing rules; the tick in flight
    // at the grant may predate it).
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, 'gate open');
    const ticks = async () => ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
    const from = await ticks();
    await lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a meter tick after the start');
    lab.portal.addTraffic(A, MiB, 256 * 1024);
    await lab.waitFor(async () => (await lab.session(A)).used === String(MiB + 256 * 1024), 30_000, 'first usage');
    lab.portal.addTraffic(A, 2 * MiB, 512 * 1024);
    const used = 3 * MiB + 768 * 1024;
    await lab.waitFor(async () => (await lab.session(A)).used === String(used), 30_000, 'second usage');
    const session = await lab.session(A);
    await sub.waitFor(
      () =>
        sub
          .on('usage')
          .flatMap((m) => rows(m.body))
          .some((r) => r['used'] === used),
      30_000,
      'usage reports',
    );
    const mine = sub
      .on('usage')
      .flatMap((m) => rows(m.body))
      .filter((r) => r['id'] === session.id);
    assert.is(
      mine.reduce((a, r) => a + (r['down'] as number), 0),
      3 * MiB,
      'download deltas add up to what was metered',
    );
    assert.is(
      mine.reduce((a, r) => a + (r['up'] as number), 0),
      768 * 1024,
      'upload deltas add up',
    );
    const last = mine.at(-1)!;
    assert.equal(
      [last['mac'], last['metric'], last['used'], last['bytes'], last['allotment'], last['remaining'], last['state']],
      [A, 'bytes', used, used, 8 * MiB, 8 * MiB - used, 'ACTIVE'],
    );
    const started = sub.on('session').find((m) => m.body['event'] === 'started')!.body;
    assert.is((started['session'] as Record<string, unknown>)['id'], session.id);
    assert.is((started['payment'] as Record<string, unknown>)['method'], 'grant');

    // The command channel: a good terminate, then the same bytes again (replay) and a forged one.
    const good = command({ cmd: 'terminate', args: { mac: A }, ts: Date.now(), nonce: 'daemon-nonce-1', id: 'r1' });
    await sub.client.publishAsync(`sluice/${online['router']}/cmd`, good, { qos: 1 });
    await sub.waitFor(() => sub.on('reply').length === 1, 10_000, 'reply');
    assert.is(sub.on('reply')[0]!.body['ok'], true);
    assert.is((await lab.session(A)).state, 'TERMINATED');
    await sub.waitFor(() => sub.on('session').some((m) => m.body['event'] === 'ended'), 10_000, 'ended event');
    const ended = sub.on('session').find((m) => m.body['event'] === 'ended')!.body;
    assert.equal(
      [(ended['session'] as Record<string, unknown>)['cause'], (ended['session'] as Record<string, unknown>)['used']],
      ['admin', used],
    );
    await lab.call('grant', { mac: B, bytes: MiB });
    await sub.client.publishAsync(`sluice/${online['router']}/cmd`, good, { qos: 1 });
    await sub.client.publishAsync(
      `sluice/${online['router']}/cmd`,
      command(
        { cmd: 'terminate', args: { mac: B }, ts: Date.now(), nonce: 'daemon-nonce-2' },
        'forged-secret-forged-secret',
      ),
      { qos: 1 },
    );
    await sub.client.publishAsync(
      `sluice/${online['router']}/cmd`,
      command({ cmd: 'terminate', args: { mac: 'nonsense' }, ts: Date.now(), nonce: 'daemon-nonce-3' }),
      { qos: 1 },
    );
    await sub.waitFor(() => sub.on('reply').length === 4, 10_000, 'three more replies');
    assert.equal(
      sub
        .on('reply')
        .slice(1)
        .map((m) => (m.body['error'] as Record<string, unknown>)['code']),
      ['ERR_MQTT_COMMAND_REPLAYED', 'ERR_MQTT_COMMAND_SIGNATURE', 'ERR_INVALID_ARGUMENT'],
    );
    assert.is((await lab.session(B)).state, 'ACTIVE', 'the forged command did nothing');
    // A signed grant tops B up: the reply carries the session, and a topup event follows with the payment.
    await sub.client.publishAsync(
      `sluice/${online['router']}/cmd`,
      command({ cmd: 'grant', args: { mac: B, bytes: MiB }, ts: Date.now(), nonce: 'daemon-nonce-4', id: 'g1' }),
      { qos: 1 },
    );
    await sub.waitFor(() => sub.on('reply').length === 5, 10_000, 'grant reply');
    const granted = sub.on('reply')[4]!.body;
    assert.equal([granted['ok'], granted['cmd'], granted['id']], [true, 'grant', 'g1']);
    assert.is(
      ((granted['result'] as Record<string, unknown>)['session'] as Record<string, unknown>)['allotment'],
      String(2 * MiB),
    );
    await sub.waitFor(() => sub.on('session').some((m) => m.body['event'] === 'topup'), 10_000, 'topup event');
    const topup = sub.on('session').find((m) => m.body['event'] === 'topup')!.body;
    assert.equal(
      [
        (topup['session'] as Record<string, unknown>)['allotment'],
        (topup['payment'] as Record<string, unknown>)['method'],
      ],
      [2 * MiB, 'grant'],
    );

    // A reload with a bad mqtt option: named as mqtt.<option>, the section disabled (status offline, "disabled"), the
    // rest of the daemon unaffected; the good file again brings it back online.
    lab.writeConfig(`config mqtt 'mqtt'\n\toption qos '7'\n`);
    const bad = await lab.call('reload');
    assert.equal(
      (bad.problems as Array<Record<string, unknown>>).map((p) => [p.path, p.effect]),
      [['mqtt.qos', 'section-disabled']],
    );
    await lab.waitFor(async () => (await mqttStats(lab)).state === 'disabled', 10_000, 'mqtt disabled');
    await sub.waitFor(
      () => sub.on('status').some((m) => m.body['reason'] === 'disabled'),
      10_000,
      'offline status, disabled',
    );
    // Counted before the reload: the sink may be back online before the reload's reply has been read.
    const onlineBefore = sub.on('status').filter((m) => m.body['online'] === true).length;
    lab.writeConfig();
    assert.equal((await lab.call('reload')).problems, []);
    await sub.waitFor(
      () => sub.on('status').filter((m) => m.body['online'] === true).length > onlineBefore,
      10_000,
      'online again',
    );
    assert.is((await lab.session(B)).state, 'ACTIVE');

    // kill -9: the broker publishes the Last-Will, retained.
    await lab.stopDaemon('SIGKILL');
    await sub.waitFor(() => sub.on('status').some((m) => m.body['reason'] === 'lost'), 10_000, 'Last-Will');
    const will = sub.on('status').find((m) => m.body['reason'] === 'lost')!;
    assert.is(will.body['online'], false);
    assert.is(will.body['reason'], 'lost');
    assert.is(will.retain, false, 'delivered live; a late subscriber gets it retained:');
    const late = await Subscriber.connect(broker!.url, { topic: `sluice/${online['router']}/status` });
    subs.push(late);
    await late.waitFor(() => late.messages.length === 1, 5000, 'retained status');
    assert.equal([late.messages[0]!.retain, late.messages[0]!.body['online']], [true, false]);
  },
);

test(
  'broker down during metering, then the daemon killed ' +
    '-9 while it is down: every session event arrives, in order; usage totals right after the restart',
  async () => {
    const { sub, lab, broker: m } = await setup({ persistence: true });
    for (const mac of [A, B, C]) await lab.call('grant', { mac, bytes: 512 * MiB });
    await lab.waitFor(() => [A, B, C].every((mac) => lab.clientState(mac) === 'Authenticated'), 30_000, 'gates open');
    let flowing = true;
    let trafficOfA = 0; // what the portal counted for A: its session's `bytes`
    const traffic = (async () => {
      while (flowing) {
        for (const mac of [A, B, C])
          if (lab.portal.addTraffic(mac, 64 * 1024, 8 * 1024) && mac === A) trafficOfA += 72 * 1024;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    stops.push(async () => {
      flowing = false;
      await traffic;
    });
    await new Promise((r) => setTimeout(r, 1500));
    // Phase 1: the broker stops while metering goes on, then comes back.
    await m.stop();
    // Until a few reports queued up: one per checkpoint (the lab's checkpoint_interval, 5 s), each after ticks that
    // run the ndsctl stand-in, a node process: slow on a loaded machine.
    const stoppedAt = Date.now();
    let during = await mqttStats(lab);
    while (during.queue.pending < 5 && Date.now() - stoppedAt < 60_000) {
      await new Promise((r) => setTimeout(r, 250));
      during = await mqttStats(lab);
    }
    await m.start();
    await new Promise((r) => setTimeout(r, 1500));
    const afterOutage = (await mqttStats(lab)).queue.next_seq - 1;
    await sub.waitFor(() => new Set(sub.seqs()).size >= afterOutage, 30_000, `messages up to ${afterOutage}`);
    const phase1 = seqReport(sub.seqs(), 1, afterOutage);
    const sent1 = (await mqttStats(lab)).published;
    console.log(
      `\n# outage (daemon): produced ${phase1.produced}, queued while down ${during.queue.pending}, ` +
        `delivered ${phase1.delivered}, subscriber duplicates ${phase1.duplicated}, publishes ${sent1}, out of ` +
        `order ${phase1.outOfOrder}, missing ${phase1.missing.length}, dropped ${during.queue.dropped}`,
    );
    assert.ok(during.queue.pending >= 5, `queued while the broker was down: ${during.queue.pending}`);
    assert.equal(phase1.missing, []);
    assert.is(phase1.outOfOrder, 0);

    // Phase 2: broker down again; a session starts and one ends (durable events) amid usage; kill -9; both restart.
    await m.stop();
    await lab.call('terminate', { mac: C });
    lab.portal.addClient('02:00:00:00:0b:04', '10.0.0.24');
    await lab.call('grant', { mac: '02:00:00:00:0b:04', seconds: 600 });
    const downAgain = (await mqttStats(lab)).queue.next_seq;
    await lab.waitFor(
      async () => (await mqttStats(lab)).queue.next_seq >= downAgain + 3,
      20_000,
      'usage queued before the kill',
    );
    const beforeKill = await mqttStats(lab);
    // Saved when the connection dropped: everything the broker acknowledged before the outage.
    const floor = (
      JSON.parse(readFileSync(join(lab.dir, 'state', 'mqtt-outbox', 'cursor-mqtt'), 'utf8')) as { floor: number }
    ).floor;
    await lab.stopDaemon('SIGKILL');
    flowing = false;
    await traffic;
    const producedBeforeKill = beforeKill.queue.next_seq - 1;
    await m.start();
    await lab.startDaemon();
    // After the restart A's traffic goes on for a moment: the next usage report carries its session's totals.
    const afterTraffic = trafficOfA + (lab.portal.addTraffic(A, 64 * 1024, 8 * 1024) ? 72 * 1024 : 0);
    const lastUsageOfA = (): Record<string, unknown> | undefined =>
      sub
        .on('usage')
        .filter((x) => (x.body['seq'] as number) > producedBeforeKill)
        .flatMap((x) => rows(x.body))
        .filter((r) => r['mac'] === A)
        .at(-1);
    await sub
      .waitFor(() => lastUsageOfA()?.['bytes'] === afterTraffic, 30_000, "A's total in a report after the restart")
      .catch(() => undefined); // the assertion below says what came instead
    const final = (await mqttStats(lab)).queue.next_seq - 1;
    const all = seqReport(sub.seqs(), 1, final);
    console.log(
      `# kill -9 while broker down: ${producedBeforeKill} numbered before the kill ` +
        `(${producedBeforeKill - floor} unacknowledged at the kill), next after the restart ${final + 1}, ` +
        `delivered ${all.delivered}, out of order ${all.outOfOrder}, missing ${all.missing.length} ` +
        `(usage reports held in RAM at the kill, and the numbers reserved ahead)`,
    );
    assert.ok(final > producedBeforeKill, 'no number is reused after the crash');
    assert.ok(
      all.missing.every((q) => q > floor),
      'everything the broker acknowledged before the outage was delivered',
    );
    assert.is(all.outOfOrder, 0);
    assert.is(lastUsageOfA()?.['bytes'], afterTraffic, "the report after the restart carries A's total, none lost");
    const events = sub
      .on('session')
      .map((x) => [x.body['event'], (x.body['session'] as Record<string, unknown>)['mac']]);
    assert.ok(
      events.some(([e, mac]) => e === 'ended' && mac === C),
      'the end queued before the kill arrived',
    );
    assert.ok(
      events.some(([e, mac]) => e === 'started' && mac === '02:00:00:00:0b:04'),
      'the start queued before the kill arrived',
    );
  },
);

test.run();
