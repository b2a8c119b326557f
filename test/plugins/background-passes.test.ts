// tier: fast
/**
 * A plugin's background passes (PluginHost.background): registered when it opens, started by the host once the daemon
 * runs (PaymentPlugins.start: before the plugin's start hook), stopped when it closes (before its close hook, what the
 * stop returns awaited), never started for a plugin that did not open. The real session manager on temp files.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config/index.ts';
import { SluiceError } from '../../src/errors.ts';
import type { Log } from '../../src/log.ts';
import { PaymentPlugins } from '../../src/payments/index.ts';
import type { PaymentPlugin } from '../../src/payments/plugin.ts';
import { batchSettlementPlugin } from '../../src/payments/batch-settlement/index.ts';
import { removeTempDir } from '../helpers/temp.ts';
import { setup } from '../sessions/helpers.ts';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const config = { main: { stateDir: '/nonexistent' }, pricing: [] } as unknown as Config;

async function listOf(plugins: PaymentPlugin[], on = config): Promise<PaymentPlugins> {
  const env = await setup();
  const endsWritten = { onEndsWritten: () => () => undefined };
  const ctx = { config: on, sessions: env.manager, endsWritten, log: quiet } as unknown as Parameters<
    typeof PaymentPlugins.open
  >[1];
  return PaymentPlugins.open(plugins, ctx);
}

/** The timers armed through the global setTimeout from now on that are still pending (neither fired nor cleared). */
function countTimers(): { pending(): number; restore(): void } {
  const [set, clear] = [globalThis.setTimeout, globalThis.clearTimeout];
  const pending = new Set<unknown>();
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle = set(() => {
      pending.delete(handle);
      fn(...args);
    }, ms);
    pending.add(handle);
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
    pending.delete(handle);
    clear(handle);
  }) as typeof clearTimeout;
  return {
    pending: () => pending.size,
    restore: () => {
      globalThis.setTimeout = set;
      globalThis.clearTimeout = clear;
    },
  };
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

test('a pass that waits for the reconcile starts once it ended, though the daemon ran first', async () => {
  const seen: string[] = [];
  let finish: () => void = () => undefined;
  const waiting = (name: string): PaymentPlugin => ({
    name,
    async open({ background }) {
      background({ afterReconcile: true, start: () => void seen.push(`${name} started`), stop: () => undefined });
      background({ start: () => void seen.push(`${name} eager started`), stop: () => undefined });
      return { methods: [], reconcile: () => new Promise<void>((resolve) => (finish = resolve)) };
    },
  });
  const list = await listOf([waiting('slow')]);
  // The start's wait for the reconcile ran out (reconcile-within.ts): the daemon runs, the reconcile goes on.
  void list.reconcile(quiet);
  list.start();
  assert.equal(seen, ['slow eager started'], 'only the pass that does not wait for the reconcile');
  finish();
  await new Promise((r) => setImmediate(r));
  assert.equal(seen, ['slow eager started', 'slow started'], 'started once the reconcile ended');

  seen.length = 0;
  const closed = await listOf([waiting('closed')]);
  void closed.reconcile(quiet);
  closed.start();
  for (const close of closed.closers()) await close();
  finish();
  await new Promise((r) => setImmediate(r));
  assert.equal(seen, ['closed eager started'], 'a plugin closed before its reconcile ended starts no waiting pass');
});

test("batch-settlement's settler and watch: armed once the daemon runs, none left at close", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-passes-'));
  const timers = countTimers();
  try {
    const on = {
      ...config,
      main: { stateDir: dir },
      batchSettlement: {
        enabled: true,
        // Nothing is open: no pass asks the facilitator anything (a closed port all the same).
        facilitatorUrl: 'http://127.0.0.1:9',
        network: 'eip155:84532',
        chainId: 84532,
        receiver: `0x${'3'.repeat(40)}`,
        receiverAuthorizer: `0x${'4'.repeat(40)}`,
        withdrawDelay: 900,
        refund: 'at-end',
        refundIdleMs: 600_000,
        timeoutMs: 1000,
        tokenName: 'USDC',
        tokenVersion: '2',
      },
    } as unknown as Config;
    const list = await listOf([batchSettlementPlugin], on);
    assert.equal(list.unavailable(), []);
    await list.reconcile(quiet);
    assert.is(timers.pending(), 0, 'the reconcile arms no pass');
    list.start();
    assert.ok(timers.pending() >= 2, 'the settler and the watch each armed their first pass');
    for (const close of list.closers()) await close();
    assert.is(timers.pending(), 0, 'no timer left once the plugin closed');
  } finally {
    timers.restore();
    removeTempDir(dir);
  }
});

test('a plugin the start opens is told so (it reads its state synchronously); one a reload opens is not', async () => {
  const seen: Array<[string, boolean]> = [];
  const plugin = (name: string, key: 'escrow' | 'upto'): PaymentPlugin => ({
    name,
    switch: key,
    async open({ atStart }) {
      seen.push([name, atStart]);
      return { methods: [] };
    },
  });
  const on = (upto: boolean): Config => ({ ...config, escrow: { enabled: true }, upto: { enabled: upto } }) as Config;
  const list = await listOf([plugin('at-start', 'escrow'), plugin('by-a-reload', 'upto')], on(false));
  await list.switchTo(on(true), quiet);
  assert.equal(seen, [
    ['at-start', true],
    ['by-a-reload', false],
  ]);
});

test.run();
