// tier: daemon
/**
 * A SIGHUP in the first ~100 ms after spawn (procd's reload right after a start) killed the daemon
 * with exit 129: its handler was installed only once every module had loaded. Now main.ts holds SIGHUPs before it loads
 * anything, and the daemon reloads once it is up. The daemon runs from source (tsx) so that a module hook can send the
 * SIGHUP exactly while src/cli.ts loads.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonLab } from './harness.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test("a SIGHUP while the daemon's modules load does not kill it; it reloads once up, and stops cleanly", async () => {
  const lab = await DaemonLab.create({ portalSocket: true });
  try {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        join(ROOT, 'test/daemon/sighup-early-hook.mjs'),
        join(ROOT, 'src/main.ts'),
        'daemon',
        '--config',
        lab.configPath,
        '--ubus-socket',
        lab.socket,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<void>((r) =>
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        r();
      }),
    );
    await lab.waitFor(
      () => {
        if (exit) throw new Error(`daemon exited (code ${exit.code}, signal ${exit.signal})\n${output}`);
        return output.includes('config reloaded');
      },
      120_000,
      'the reload owed to the early SIGHUP',
    );
    assert.match(output, /sluice running/);
    child.kill('SIGTERM');
    await exited;
    assert.equal(exit, { code: 0, signal: null }, output);
  } finally {
    await lab.close();
  }
});

test.run();
