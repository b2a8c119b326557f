// tier: peers; needs mosquitto
/**
 * A payment is announced once, also across a crash between its journal write and its announcement: at a restart the
 * MQTT sink queues the `started`/`topup` of the payments recovery hands it (those written just before the stop) that
 * it never queued, and none it did (its payment marks, and what its queue still holds).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { Mosquitto } from '../peers/mosquitto.ts';
import { MqttSink, type MqttSinkDeps } from '../../src/upstream/mqtt/sink.ts';
import type { MqttConfig } from '../../src/config/mqtt.ts';
import type { PaidEvent } from '../../src/sessions/index.ts';
import { mqttConfig } from './mqtt-config.ts';
import { fakeSession, recordingLog, Subscriber, tempDir } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const cleanups: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sinkFor(cfg: MqttConfig, extra: Partial<MqttSinkDeps>, stateDir: string) {
  const sink = new MqttSink(cfg, {
    log: recordingLog([]),
    routerId: 'r1',
    stateDir,
    backoff: { minMs: 100, maxMs: 400 },
    ...extra,
  });
  cleanups.push(() => sink.close());
  return sink;
}

const stat = (sink: MqttSink) => sink.stats() as Record<string, unknown> & { queue: Record<string, number> };

test('a payment journaled but never announced (a crash in between) is announced at the restart, once', async () => {
  const m = await Mosquitto.create();
  cleanups.push(() => m.close());
  const sub = await Subscriber.connect(m.url);
  cleanups.push(() => sub.close());
  const stateDir = tempDir();
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const cfg = mqttConfig(m.url);
  const now = Date.now();
  const announced = fakeSession({ createdAt: now, startedAt: now });
  announced.payments = [{ method: 'grant', reference: 'g-announced', amount: 0n, asset: '', at: now }];
  const lost = fakeSession({ createdAt: now, startedAt: now });
  lost.payments = [{ method: 'cashu', reference: 'token-lost', amount: 21n, asset: 'sat', at: now + 5 }];
  const toppedUp = fakeSession({ createdAt: now, startedAt: now });
  toppedUp.payments = [
    { method: 'grant', reference: 'g-first', amount: 0n, asset: '', at: now },
    { method: 'cashu', reference: 'token-topup', amount: 8n, asset: 'sat', at: now + 9 },
  ];
  // Distinct messages (by seq): a message sent again after the crash keeps its seq, and consumers drop it.
  const paymentsOf = (reference: string) => [
    ...new Set(
      sub
        .on('session')
        .filter((x) => (x.body['payment'] as Record<string, unknown> | undefined)?.['reference'] === reference)
        .map((x) => `${String(x.body['event'])}:${String(x.body['seq'])}`),
    ),
  ];

  const first = sinkFor(cfg, { recovered: () => ({ ended: [] }) }, stateDir);
  await first.start();
  await until(() => stat(first)['state'] === 'ready', 5000, 'connected');
  first.onEvent({ type: 'started', at: now, session: announced });
  first.onEvent({ type: 'started', at: now, session: toppedUp });
  await sub.waitFor(() => paymentsOf('g-first').length === 1, 5000, 'the announced ones');
  // The crash: `lost`'s purchase and `toppedUp`'s top-up reached the journal, their announcements never came.
  first.destroy();

  // Recovery hands over every payment written just before the stop: the sink announces the two it never queued.
  const recovered: PaidEvent[] = [
    { event: 'started', session: announced, payment: announced.payments[0]! },
    { event: 'started', session: toppedUp, payment: toppedUp.payments[0]! },
    { event: 'started', session: lost, payment: lost.payments[0]! },
    { event: 'topup', session: toppedUp, payment: toppedUp.payments[1]! },
  ];
  const restart = async () => {
    const sink = sinkFor(cfg, { recovered: () => ({ ended: [], payments: recovered }) }, stateDir);
    await sink.start();
    await until(() => stat(sink)['state'] === 'ready' && stat(sink).queue['pending'] === 0, 5000, 'queue empty');
    return sink;
  };
  const second = await restart();
  await sub.waitFor(() => paymentsOf('token-topup').length === 1, 5000, 'the top-up announced');
  await second.close();
  // A clean restart with the same recovery: all four are marked now.
  await restart();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(paymentsOf('g-announced').length, 1, 'announced before the crash: not again');
  assert.equal(paymentsOf('g-first').length, 1);
  assert.equal(
    paymentsOf('token-lost').map((e) => e.split(':')[0]),
    ['started'],
  );
  assert.equal(
    paymentsOf('token-topup').map((e) => e.split(':')[0]),
    ['topup'],
  );
});

test.run();
