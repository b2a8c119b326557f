// tier: fast
/**
 * A plugin's background passes (PluginHost.background): registered when it opens, started by the host once the daemon
 * runs (PaymentPlugins.start: before the plugin's start hook), stopped when it closes (before its close hook, what the
 * stop returns awaited), never started for a plugin that did not open. The real session manager on temp files.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config/index.ts';
import { SluiceError } from '../../src/errors.ts';
import type { Log } from '../../src/log.ts';
import { PaymentPlugins } from '../../src/payments/index.ts';
import type { PaymentPlugin } from '../../src/payments/plugin.ts';
import { setup } from '../sessions/helpers.ts';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const config = { main: { stateDir: '/nonexistent' }, pricing: [] } as unknown as Config;

async function listOf(plugins: PaymentPlugin[]): Promise<PaymentPlugins> {
  const env = await setup();
  const ctx = { config, sessions: env.manager, log: quiet } as unknown as Parameters<typeof PaymentPlugins.open>[1];
  return PaymentPlugins.open(plugins, ctx);
}

test('a pass starts once the daemon runs, before the start hook, and stops before the close hook', async () => {
  const seen: string[] = [];
  let stopped: () => void = () => undefined;
  const plugin: PaymentPlugin = {
    name: 'passing',
    async open({ background }) {
      background({
        start: () => void seen.push('pass started'),
        // The host waits for the pass in flight to end before the plugin's close hook runs.
        stop: () =>
          new Promise<void>((resolve) => {
            seen.push('pass stopping');
            stopped = () => {
              seen.push('pass stopped');
              resolve();
            };
          }),
      });
      return {
        methods: [],
        start: () => void seen.push('start hook'),
        close: async () => void seen.push('close hook'),
      };
    },
  };
  const list = await listOf([plugin]);
  await list.reconcile(quiet);
  assert.equal(seen, [], 'opened and reconciled: not started yet');
  list.start();
  assert.equal(seen, ['pass started', 'start hook'], 'started before the start hook');
  const closing = Promise.all(list.closers().map((close) => close()));
  await new Promise((r) => setImmediate(r));
  assert.equal(seen.slice(2), ['pass stopping'], 'the close hook waits for the pass to stop');
  stopped();
  await closing;
  assert.equal(seen.slice(2), ['pass stopping', 'pass stopped', 'close hook']);
});

test('a plugin that does not open has its passes dropped, never started nor stopped', async () => {
  const seen: string[] = [];
  const damaged: PaymentPlugin = {
    name: 'damaged',
    damagedState: 'ERR_TRIAL_STORE',
    async open({ background }) {
      background({ start: () => void seen.push('started'), stop: () => void seen.push('stopped') });
      throw new SluiceError('ERR_TRIAL_STORE', 'cannot be read back');
    },
  };
  const list = await listOf([damaged]);
  assert.equal(list.unavailable(), ['damaged']);
  list.start();
  for (const close of list.closers()) await close();
  assert.equal(seen, []);
});

test.run();
