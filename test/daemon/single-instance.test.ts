// tier: daemon
/**
 * With the real daemon binary: a second daemon on the same config used to run journal
 * recovery on the live state_dir, fail to register `sluice` and stay alive forever; SIGHUP during start-up killed the
 * daemon; an unusable state_dir was ERR_INTERNAL.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, DaemonLab } from './harness.ts';

/** Runs `sluice daemon` to its exit (bounded: a daemon that stays alive fails the test). */
function runToExit(
  lab: DaemonLab,
  configPath: string,
  timeoutMs = 30_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, 'daemon', '--config', configPath, '--ubus-socket', lab.socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon still running after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test(
  'a second daemon on the same state_dir exits 1 with ' + 'ERR_STATE_LOCKED before recovery; the first keeps serving',
  async () => {
    const lab = await DaemonLab.create({ portalSocket: true });
    try {
      await lab.startDaemon();
      await lab.call('grant', { mac: '02:00:00:00:0e:01', seconds: 600 });
      const journalBefore = readFileSync(join(lab.dir, 'state', 'sessions.0.journal'));
      const second = await runToExit(lab, lab.configPath);
      assert.is(second.code, 1, second.output);
      assert.match(second.output, /ERR_STATE_LOCKED/);
      assert.not.match(second.output, /sessions recovered/, 'the second daemon did not run recovery');
      assert.equal(
        readFileSync(join(lab.dir, 'state', 'sessions.0.journal')),
        journalBefore,
        'the live journal was not touched',
      );
      assert.is(
        ((await lab.session('02:00:00:00:0e:01')) as { state: string }).state,
        'ACTIVE',
        'the first daemon still serves',
      );
      // After kill -9 the lock is stale (its pid is gone): a new daemon starts.
      await lab.stopDaemon('SIGKILL');
      await lab.startDaemon();
      assert.is(((await lab.session('02:00:00:00:0e:01')) as { state: string }).state, 'ACTIVE');
    } finally {
      await lab.close();
    }
  },
);

test('SIGHUP during start-up does not kill the daemon; the reload runs once it is up', async () => {
  const lab = await DaemonLab.create({ portalSocket: true });
  try {
    const child = spawn(process.execPath, [BUNDLE, 'daemon', '--config', lab.configPath, '--ubus-socket', lab.socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    lab.daemon = child;
    child.stdout!.on('data', (d) => (lab.output += d));
    child.stderr!.on('data', (d) => (lab.output += d));
    // As soon as the process logs anything (config loaded, recovery running), and again shortly after.
    await lab.waitFor(() => lab.output.length > 0, 30_000, 'first log line');
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 30));
    if (child.exitCode === null) child.kill('SIGHUP');
    await lab.waitFor(
      () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`daemon died: ${child.signalCode ?? child.exitCode}\n${lab.output}`);
        return lab.output.includes('sluice running');
      },
      60_000,
      'daemon start',
    );
    assert.ok(await lab.call('stats'), 'it serves after the early SIGHUPs');
    assert.is(child.signalCode, null);
  } finally {
    await lab.close();
  }
});

test('an unusable state_dir (a file) fails the start with ERR_STATE_DIR and exit 1, not ERR_INTERNAL', async () => {
  const lab = await DaemonLab.create({ portalSocket: true });
  try {
    const file = join(lab.dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const config = readFileSync(lab.configPath, 'utf8').replace(/option state_dir .*/, `option state_dir '${file}'`);
    const configPath = join(lab.dir, 'file-state.uci');
    writeFileSync(configPath, config);
    const r = await runToExit(lab, configPath);
    assert.is(r.code, 1, r.output);
    assert.match(r.output, /ERR_STATE_DIR/);
    assert.not.match(r.output, /ERR_INTERNAL/);
  } finally {
    await lab.close();
  }
});

test.run();
