// tier: peers; needs mosquitto openssl
/** The MQTT sink against a real mosquitto: payloads, splitting, outages, reload, TLS, passwords, commands. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { Mosquitto, type MosquittoOptions } from '../peers/mosquitto.ts';
import { readFileSync } from 'node:fs';
import { MqttSink, type MqttSinkDeps } from '../../src/upstream/mqtt/sink.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { USAGE_FIELDS } from '../../src/upstream/mqtt/messages.ts';
import type { Config } from '../../src/config/types.ts';
import type { MqttConfig } from '../../src/config/mqtt.ts';
import { mqttConfig } from './mqtt-config.ts';
import { fakeSession, recordingLog, rows, seqReport, Subscriber, tempDir, usageEvent } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const cleanups: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sinkFor(cfg: MqttConfig, extra: Partial<MqttSinkDeps> = {}, stateDir = tempDir()) {
  const lines: string[] = [];
  const sink = new MqttSink(cfg, {
    log: recordingLog(lines),
    routerId: 'r1',
    stateDir,
    backoff: { minMs: 100, maxMs: 400 },
    ...extra,
  });
  cleanups.push(async () => {
    await sink.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return { sink, lines, stateDir };
}

async function broker(options: MosquittoOptions = {}) {
  const m = await Mosquitto.create(options);
  cleanups.push(() => m.close());
  return m;
}

async function subscriber(url: string, options: Parameters<typeof Subscriber.connect>[1] = {}) {
  const s = await Subscriber.connect(url, options);
  cleanups.push(() => s.close());
  return s;
}

const stat = (sink: MqttSink) => sink.stats() as Record<string, unknown> & { queue: Record<string, number> };

test(
  'usage rows, session events and the retained status ' + 'arrive decoded; big reports split under max_payload',
  async () => {
    const m = await broker();
    const sub = await subscriber(m.url);
    const { sink } = sinkFor(mqttConfig(m.url, { maxPayload: 4096 }), {
      status: () => ({
        version: '9.9.9',
        uptime_s: 5,
        sessions: { active: 300 },
        pricing: [{ id: 'data' }],
        health: {
          rss_mb: 50,
          meter_tick_ms: 1,
          journal_write_failures: 0,
          journal_failing: null,
          damaged_tables: 0,
          config_problems: 0,
        },
      }),
    });
    await sink.start();
    await sub.waitFor(() => sub.on('status').some((s) => s.body['online'] === true), 5000, 'online status');
    const sessions = Array.from({ length: 300 }, () => fakeSession());
    sessions[0]!.user = 'alice ü';
    sink.onEvent({ type: 'started', at: Date.now(), session: sessions[0]! });
    sink.onEvent(usageEvent(sessions, 1000));
    sink.onEvent({
      type: 'ended',
      at: Date.now(),
      session: { ...sessions[0]!, state: 'TERMINATED', endCause: 'admin', endedAt: Date.now() },
    });
    await sub.waitFor(() => sub.on('session').length === 2, 5000, 'two session events');
    const usage = sub.on('usage');
    const total = usage.reduce((a, u) => a + u.bytes, 0);
    assert.ok(
      usage.length >= Math.ceil(total / 4096) && usage.length > 1,
      `split into ${usage.length} messages (${total} bytes)`,
    );
    for (const u of usage) {
      assert.ok(u.bytes <= 4096, `${u.bytes} bytes`);
      assert.is(u.contentType, 'application/msgpack');
      assert.ok(u.expiry !== undefined && u.expiry > 3500 && u.expiry <= 3600, `expiry ${u.expiry}`);
      assert.equal(u.body['fields'], [...USAGE_FIELDS]);
      assert.is(u.body['router'], 'r1');
      assert.is(u.body['parts'], usage.length);
    }
    assert.equal(
      usage.map((u) => u.body['part']),
      usage.map((_, i) => i),
    );
    const all = usage.flatMap((u) => rows(u.body));
    assert.is(all.length, 300);
    assert.equal(all[0], {
      id: sessions[0]!.id,
      mac: sessions[0]!.mac,
      user: 'alice ü',
      metric: 'bytes',
      up: 250,
      down: 750,
      bytes: 1000,
      used: 1000,
      allotment: 10_000_000,
      remaining: 9_999_000,
      state: 'ACTIVE',
    });
    assert.equal(
      all.map((r) => r['id']),
      sessions.map((s) => s.id),
    );
    const seqs = sub.seqs();
    assert.equal(
      seqs,
      seqs.map((_, i) => i + 1),
      'one series, from 1, in order',
    );
    const [started, ended] = sub.on('session').map((s) => s.body);
    assert.is(started!['event'], 'started');
    assert.equal((started!['payment'] as Record<string, unknown>)['reference'], sessions[0]!.payments[0]!.reference);
    assert.is(ended!['event'], 'ended');
    assert.equal((ended!['session'] as Record<string, unknown>)['cause'], 'admin');
    const status = sub.on('status').find((s) => s.body['online'] === true)!;
    assert.equal([status.body['version'], status.body['router'], status.body['type']], ['9.9.9', 'r1', 'status']);
    await until(() => stat(sink).queue['pending'] === 0, 5000, 'queue drained');
    // A late subscriber sees the retained status.
    const late = await subscriber(m.url, { topic: 'sluice/r1/status' });
    await late.waitFor(() => late.messages.length === 1, 5000, 'retained status');
    assert.is(late.messages[0]!.retain, true);
    assert.is(late.messages[0]!.body['online'], true);
  },
);

test('json format and MQTT 3.1.1: same schema, no MQTT 5 properties', async () => {
  const m = await broker();
  const sub = await subscriber(m.url);
  const { sink } = sinkFor(mqttConfig(m.url, { format: 'json', protocol: '3.1.1', maxPayload: 2048 }));
  await sink.start();
  const sessions = Array.from({ length: 40 }, () => fakeSession());
  sink.onEvent(usageEvent(sessions, 4096));
  await sub.waitFor(() => rows0(sub).length === 40, 5000, '40 rows');
  for (const u of sub.on('usage')) {
    assert.ok(u.bytes <= 2048, `${u.bytes}`);
    assert.is(u.contentType, undefined);
  }
  assert.is(rows0(sub)[39]!['used'], 4096);
  assert.is(stat(sink)['protocol'], '3.1.1');
});
const rows0 = (sub: Subscriber) => sub.on('usage').flatMap((u) => rows(u.body));

test('broker stopped and restarted while reports flow: every message arrives once, in order', async () => {
  const m = await broker({ persistence: true });
  const sub = await subscriber(m.url, {
    clientId: 'outage-sub',
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
  });
  const { sink } = sinkFor(mqttConfig(m.url));
  await sink.start();
  await until(() => stat(sink)['state'] === 'ready', 5000, 'connected');
  const sessions = Array.from({ length: 20 }, () => fakeSession());
  let produced = 0;
  const timer = setInterval(() => {
    sink.onEvent(usageEvent(sessions, 100));
    if (produced % 10 === 0)
      sink.onEvent({ type: 'topup', at: Date.now(), session: sessions[0]!, payment: sessions[0]!.payments[0]! });
    produced++;
  }, 20);
  await new Promise((r) => setTimeout(r, 500));
  await m.stop();
  await new Promise((r) => setTimeout(r, 1500));
  const queued = stat(sink).queue['pending']!;
  await m.start();
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(timer);
  const last = stat(sink).queue['next_seq']! - 1;
  await sub.waitFor(() => new Set(sub.seqs()).size >= last, 15_000, `all ${last} messages`);
  const report = seqReport(sub.seqs(), 1, last);
  console.log(
    `\n# outage (sink): produced ${report.produced}, queued during outage ${queued}, ` +
      `delivered ${report.delivered}, duplicated ${report.duplicated}, out of order ${report.outOfOrder}, ` +
      `dropped ${stat(sink).queue['dropped']}`,
  );
  assert.ok(queued > 10, `messages queued while the broker was down (${queued})`);
  assert.equal(report.missing, []);
  assert.is(report.outOfOrder, 0);
  // At least once: a message the broker took just before it stopped, whose acknowledgement never came back, is sent
  // again (consumers drop it by seq). Never more than were in flight at the cut.
  assert.ok(report.duplicated <= 100, `${report.duplicated} duplicates`);
  assert.is(stat(sink).queue['dropped'], 0);
});

test(
  'publishes awaiting PUBACK never exceed mqtt.max_inflight, ' + 'also when a backlog drains after an outage',
  async () => {
    const m = await broker({ persistence: true });
    const sub = await subscriber(m.url, {
      clientId: 'inflight-sub',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    const { sink } = sinkFor(mqttConfig(m.url, { maxInflight: 4 }));
    await sink.start();
    await until(() => stat(sink)['state'] === 'ready', 5000, 'connected');
    await m.stop();
    const sessions = Array.from({ length: 5 }, () => fakeSession());
    for (let i = 0; i < 200; i++) sink.onEvent(usageEvent(sessions, 100));
    for (let i = 0; i < 20; i++)
      sink.onEvent({ type: 'topup', at: Date.now(), session: sessions[0]!, payment: sessions[0]!.payments[0]! });
    await m.start();
    // mqtt.js's own store of QoS 1 publishes not yet acknowledged, read while the backlog drains.
    const outgoing = () =>
      Object.keys((sink as unknown as { client?: { outgoing?: Record<string, unknown> } }).client?.outgoing ?? {})
        .length;
    let most = 0;
    const deadline = Date.now() + 20_000;
    while (new Set(sub.seqs()).size < 220) {
      if (Date.now() > deadline) throw new Error(`timed out: ${new Set(sub.seqs()).size} of 220 arrived`);
      most = Math.max(most, outgoing());
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(most >= 1 && most <= 4, `at most ${most} in flight`);
    assert.equal(seqReport(sub.seqs(), 1, 220).missing, []);
  },
);

test(
  'command replies count against mqtt.max_inflight: sent ' + 'while a backlog drains at the cap, never beyond it',
  async () => {
    const m = await broker({ persistence: true });
    const sub = await subscriber(m.url, {
      clientId: 'inflight-cmd-sub',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    const { sink } = sinkFor(
      mqttConfig(m.url, { maxInflight: 2, commands: true, commandSecret: 'a-long-shared-secret-1234' }),
    );
    await sink.start();
    await until(() => stat(sink)['state'] === 'ready', 5000, 'connected');
    await m.stop();
    const sessions = Array.from({ length: 5 }, () => fakeSession());
    for (let i = 0; i < 1500; i++) sink.onEvent(usageEvent(sessions, 100));
    await m.start();
    await until(() => stat(sink)['state'] === 'ready', 10_000, 'reconnected');
    // Publishes in flight (mqtt.js keeps the SUBSCRIBE to cmd, sent at each connect, in the same table until its
    // SUBACK: it is not a publish and not under max_inflight).
    const outgoing = () =>
      Object.values(
        (sink as unknown as { client?: { outgoing?: Record<string, { cmd?: string }> } }).client?.outgoing ?? {},
      ).filter((o) => o.cmd !== 'subscribe' && o.cmd !== 'unsubscribe').length;
    const subscribing = () =>
      Object.values(
        (sink as unknown as { client?: { outgoing?: Record<string, { cmd?: string }> } }).client?.outgoing ?? {},
      ).some((o) => o.cmd === 'subscribe');
    await until(() => !subscribing(), 10_000, 'the cmd subscription acknowledged');
    // Unsigned commands, each answered with a refusal, while the backlog is still draining two at a time.
    for (let i = 0; i < 30; i++) void sub.client.publishAsync('sluice/r1/cmd', `not a command ${i}`, { qos: 1 });
    let most = 0;
    const deadline = Date.now() + 30_000;
    while (sub.on('reply').length < 30 || new Set(sub.seqs()).size < 1500) {
      if (Date.now() > deadline)
        throw new Error(`timed out: ${sub.on('reply').length} replies, ${new Set(sub.seqs()).size} reports`);
      most = Math.max(most, outgoing());
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(most >= 1 && most <= 2, `at most ${most} in flight`);
    assert.is(sub.on('reply').length, 30, 'every command answered');
    assert.is(stat(sink)['replies_dropped'], 0);
    assert.equal(seqReport(sub.seqs(), 1, 1500).missing, []);
  },
);

test(
  'a full queue during an outage drops the oldest usage reports, counted in stats and in the status; every ' +
    'session event arrives',
  async () => {
    // A persistent session at a persistent broker: the subscriber misses nothing the sink sends while it reconnects.
    const m = await broker({ persistence: true });
    const sub = await subscriber(m.url, {
      clientId: 'full-queue-sub',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    const { sink } = sinkFor(mqttConfig(m.url, { queueMax: 16384 }));
    await sink.start();
    await until(() => stat(sink)['state'] === 'ready', 5000, 'connected');
    await m.stop();
    await until(() => stat(sink)['state'] !== 'ready', 5000, 'connection lost');
    const sessions = Array.from({ length: 5 }, () => fakeSession());
    let events = 0;
    for (let i = 0; i < 200; i++) {
      sink.onEvent(usageEvent(sessions, 100));
      if (i % 20 === 0) {
        sink.onEvent({ type: 'topup', at: Date.now(), session: sessions[0]!, payment: sessions[0]!.payments[0]! });
        events++;
      }
    }
    const dropped = stat(sink).queue['dropped']!;
    const last = stat(sink).queue['next_seq']! - 1;
    assert.ok(dropped > 0, 'the 16 KiB queue overflowed');
    await m.start();
    await until(
      () => stat(sink)['state'] === 'ready' && stat(sink).queue['pending'] === 0,
      15_000,
      'backlog delivered',
    );
    await sub.waitFor(() => new Set(sub.seqs()).size >= last - dropped, 10_000, `${last - dropped} messages`);
    const got = new Set(sub.seqs());
    const missing = Array.from({ length: last }, (_, i) => i + 1).filter((q) => !got.has(q));
    console.log(
      `\n# full queue (sink): produced ${last}, dropped ${dropped}, delivered ${got.size}, missing ${missing.length}`,
    );
    assert.is(missing.length, dropped, 'each message missing at the consumer is one counted as dropped');
    assert.is(sub.on('session').length, events, 'no session event dropped');
    const usage = sub
      .on('usage')
      .map((x) => x.body['seq'] as number)
      .sort((a, b) => a - b);
    assert.ok(Math.max(...missing) < usage.at(-1)!, 'the newest reports survive');
    assert.ok(
      missing.every((q) => q < usage.slice(-10)[0]!),
      'the oldest go first',
    );
    await sub.waitFor(
      () =>
        sub
          .on('status')
          .some((x) => x.body['online'] === true && (x.body['queue'] as Record<string, number>)['dropped'] === dropped),
      10_000,
      'the status after the reconnect says how many were dropped',
    );
  },
);

test(
  'an end is reported once: sessions recovery ended get theirs at start, and none twice across a crash or a ' +
    'restart',
  async () => {
    const m = await broker();
    const sub = await subscriber(m.url);
    const stateDir = tempDir();
    const cfg = mqttConfig(m.url);
    const a = fakeSession({ state: 'EXPIRED', endCause: 'time-limit', endedAt: Date.now() });
    const b = fakeSession({ state: 'TERMINATED', endCause: 'admin', endedAt: Date.now() });
    // Distinct messages (by seq): a message sent again after a crash has its old seq, and consumers drop it.
    const endsOf = (id: string) =>
      new Set(
        sub
          .on('session')
          .filter((x) => x.body['event'] === 'ended' && (x.body['session'] as Record<string, unknown>)['id'] === id)
          .map((x) => x.body['seq']),
      ).size;
    const first = sinkFor(cfg, { recovered: () => ({ ended: [] }) }, stateDir).sink;
    await first.start();
    await until(() => stat(first)['state'] === 'ready', 5000, 'connected');
    first.onEvent({ type: 'ended', at: Date.now(), session: b });
    await sub.waitFor(() => endsOf(b.id) === 1, 5000, 'b ended');
    // a crash: b's end had not reached the journal, so the restarted daemon's recovery ends b again, and a
    first.destroy();
    const restart = async () => {
      const { sink } = sinkFor(cfg, { recovered: () => ({ ended: [a, b] }) }, stateDir);
      await sink.start();
      await until(
        () => stat(sink)['state'] === 'ready' && stat(sink).queue['pending'] === 0,
        5000,
        'connected, queue empty',
      );
      return sink;
    };
    const second = await restart();
    await sub.waitFor(() => endsOf(a.id) === 1, 5000, 'a ended (recovery)');
    await second.close();
    await restart();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal([endsOf(a.id), endsOf(b.id)], [1, 1]);
  },
);

test('a reload that changes the broker reconnects there and loses nothing queued', async () => {
  const a = await broker();
  const b = await broker();
  const subB = await subscriber(b.url);
  const stateDir = tempDir();
  const cfg = mqttConfig(a.url);
  const { sink } = sinkFor(cfg, {}, stateDir);
  await sink.start();
  await until(() => stat(sink)['state'] === 'ready', 5000, 'connected to a');
  await a.stop();
  const sessions = Array.from({ length: 5 }, () => fakeSession());
  for (let i = 0; i < 30; i++) sink.onEvent(usageEvent(sessions, 10));
  sink.onEvent({ type: 'ended', at: Date.now(), session: sessions[0]! });
  await sink.reload({ main: { routerId: 'r1' }, mqtt: { ...cfg, url: b.url } } as unknown as Config);
  await subB.waitFor(() => subB.seqs().length >= 31, 10_000, '31 messages at b');
  assert.equal(
    subB.seqs(),
    Array.from({ length: 31 }, (_, i) => i + 1),
  );
  assert.is(stat(sink)['url'], b.url);
});

test(
  'password: refused credentials are reported as mqtt.username/mqtt.password and nothing is lost until they are ' +
    'right',
  async () => {
    const m = await broker({ password: { user: 'sluice', pass: 's3cret' } });
    const sub = await subscriber(m.url, { username: 'sluice', password: 's3cret' });
    const cfg = mqttConfig(m.url, { username: 'sluice', password: 'wrong' });
    const { sink, lines } = sinkFor(cfg);
    await sink.start();
    sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession() });
    await until(() => String(stat(sink)['last_error']).startsWith('mqtt.username/mqtt.password'), 5000, 'auth error');
    assert.ok(lines.some((l) => l.includes('mqtt.username/mqtt.password')));
    assert.not.ok(
      lines.some((l) => l.includes('wrong')),
      'the password is never logged',
    );
    await sink.reload({ main: { routerId: 'r1' }, mqtt: { ...cfg, password: 's3cret' } } as unknown as Config);
    await sub.waitFor(() => sub.on('session').length === 1, 5000, 'the queued event');
    assert.is(sub.on('session')[0]!.body['seq'], 1);
  },
);

test('TLS: the broker certificate is checked against mqtt.ca_file', async () => {
  const m = await broker({ tls: true });
  const sub = await subscriber(m.url, { ca: [readFileSync(m.caFile)] });
  const { sink } = sinkFor(mqttConfig(m.url, { caFile: m.caFile }));
  await sink.start();
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession() });
  await sub.waitFor(() => sub.on('session').length === 1, 5000, 'event over TLS');
  const other = sinkFor(mqttConfig(m.url, { caFile: m.otherCa() }));
  await other.sink.start();
  await until(() => String(stat(other.sink)['last_error']).startsWith('mqtt.ca_file'), 5000, 'certificate refused');
  assert.is(stat(other.sink)['state'], 'waiting');
});

test(
  'TLS with a client certificate: refused without one (reported as mqtt.cert_file/mqtt.key_file), the queued ' +
    'event goes out after a reload adds it',
  async () => {
    const m = await broker({ tls: true, clientCert: true });
    const sub = await subscriber(m.url, {
      ca: [readFileSync(m.caFile)],
      cert: readFileSync(m.clientCert.certFile),
      key: readFileSync(m.clientCert.keyFile),
    });
    const cfg = mqttConfig(m.url, { caFile: m.caFile });
    const { sink, lines } = sinkFor(cfg);
    await sink.start();
    sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession() });
    await until(
      () => String(stat(sink)['last_error']).startsWith('mqtt.cert_file/mqtt.key_file'),
      5000,
      'client certificate required',
    );
    assert.is(stat(sink)['state'], 'waiting');
    assert.ok(lines.some((l) => l.includes('mqtt.cert_file/mqtt.key_file')));
    await sink.reload({
      main: { routerId: 'r1' },
      mqtt: { ...cfg, certFile: m.clientCert.certFile, keyFile: m.clientCert.keyFile },
    } as unknown as Config);
    await sub.waitFor(() => sub.on('session').length === 1, 10_000, 'the queued event over mutual TLS');
    assert.is(sub.on('session')[0]!.body['seq'], 1);
    assert.is(stat(sink)['last_error'], null);
  },
);

test(
  'commands: a signed terminate runs and is answered; a bad signature, a replay (also after a restart) and a ' +
    'stale one are refused',
  async () => {
    const m = await broker();
    const sub = await subscriber(m.url);
    const secret = 'a-long-shared-secret-1234';
    const ran: Array<[string, Record<string, unknown>]> = [];
    const stateDir = tempDir();
    const cfg = mqttConfig(m.url, { commands: true, commandSecret: secret, format: 'json' });
    const deps = {
      command: async (name: string, args: Record<string, unknown>) => {
        ran.push([name, args]);
        return { session: { state: 'TERMINATED', used: 5n } };
      },
    };
    const first = new MqttSink(cfg, {
      log: recordingLog([]),
      routerId: 'r1',
      stateDir,
      backoff: { minMs: 100, maxMs: 400 },
      ...deps,
    });
    await first.start();
    await until(() => stat(first)['state'] === 'ready', 5000, 'connected');
    await new Promise((r) => setTimeout(r, 200)); // the cmd subscription
    const command = (body: Record<string, unknown>, key = secret): string => {
      const text = JSON.stringify(body);
      return JSON.stringify({ command: text, sig: signCommand(key, text) });
    };
    const good = command({
      cmd: 'terminate',
      args: { mac: '02:00:00:00:00:01' },
      ts: Date.now(),
      nonce: 'nonce-0001',
      id: 'req-1',
    });
    await sub.client.publishAsync('sluice/r1/cmd', good, { qos: 1 });
    await sub.waitFor(() => sub.on('reply').length === 1, 5000, 'reply');
    assert.equal(ran, [['terminate', { mac: '02:00:00:00:00:01' }]]);
    assert.equal(sub.on('reply')[0]!.body['ok'], true);
    assert.equal(sub.on('reply')[0]!.body['id'], 'req-1');
    assert.equal(sub.on('reply')[0]!.body['result'], { session: { state: 'TERMINATED', used: '5' } });

    await sub.client.publishAsync(
      'sluice/r1/cmd',
      command(
        { cmd: 'terminate', args: { mac: '02:00:00:00:00:02' }, ts: Date.now(), nonce: 'nonce-0002', id: 'req-2' },
        'not-the-secret-at-all',
      ),
      { qos: 1 },
    );
    await sub.client.publishAsync('sluice/r1/cmd', good, { qos: 1 });
    await sub.client.publishAsync(
      'sluice/r1/cmd',
      command({ cmd: 'terminate', args: {}, ts: Date.now() - 3_600_000, nonce: 'nonce-0003', id: 'req-3' }),
      { qos: 1 },
    );
    await sub.client.publishAsync('sluice/r1/cmd', 'garbage', { qos: 1 });
    await sub.waitFor(() => sub.on('reply').length === 5, 5000, 'four refusals');
    assert.equal(
      sub
        .on('reply')
        .slice(1)
        .map((r) => (r.body['error'] as Record<string, unknown>)['code']),
      [
        'ERR_MQTT_COMMAND_SIGNATURE',
        'ERR_MQTT_COMMAND_REPLAYED',
        'ERR_MQTT_COMMAND_EXPIRED',
        'ERR_MQTT_COMMAND_INVALID',
      ],
    );
    assert.is(ran.length, 1, 'only the good one ran');
    assert.equal([stat(first)['commands_accepted'], stat(first)['commands_refused']], [1, 4]);
    await first.close();

    const second = new MqttSink(cfg, {
      log: recordingLog([]),
      routerId: 'r1',
      stateDir,
      backoff: { minMs: 100, maxMs: 400 },
      ...deps,
    });
    cleanups.push(() => second.close());
    await second.start();
    await until(() => stat(second)['state'] === 'ready', 5000, 'connected again');
    await new Promise((r) => setTimeout(r, 200));
    await sub.client.publishAsync('sluice/r1/cmd', good, { qos: 1 });
    await sub.waitFor(() => sub.on('reply').length === 6, 5000, 'reply after restart');
    assert.equal((sub.on('reply')[5]!.body['error'] as Record<string, unknown>)['code'], 'ERR_MQTT_COMMAND_REPLAYED');
    assert.is(ran.length, 1);
  },
);

/**
 * What an MQTT 3.1.1-only broker (mosquitto 1.4, many appliances) does with an MQTT 5 CONNECT: CONNACK with return
 * code 1 (unacceptable protocol version) and close. Anything else is passed through to the real mosquitto.
 */
async function v311Only(upstreamPort: number): Promise<{ url: string; refused: number; close: () => Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const state = { refused: 0 };
  const server = createServer((socket) => {
    socket.once('data', (first: Buffer) => {
      // fixed header byte, remaining length (1–4 bytes), then 00 04 'MQTT' and the protocol level.
      let i = 1;
      while (first[i]! & 0x80) i++;
      const level = first[i + 1 + 6];
      if (level === 5) {
        state.refused++;
        socket.end(Buffer.from([0x20, 0x02, 0x00, 0x01]));
        return;
      }
      const up = connect(upstreamPort, '127.0.0.1', () => {
        up.write(first);
        socket.pipe(up);
        up.pipe(socket);
      });
      up.on('error', () => socket.destroy());
      socket.on('error', () => up.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    get refused() {
      return state.refused;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('protocol auto: a broker that refuses MQTT 5 gets 3.1.1, and the queued messages', async () => {
  const m = await broker();
  const old = await v311Only(m.port);
  cleanups.push(() => old.close());
  const sub = await subscriber(m.url);
  const { sink, lines } = sinkFor(mqttConfig(old.url));
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession() }); // before start: ignored (no queue yet)
  await sink.start();
  sink.onEvent({ type: 'started', at: Date.now(), session: fakeSession() });
  await sub.waitFor(() => sub.on('session').length === 1, 10_000, 'the event through a 3.1.1 connection');
  assert.is(old.refused, 1, 'one MQTT 5 attempt, then 3.1.1');
  assert.is(stat(sink)['protocol'], '3.1.1');
  assert.is(sub.on('session')[0]!.contentType, undefined, 'no MQTT 5 properties');
  assert.ok(lines.some((l) => l.includes('refused MQTT 5')));
});

test.run();
