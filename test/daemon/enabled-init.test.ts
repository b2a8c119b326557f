// tier: daemon
// main.enabled 0 seen by a daemon the init script started (SLUICE_INIT set, as files/etc/init.d/sluice sets it): the
// daemon must not exit on its own, which procd counts as a crash and respawns five times. It runs
// `$SLUICE_INIT start` (the script then registers the service without the instance and procd sends SIGTERM) and stops
// on that SIGTERM. Here a stand-in init script records its arguments and sends the SIGTERM procd would; the real
// procd does the same in test/package/procd-lab.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonLab } from './harness.ts';

let lab: DaemonLab;
const OFF = `config sluice 'main'\n\toption enabled '0'\n`;

/** A stand-in /etc/init.d/sluice: notes `$*`, then (status 0) SIGTERMs its parent, the daemon, as procd would. */
function standIn(status: 0 | 1): { path: string; calls: () => string[] } {
  const path = join(lab.dir, 'init.d-sluice');
  const log = join(lab.dir, 'init-calls');
  writeFileSync(
    path,
    `#!/bin/sh\necho "$*" >> '${log}'\n${status === 0 ? 'kill -TERM "$PPID"\n' : ''}exit ${status}\n`,
  );
  chmodSync(path, 0o755);
  return { path, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

test.before.each(async () => {
  lab = await DaemonLab.create();
});
test.after.each(async () => {
  delete process.env.SLUICE_INIT;
  await lab.close();
});

test(
  'reload finds enabled 0 under the init script: it runs `<init> start` and stops on the SIGTERM that follows, ' +
    'exit 0',
  async () => {
    const init = standIn(0);
    process.env.SLUICE_INIT = init.path;
    await lab.startDaemon();
    lab.writeConfig(OFF);
    const exited = new Promise<number | null>((r) => lab.daemon!.once('exit', (code) => r(code)));
    assert.is((await lab.call('reload')).stopping, true);
    assert.is(await exited, 0);
    lab.daemon = undefined;
    assert.equal(init.calls(), ['start']);
    assert.match(lab.output, /stopping signal=SIGTERM/, 'stopped by the SIGTERM, not by itself');
  },
);

test(
  'started with enabled 0 under the init script (a respawn): it runs `<init> start` and waits for the SIGTERM, ' +
    'exit 0',
  async () => {
    const init = standIn(0);
    process.env.SLUICE_INIT = init.path;
    lab.writeConfig(OFF);
    let failure = '';
    await lab.startDaemon().catch((err: Error) => {
      failure = err.message;
    });
    assert.match(failure, /daemon exited \(code 0/);
    assert.equal(init.calls(), ['start']);
    assert.match(lab.output, /main\.enabled is 0: not starting; the init script takes the instance away/);
  },
);

test('the init script fails: the daemon stops by itself as without one (exit 0), and says why', async () => {
  const init = standIn(1);
  process.env.SLUICE_INIT = init.path;
  await lab.startDaemon();
  lab.writeConfig(OFF);
  const exited = new Promise<number | null>((r) => lab.daemon!.once('exit', (code) => r(code)));
  await lab.call('reload');
  assert.is(await exited, 0);
  lab.daemon = undefined;
  assert.equal(init.calls(), ['start']);
  assert.match(lab.output, /init script failed: stopping/);
  assert.match(lab.output, /stopping signal="?main\.enabled 0/);
});

test.run();
