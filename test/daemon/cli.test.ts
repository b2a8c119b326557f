// tier: daemon
// sluice's command line: `sluice daemon`'s arguments (src/cli.ts), and the conventions every command keeps
// (src/main.ts): --version, `help`, `<command> --help` on stdout with exit 0, and a usage error (exit 2) for what it
// does not know.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { parseDaemonArgs } from '../../src/cli.ts';
import { VERSION } from '../../src/version.ts';
import { BUNDLE, ensureBuilt } from './harness.ts';

/**
 * `sluice <args>` as the router runs it: the bundle (src/main.ts is its entry; npm test builds it first). Not through
 * tsx: loading src/ that way costs ~0.6 s more per call, and this file makes fifteen.
 */
function sluice(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  ensureBuilt();
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('defaults, long and short options, --reset-state', () => {
  assert.equal(parseDaemonArgs([]), { configPath: '/etc/config/sluice', resetState: false });
  assert.equal(parseDaemonArgs(['--config', '/tmp/c', '--ubus-socket', '/tmp/u.sock', '--reset-state']), {
    configPath: '/tmp/c',
    ubusSocket: '/tmp/u.sock',
    resetState: true,
  });
  assert.equal(parseDaemonArgs(['-c', '/tmp/c', '-s', '/tmp/u.sock']), {
    configPath: '/tmp/c',
    ubusSocket: '/tmp/u.sock',
    resetState: false,
  });
});

test('help, an unknown argument, and an option without its value', () => {
  assert.is(parseDaemonArgs(['-h']), 'help');
  assert.is(parseDaemonArgs(['--config', '/tmp/c', '--help']), 'help');
  assert.equal(parseDaemonArgs(['--verbose']), { unexpected: '--verbose' });
  assert.equal(parseDaemonArgs(['--config']), { unexpected: '--config' });
});

test('--version and -V print the version and exit 0', () => {
  for (const flag of ['--version', '-V']) {
    const r = sluice(flag);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, `sluice ${VERSION}\n`);
  }
});

test('`sluice help` and `sluice --help` print the help on stdout and exit 0', () => {
  for (const args of [['help'], ['--help'], ['-h']]) {
    const r = sluice(...args);
    assert.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /usage: sluice <command>/);
    assert.match(r.stdout, /--version/);
  }
});

test('every command answers --help with its own usage, exit 0 (and `sluice help <command>` does the same)', () => {
  const own: Record<string, RegExp> = {
    daemon: /usage: sluice daemon/,
    demo: /usage: sluice demo/,
    ubusd: /sluice ubusd|-s <socket>|usage/i,
    ubus: /Usage: ubus \[<options>\] <command>/,
    'demo-ndsctl': /usage: sluice demo-ndsctl/,
  };
  for (const [command, usage] of Object.entries(own)) {
    const r = sluice(command, '--help');
    assert.is(r.status, 0, `${command} --help: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, usage, `${command} --help`);
    assert.not.match(
      r.stdout,
      /usage: sluice <command>/,
      `${command} --help prints its own usage, not the top-level one`,
    );
  }
  const r = sluice('help', 'demo');
  assert.is(r.status, 0);
  assert.match(r.stdout, /usage: sluice demo/);
});

test(
  'an unknown command, an unknown flag, or a bad command ' + 'argument is a usage error: exit 2 with what was wrong',
  () => {
    const command = sluice('frobnicate');
    assert.is(command.status, 2);
    assert.match(command.stderr, /unknown command "frobnicate"/);
    const flag = sluice('--frobnicate');
    assert.is(flag.status, 2);
    assert.match(flag.stderr, /unknown option "--frobnicate"/);
    const demo = sluice('demo', '--clients', '-3');
    assert.is(demo.status, 2);
    assert.match(demo.stderr, /unexpected argument "--clients"/);
    const daemon = sluice('daemon', '--verbose');
    assert.is(daemon.status, 2);
    assert.match(daemon.stderr, /unexpected argument "--verbose"/);
  },
);

test.run();
