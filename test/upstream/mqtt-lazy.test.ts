// tier: fast
// mqtt.js is loaded by the first connect, not with the daemon: a router with mqtt off never carries it (idle memory,
// docs/performance.md). mqtt.js is CommonJS, so once loaded it is in the require cache, whichever way it was imported.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../src/daemon.ts';
import type { MqttConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { mqttConfig } from './mqtt-config.ts';

// mqtt-config.ts, not mqtt-rig.ts: the rig imports mqtt.js itself (its subscriber).
const config = (enabled: boolean): MqttConfig => mqttConfig('mqtt://127.0.0.1:1', { enabled, clientId: 'sluice-lazy' });
const log = createLogger();
log.level = 'error';

const mqttLoaded = (): boolean =>
  Object.keys(createRequire(import.meta.url).cache).some((p) => /[\\/]node_modules[\\/]mqtt[\\/]/.test(p));

test(
  'loading the daemon and starting the mqtt sink with mqtt off leaves mqtt.js unloaded; the first connect loads ' +
    'it',
  async () => {
    assert.not.ok(mqttLoaded(), 'mqtt.js loaded with the daemon');
    const stateDir = mkdtempSync(join(tmpdir(), 'sluice-mqtt-lazy-'));
    try {
      const off = new MqttSink(config(false), { log, routerId: 'r1', stateDir });
      await off.start();
      await off.close();
      assert.not.ok(mqttLoaded(), 'mqtt.js loaded by a disabled sink');
      const on = new MqttSink(config(true), {
        log,
        routerId: 'r1',
        stateDir,
        backoff: { minMs: 60_000, maxMs: 60_000 },
      });
      await on.start();
      assert.ok(mqttLoaded(), 'mqtt.js not loaded by an enabled sink');
      await on.close();
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
);

test.run();
