// tier: peers; needs mosquitto
/**
 * A command's nonce was saved after the command ran (fire and forget), so a kill -9 while a grant ran
 * left no trace of its nonce and the same signed grant, resent, was applied twice. Now the nonce is on flash before the
 * command runs. The crash "while the command runs" is a kill -9 at the
 * moment the command is called (a child process that SIGKILLs itself there); the restarted sink, on the same queue
 * directory and the real mosquitto, must refuse the same command.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mosquitto } from '../peers/mosquitto.ts';
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { CommandChannel } from '../../src/upstream/mqtt/command-channel.ts';
import { CommandVerifier } from '../../src/upstream/mqtt/commands.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { mqttConfig } from './mqtt-config.ts';
import { recordingLog, Subscriber, tempDir } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const SECRET = 'a-long-shared-secret-1234';

function signed(body: Record<string, unknown>): string {
  const text = JSON.stringify(body);
  return JSON.stringify({ command: text, sig: signCommand(SECRET, text) });
}

test(
  'kill -9 while a signed grant runs: the same grant resent after the restart is refused, not applied twice ' +
    '(real mosquitto)',
  async () => {
    const m = await Mosquitto.create();
    const sub = await Subscriber.connect(m.url);
    const stateDir = tempDir();
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'mqtt-command-crash-child.ts'), m.url, stateDir, SECRET],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
      await until(() => out.includes('ready'), 30_000, `child ready: ${out}`);
      const grant = signed({
        cmd: 'grant',
        args: { mac: '02:00:00:00:06:01', seconds: 600 },
        ts: Date.now(),
        nonce: 'grant-nonce-0001',
        id: 'g1',
      });
      await sub.client.publishAsync('sluice/r1/cmd', grant, { qos: 1 });
      assert.is(await exited, 'SIGKILL', out);
      assert.match(out, /run grant/);

      const ran: string[] = [];
      const second = new MqttSink(mqttConfig(m.url, { commands: true, commandSecret: SECRET, format: 'json' }), {
        log: recordingLog([]),
        routerId: 'r1',
        stateDir,
        backoff: { minMs: 100, maxMs: 400 },
        command: async (name) => {
          ran.push(name);
          return { ok: true };
        },
      });
      try {
        await second.start();
        await until(() => (second.stats() as { state: string }).state === 'ready', 5000, 'connected again');
        await new Promise((r) => setTimeout(r, 200)); // the cmd subscription
        await sub.client.publishAsync('sluice/r1/cmd', grant, { qos: 1 });
        await sub.waitFor(() => sub.on('reply').length === 1, 5000, 'reply after the restart');
        assert.equal(ran, [], 'the resent grant did not run a second time');
        assert.equal(
          (sub.on('reply')[0]!.body['error'] as Record<string, unknown> | undefined)?.['code'],
          'ERR_MQTT_COMMAND_REPLAYED',
        );
      } finally {
        await second.close();
      }
    } finally {
      await sub.close();
      await m.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
);

test('a command whose nonce cannot be saved is not run, and says why', async () => {
  const dir = tempDir();
  try {
    // A file where the queue directory should be: every write of nonces.json fails.
    const notADir = join(dir, 'queue');
    writeFileSync(notADir, '');
    const ran: string[] = [];
    const lines: string[] = [];
    const channel = new CommandChannel({
      verifier: new CommandVerifier(SECRET, 300_000),
      log: recordingLog(lines),
      command: async (name) => {
        ran.push(name);
        return null;
      },
    });
    await channel.open(notADir);
    const reply = await channel.answer(
      Buffer.from(
        signed({ cmd: 'terminate', args: { mac: '02:00:00:00:06:02' }, ts: Date.now(), nonce: 'term-nonce-0001' }),
      ),
    );
    assert.is(reply['ok'], false);
    assert.is((reply['error'] as Record<string, unknown>)['code'], 'ERR_WRITE_FAILED');
    assert.equal(ran, [], 'not run without its nonce on flash');
    assert.ok(
      lines.some((l) => l.includes('nonce could not be saved')),
      lines.join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'a damaged nonces.json is not read as "no nonces": a command signed before the restart is refused, a new one ' +
    'runs, and a restart after it still refuses the old one',
  async () => {
    const dir = tempDir();
    try {
      const ran: string[] = [];
      const lines: string[] = [];
      const grant = {
        cmd: 'grant',
        args: { mac: '02:00:00:00:06:03', seconds: 60 },
        ts: Date.now() - 1000,
        nonce: 'grant-nonce-0003',
      };
      // A torn write (a bad flash, a hand edit): the nonce of the grant above is somewhere in what was lost.
      writeFileSync(join(dir, 'nonces.json'), '[["grant-nonce-0003",');
      const channel = new CommandChannel({
        verifier: new CommandVerifier(SECRET, 300_000),
        log: recordingLog(lines),
        command: async (name) => {
          ran.push(name);
          return null;
        },
      });
      await channel.open(dir);
      assert.ok(
        lines.some((l) => l.includes('record of used command nonces is damaged')),
        lines.join('\n'),
      );
      const replay = await channel.answer(Buffer.from(signed(grant)));
      assert.is(replay['ok'], false);
      assert.is((replay['error'] as Record<string, unknown>)['code'], 'ERR_MQTT_COMMAND_REPLAYED');
      assert.equal(ran, [], 'the command signed before the restart did not run');
      await new Promise((r) => setTimeout(r, 5));
      const fresh = await channel.answer(Buffer.from(signed({ ...grant, ts: Date.now(), nonce: 'grant-nonce-0004' })));
      assert.is(fresh['ok'], true, JSON.stringify(fresh));
      assert.equal(ran, ['grant'], 'a command signed after the restart runs');
      // That command's save rewrote the file sound: the bound was saved with it, so another restart within the window
      // still refuses the grant signed before the damage (it was read as empty once the file was sound again).
      const restarted = new CommandChannel({
        verifier: new CommandVerifier(SECRET, 300_000),
        log: recordingLog(lines),
        command: async (name) => {
          ran.push(name);
          return null;
        },
      });
      await restarted.open(dir);
      const again = await restarted.answer(Buffer.from(signed(grant)));
      assert.is(
        (again['error'] as Record<string, unknown> | undefined)?.['code'],
        'ERR_MQTT_COMMAND_REPLAYED',
        JSON.stringify(again),
      );
      assert.equal(ran, ['grant'], 'the grant signed before the damage never ran');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
