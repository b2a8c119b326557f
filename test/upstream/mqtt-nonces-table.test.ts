// tier: fast
/**
 * The MQTT command channel's nonces.json (upstream/mqtt/command-channel.ts) on storage/json-table through
 * nonce-file.ts: the table suite through the channel's own answer to signed commands, and the file the code of
 * 6ffb9b9 wrote (its floor with it) opens after the upgrade. Its damage policy is the nonce files': it runs on and
 * refuses every command signed before it read the damaged file, counted and kept aside like every table's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandChannel } from '../../src/upstream/mqtt/command-channel.ts';
import { CommandVerifier } from '../../src/upstream/mqtt/commands.ts';
import { signCommand } from '../../src/upstream/mqtt/command-mac.ts';
import { recordingLog } from '../helpers/log.ts';
import { tempDirs } from '../helpers/temp.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';

const SECRET = 'a-command-secret-for-tests';
const WINDOW = 300_000;
const T = 1_750_000_013_000;
const quiet = recordingLog(() => undefined);

function message(n: number, ts = T + n): Buffer {
  const command = JSON.stringify({ cmd: 'logout', args: {}, ts, nonce: `cmd-nonce-${n}` });
  return Buffer.from(JSON.stringify({ command, sig: signCommand(SECRET, command) }));
}

async function channel(dir: string, now = T + 100, atStart = false): Promise<CommandChannel> {
  const c = new CommandChannel({
    verifier: new CommandVerifier(SECRET, WINDOW, { now: () => now }),
    log: quiet,
    command: async () => 'ran',
  });
  await c.open(dir, { atStart });
  return c;
}

/** The error code command `n` is answered with (null: it ran). */
async function answer(c: CommandChannel, n: number): Promise<string | null> {
  const reply = (await c.answer(message(n))) as { ok: boolean; error?: { code: string } };
  return reply.ok ? null : reply.error!.code;
}

jsonTableSuite<CommandChannel>('nonces.json (MQTT command nonces)', {
  file: 'nonces.json',
  open: (dir, atStart) => channel(dir, T + 100, atStart),
  put: async (c, n) => {
    const code = await answer(c, n);
    if (code !== null) throw new Error(code);
  },
  // Whether the channel knows the nonce, by the only way it tells: sending the command again (refused as a replay).
  // A nonce it does not know runs: asked last in each test, or of a channel about to be dropped.
  get: async (c, n) => ((await answer(c, n)) === 'ERR_MQTT_COMMAND_REPLAYED' ? 'seen' : undefined),
  damaged: {
    async refuses(c, n, writable = true) {
      assert.is(await answer(c, n), 'ERR_MQTT_COMMAND_REPLAYED', 'signed before the damaged file was read: refused');
      // Where nothing can be written (a directory in the file's place) no command runs: its nonce would not be kept.
      assert.is(await answer(c, 1000), writable ? null : 'ERR_WRITE_FAILED', 'signed after: runs if it can be kept');
    },
  },
});

test(
  'a nonces.json written by the code of 6ffb9b9 opens after the upgrade: its nonce is a replay, its floor still ' +
    'refuses',
  async () => {
    const dir = withOldFile(
      tempDirs('sluice-mqtt-old-', test.after)(),
      new URL('../storage/fixtures/6ffb9b9/tables/nonces.json', import.meta.url).pathname,
      'nonces.json',
    );
    const c = await channel(dir, T + 1000);
    const replay = JSON.stringify({ cmd: 'logout', args: {}, ts: T, nonce: 'cmd-nonce-1' });
    const reply = (await c.answer(
      Buffer.from(JSON.stringify({ command: replay, sig: signCommand(SECRET, replay) })),
    )) as { error?: { code: string } };
    assert.is(reply.error?.code, 'ERR_MQTT_COMMAND_REPLAYED');
    // Signed at the floor (1_750_000_012_500) with a fresh nonce: refused; after it: runs.
    assert.is(await answer(c, -500), 'ERR_MQTT_COMMAND_REPLAYED');
    assert.is(await answer(c, 2), null);
  },
);

test.run();
