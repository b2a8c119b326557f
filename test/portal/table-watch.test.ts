// tier: daemon
/**
 * The watch on sluice's own nft tables (portal/table-watch.ts): what it reports from `nft monitor tables`' lines, and,
 * as root against the real kernel, a `nft flush ruleset` behind sluice's back answered by the counters' and the
 * quota's tables made again at once, each client's counters and quota in them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KernelCounters } from '../../src/portal/kernel-counting.ts';
import { KernelQuota } from '../../src/portal/kernel-quota.ts';
import { nftRunner } from '../../src/portal/nft-run.ts';
import { TableWatch } from '../../src/portal/table-watch.ts';
import { skipTest } from '../helpers/skip.ts';
import { until } from '../helpers/until.ts';

const A = '02:00:00:00:0c:01';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("lines: a table deleted and not re-added is reported once; sluice's own delete-and-add is not", async () => {
  const gone: string[] = [];
  const w = new TableWatch({
    command: ['nft'],
    tables: ['netdev sluice_count'],
    onGone: (t) => gone.push(t),
    quietMs: 5,
  });
  // sluice's own replacement: one transaction, add then delete then add
  for (const l of [
    'add table netdev sluice_count',
    'delete table netdev sluice_count',
    'add table netdev sluice_count',
  ])
    w.line(l);
  w.line('delete table inet other');
  await sleep(30);
  assert.equal(gone, []);
  w.line('delete table netdev sluice_count');
  w.line('delete table netdev sluice_quota'); // not watched here
  await sleep(30);
  assert.equal(gone, ['netdev sluice_count']);
  assert.is(w.gone, 1);
});

test("a table sluice never remakes itself: deleted then added by another (fw4's include) is reported", async () => {
  const gone: string[] = [];
  const w = new TableWatch({
    command: ['nft'],
    tables: ['netdev sluice_count', 'inet sluice_portal'],
    remadeByOthers: ['inet sluice_portal'],
    onGone: (t) => gone.push(t),
    quietMs: 5,
  });
  // `fw4 flush` then fw4's ruleset with the gate's include, before the events pause
  for (const l of [
    'delete table netdev sluice_count',
    'delete table inet sluice_portal',
    'add table inet sluice_portal',
    'add table netdev sluice_count',
  ])
    w.line(l);
  await sleep(30);
  assert.equal(gone, ['inet sluice_portal']);
  // an add alone (fw4 reload: the include runs on the table as it is) is nothing
  w.line('add table inet sluice_portal');
  await sleep(30);
  assert.equal(gone, ['inet sluice_portal']);
});

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;
if (!root || !haveNft) {
  skipTest(test, 'the table watch on the real kernel', `needs root and nft (root=${root} nft=${haveNft})`, {
    ciInstalls: true,
  });
} else {
  const ns = `sluice-tw-${randomBytes(3).toString('hex')}`;
  const nftArgv = ['ip', 'netns', 'exec', ns, 'nft'];
  const list = (): string =>
    spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).stdout;
  test.before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
  });
  test.after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });

  const twoTables = async (): Promise<{ counters: KernelCounters; quota: KernelQuota }> => {
    const counters = new KernelCounters({ command: nftArgv, devices: ['lan'], timeoutMs: 5000 });
    const quota = new KernelQuota({
      run: nftRunner(nftArgv, 5000),
      devices: ['lan'],
      session: () => ({ left: 5000, allotment: 10_000n }),
    });
    assert.ok(await counters.start(() => true));
    assert.ok(await quota.start());
    await counters.count(A);
    await quota.set(A, 5000);
    return { counters, quota };
  };
  const watchOf = (counters: KernelCounters, quota: KernelQuota, command: readonly string[] = nftArgv): TableWatch =>
    new TableWatch({
      command,
      run: nftRunner(nftArgv, 5000),
      tables: ['netdev sluice_count', 'netdev sluice_quota'],
      onGone: (table) => void (table.endsWith('sluice_count') ? counters.rebuild('flushed') : quota.rebuild('flushed')),
    });
  /** The ruleset once both tables are back with the client in them (a hang guard, not a timing goal). */
  const bothBackListed = async (): Promise<string> => {
    let ruleset = '';
    await until(
      () => bothBack((ruleset = list())),
      40_000,
      () => `both tables back:\n${ruleset}`,
      50,
    );
    return ruleset;
  };
  const bothBack = (r: string): boolean => /counter cu_020000000c01/.test(r) && /q_020000000c01/.test(r);

  test('real kernel: `nft flush ruleset` is answered by both tables made again, with the client in them', async () => {
    const { counters, quota } = await twoTables();
    const watch = watchOf(counters, quota);
    watch.start();
    try {
      // The monitor hears nothing before it has subscribed: flush only once it has heard its probe.
      await watch.listening();
      assert.ok(bothBack(list()), 'nothing was reported before the flush');
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset'], { stdio: 'ignore' });
      // Both tables are made again before their entries are: wait for what the assertions read, not the tables alone.
      const ruleset = await bothBackListed();
      assert.match(ruleset, /counter cu_020000000c01/, "the counters' table is back, the client's counters in it");
      assert.match(
        ruleset,
        /quota q_020000000c01 \{\s*over 5000 bytes/,
        "the quota is back at the session's bytes left",
      );
      assert.ok(counters.has(A) && quota.has(A));
    } finally {
      watch.stop();
    }
  });

  test('real kernel: a table deleted while the monitor starts is made again once it listens', async () => {
    const { counters, quota } = await twoTables();
    // A monitor slow to subscribe (a loaded router): it starts a second after the deletion below.
    const slow = ['sh', '-c', 'case "$*" in *monitor*) sleep 1 ;; esac; exec "$0" "$@"', ...nftArgv];
    const watch = watchOf(counters, quota, slow);
    watch.start();
    try {
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', 'sluice_count'], { stdio: 'ignore' });
      assert.not.match(list(), /sluice_count/, 'deleted before the monitor could hear it');
      const ruleset = await bothBackListed();
      assert.match(ruleset, /counter cu_020000000c01/, "the counters' table is back, the client's counters in it");
      assert.match(ruleset, /quota q_020000000c01 \{\s*over 5000 bytes/, 'the quota untouched');
      assert.is(watch.gone, 1);
    } finally {
      watch.stop();
    }
  });
}

test.run();
