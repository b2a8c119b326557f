// `sluice daemon`'s command line (src/cli.ts): what it takes, and what it refuses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDaemonArgs } from '../../src/cli.ts';

test('defaults, long and short options, --reset-state', () => {
  assert.equal(parseDaemonArgs([]), { configPath: '/etc/config/sluice', resetState: false });
  assert.equal(parseDaemonArgs(['--config', '/tmp/c', '--ubus-socket', '/tmp/u.sock', '--reset-state']),
    { configPath: '/tmp/c', ubusSocket: '/tmp/u.sock', resetState: true });
  assert.equal(parseDaemonArgs(['-c', '/tmp/c', '-s', '/tmp/u.sock']), { configPath: '/tmp/c', ubusSocket: '/tmp/u.sock', resetState: false });
});

test('help, an unknown argument, and an option without its value', () => {
  assert.is(parseDaemonArgs(['-h']), 'help');
  assert.is(parseDaemonArgs(['--config', '/tmp/c', '--help']), 'help');
  assert.equal(parseDaemonArgs(['--verbose']), { unexpected: '--verbose' });
  assert.equal(parseDaemonArgs(['--config']), { unexpected: '--config' });
});

test.run();
