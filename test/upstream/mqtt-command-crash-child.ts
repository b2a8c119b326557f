/**
 * Child process for the command-replay kill -9 test: an MQTT sink on the broker argv[2] with its queue in argv[3]
 * and commands on; it prints `ready` once subscribed, and SIGKILLs itself the moment a command starts to run (no
 * close, no pending write finished): the crash between "command verified" and "command done".
 */
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { mqttConfig } from './mqtt-config.ts';
import { recordingLog } from './mqtt-rig.ts';

const [url, stateDir, secret] = process.argv.slice(2) as [string, string, string];
const sink = new MqttSink(
  mqttConfig(url, { commands: true, commandSecret: secret, format: 'json', clientId: 'sluice-crash-child' }),
  {
    log: recordingLog([]),
    routerId: 'r1',
    stateDir,
    backoff: { minMs: 100, maxMs: 400 },
    command: async (name) => {
      process.stdout.write(`run ${name}\n`);
      process.kill(process.pid, 'SIGKILL');
      return null;
    },
  },
);
await sink.start();
while ((sink.stats() as { state: string }).state !== 'ready') await new Promise((r) => setTimeout(r, 20));
// The cmd subscription is sent right after the CONNACK; give its SUBACK a moment.
await new Promise((r) => setTimeout(r, 300));
process.stdout.write('ready\n');
