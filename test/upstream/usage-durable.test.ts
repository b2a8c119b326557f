// tier: peers; needs mosquitto
/**
 * Durable before anyone is told: a router publishes usage and an end to a real mosquitto only once its journal (the
 * real flash journal, its appends held here as a slow or stalled flash would hold them) has written them; a kill -9
 * or a power cut while they are held leaves the fleet nothing the router's own records lack.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { Mosquitto } from '../peers/mosquitto.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SinkHost } from '../../src/upstream/host.ts';
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { CountingStore, mac, payment, setup, useBytes } from '../sessions/helpers.ts';
import { mqttConfig } from './mqtt-config.ts';
import { recordingLog, rows, Subscriber, tempDir } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const cleanups: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('usage and an end held in the journal are not published; once written, they are, usage first', async () => {
  const broker = await Mosquitto.create();
  cleanups.push(() => broker.close());
  const sub = await Subscriber.connect(broker.url);
  cleanups.push(() => sub.close());
  const journalDir = tempDir('sluice-journal-');
  const queueDir = tempDir();
  cleanups.push(() => {
    rmSync(journalDir, { recursive: true, force: true });
    rmSync(queueDir, { recursive: true, force: true });
  });
  const store = new CountingStore(new JournalStore({ dir: journalDir }));
  const { manager } = await setup({ store });
  cleanups.push(() => {
    store.release();
    return manager.close();
  });
  const sink = new MqttSink(mqttConfig(broker.url), {
    log: recordingLog([]),
    routerId: 'r1',
    stateDir: queueDir,
    backoff: { minMs: 100, maxMs: 400 },
  });
  const host = new SinkHost({ log: recordingLog([]) });
  host.add(sink);
  host.attach(manager);
  await host.start();
  cleanups.push(() => host.close());
  await until(() => (sink.stats() as { state: string }).state === 'ready', 10_000, 'sink ready');

  const { session } = await manager.activate({ mac: mac(1), metric: 'bytes', allotment: 10_000n, payment: payment() });
  const events = () => sub.on('session').map((m) => m.body['event']);
  await sub.waitFor(() => events().includes('started'), 10_000, 'started');

  const report = (bytes: number, remaining: number) => ({
    mac: mac(1),
    sessionId: session.id,
    metric: 'bytes' as const,
    deltaBytes: bytes,
    deltaDownloadBytes: bytes,
    deltaUploadBytes: 0,
    remainingBytes: remaining,
    exhausted: false,
  });
  store.hold = true;
  useBytes(manager, [[mac(1), 4000]]);
  manager.reportUsage([report(4000, 6000)]);
  const checkpoint = manager.checkpoint();
  useBytes(manager, [[mac(1), 1000]]);
  manager.reportUsage([report(1000, 5000)]);
  const ended = manager.end(session.id, 'admin');
  const stats = () => sink.stats() as { usage_reports: number; session_events: number };
  assert.is(stats().usage_reports, 0, 'no usage report queued while its checkpoint is held');
  assert.is(stats().session_events, 1, 'the end is not queued while its record is held');
  // What the router could have published so far has reached the subscriber: a marker through the same broker after it.
  const marker = await Subscriber.connect(broker.url, { topic: 'marker' });
  cleanups.push(() => marker.close());
  await marker.client.publishAsync('sluice/r1/marker', 'x', { qos: 1 });
  await sub.waitFor(() => sub.on('marker').length === 1, 10_000, 'marker');
  assert.is(sub.on('usage').length, 0, 'no usage the journal does not have');
  assert.equal(events(), ['started'], 'no end the journal does not have');

  store.release();
  await checkpoint;
  await ended;
  await manager.writesSettled();
  await sub.waitFor(() => events().includes('ended'), 10_000, 'ended');
  await sub.waitFor(() => sub.on('usage').length === 2, 10_000, 'two usage reports');
  const usage = sub.on('usage');
  const byReport = usage.map((m) => rows(m.body)[0]!);
  assert.is(byReport[0]!['used'], 4000, "the checkpoint's figures, as written");
  assert.is(byReport[1]!['used'], 5000, "the end record's");
  // As each tick's report did, the end's says what the session had left as it ended, not an ended session's nothing:
  // a venue's lease takes a holder's report for what is left to move.
  assert.is(byReport[1]!['remaining'], 5000, 'what it had left as it ended');
  const seqOf = (m: { body: Record<string, unknown> }) => m.body['seq'] as number;
  const end = sub.on('session').find((m) => m.body['event'] === 'ended')!;
  assert.ok(seqOf(usage[1]!) < seqOf(end), 'the last usage goes before the end');
  assert.is(store.count('usage'), 1, 'one checkpoint write: no write added for the publishing');
});

test.run();
