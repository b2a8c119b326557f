// tier: daemon
/**
 * One nft run per gate event (portal/nft-batch.ts): the kernel quota's, the counters' and the IPv6 gate's changes
 * that a gate's opening, or its close's end, makes go to nft as one transaction. On the real kernel (a network
 * namespace), through the Valve with the portal stand-in: the nft runs counted through the injected spawn, the
 * tables after the merged runs the same as after one run per module, and a module whose lines nft refuses fails
 * alone (it rebuilds its table) while the others' changes are made.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn as nodeSpawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COUNTER_TABLE,
  GATE_TABLE,
  Ipv6Gate,
  KERNEL_QUOTA_TABLE,
  KernelCounters,
  KernelQuota,
  NftBatcher,
  nftRunner,
  Valve,
  type SpawnFn,
} from '../../src/portal/index.ts';
import type { NftRun } from '../../src/portal/nft-run.ts';
import { PortalStateFile } from '../peers/ndsctl-state.ts';
import { fakeSpawn } from './fake-spawn.ts';
import { lacking, skipTest } from '../helpers/skip.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';

test('merged: batches of one turn in one nft run; when it fails each runs alone with its own outcome', async () => {
  const fake = fakeSpawn([{ code: 0 }, { code: 1, stderr: 'Error: No such file or directory' }, {}, { code: 1 }]);
  const batcher = new NftBatcher(nftRunner(['nft'], 5000, { spawn: fake.spawn }));
  const stdins: string[] = [];
  const run: NftRun = (args, stdin) => {
    if (args[0] === '-f') stdins.push(stdin);
    return batcher.run(args, stdin);
  };
  await Promise.all([run(['-f', '-'], 'add element netdev a s { 1 }\n'), run(['-f', '-'], 'flush set netdev b s')]);
  assert.is(fake.calls.length, 1, 'one nft run for both');
  assert.equal(fake.calls[0], ['nft', '-f', '-']);
  // The second fails merged: each runs again alone; the first is made, the second's caller gets its failure.
  const both = await Promise.allSettled([run(['-f', '-'], 'x\n'), run(['-f', '-'], 'y\n')]);
  assert.equal(
    both.map((r) => r.status),
    ['fulfilled', 'rejected'],
  );
  assert.is(fake.calls.length, 4, 'merged, then each alone');
  assert.equal(batcher.stats(), { runs: 4, batches: 4, split: 1 });
  // A listing is never held back nor merged.
  await run(['-j', 'list', 'quotas'], '').catch(() => undefined);
  assert.equal(fake.calls[4], ['nft', '-j', 'list', 'quotas']);
  assert.ok(stdins.length === 4);
});

const lacks = lacking(['root', 'nft', 'ip']);
if (lacks) {
  skipTest(test, 'one nft run per gate event on the real kernel', lacks, { ciInstalls: true });
} else {
  const id = randomBytes(3).toString('hex');
  const R = `nb-${id}-r`;
  const inR = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', R, ...args], { encoding: 'utf8' });
  const files: PortalStateFile[] = [];
  const valves: Valve[] = [];
  /** The three tables as nft lists them (no handles). */
  const tables = (): string =>
    [COUNTER_TABLE, KERNEL_QUOTA_TABLE, GATE_TABLE].map((t) => inR('nft', 'list', 'table', 'netdev', t)).join('');

  /** The three modules on one batcher (or, `merged` false, each on its own runner), nft's runs counted. */
  async function parts(merged: boolean) {
    const runs: string[][] = [];
    const spawn: SpawnFn = (file, args, options) => {
      runs.push([...args]);
      return nodeSpawn(file, args, options);
    };
    const plain = (): NftRun => nftRunner(['ip', 'netns', 'exec', R, 'nft'], 10_000, { spawn });
    const shared = merged ? new NftBatcher(plain()) : null;
    const run = (): NftRun => shared?.run ?? plain();
    const quota = new KernelQuota({
      run: run(),
      devices: ['lan'],
      session: () => ({ left: 1_000_000, allotment: 1_000_000n }),
    });
    const counters = new KernelCounters({
      command: ['ip', 'netns', 'exec', R, 'nft'],
      devices: ['lan'],
      timeoutMs: 10_000,
      run: run(),
    });
    const gate = new Ipv6Gate({ run: run(), devices: ['lan'] });
    assert.ok(await quota.start());
    assert.ok(await counters.start(() => false));
    assert.ok(await gate.start([]));
    const file = PortalStateFile.create({});
    files.push(file);
    const valve = new Valve({
      command: file.command,
      flavour: 'opennds',
      brake: { beforeAuth: (mac, _ip, limit) => quota.set(mac, limit), afterDeauth: (mac) => quota.remove(mac) },
      counter: { beforeAuth: (mac) => counters.count(mac), afterDeauth: (mac) => counters.uncount(mac) },
      ipv6: gate,
    });
    valves.push(valve);
    return { runs, quota, counters, gate, file, valve, batcher: shared };
  }

  /** A and B opened, then B closed: the nft runs A's opening took and those B's close took. */
  async function openAOpenBCloseB(p: Awaited<ReturnType<typeof parts>>): Promise<{ open: number; close: number }> {
    p.file.addClient(A, '10.0.0.2');
    p.file.addClient(B, '10.0.0.3');
    let before = p.runs.length;
    assert.is(await p.valve.open(A, { dataBytes: 500_000 }), 'opened');
    const open = p.runs.length - before;
    assert.is(await p.valve.open(B, { dataBytes: 700_000 }), 'opened');
    before = p.runs.length;
    assert.is(await p.valve.close(B), 'closed');
    return { open, close: p.runs.length - before };
  }

  test.before(() => {
    execFileSync('ip', ['netns', 'add', R]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
    for (const dev of ['lan', 'lan1']) execFileSync('ip', ['-n', R, 'link', 'set', dev, 'up']);
  });
  test.after(async () => {
    for (const v of valves) await v.destroy();
    for (const f of files) f.cleanup();
    spawnSync('ip', ['netns', 'del', R]);
  });

  test('real nft: one run for an opening, one for the end of a close; tables as if run apart', async () => {
    // Apart: the quota, the counters, the IPv6 gate; the stop, then the release, the quota, the counters.
    assert.equal(await openAOpenBCloseB(await parts(false)), { open: 3, close: 4 });
    const expected = tables();
    // A fresh start for the merged ones (a table left holding A's quota would be carried over as an earlier run's).
    for (const t of [COUNTER_TABLE, KERNEL_QUOTA_TABLE, GATE_TABLE]) inR('nft', 'delete', 'table', 'netdev', t);

    const merged = await parts(true);
    // The quota, the counters and the IPv6 gate in one run before the auth; the stop before the deauth, then release,
    // quota and counters in one run after it.
    assert.equal(await openAOpenBCloseB(merged), { open: 1, close: 2 });
    assert.is(tables(), expected, 'the same tables as one run per module made');
    assert.ok(merged.quota.has(A) && !merged.quota.has(B));
    assert.ok(merged.counters.has(A) && !merged.counters.has(B));
    assert.ok(merged.gate.isOpen(A) && !merged.gate.isOpen(B) && !merged.gate.isStopped(B));
    assert.equal(merged.batcher!.stats().split, 0);
  });

  test('real nft: batches whose calls came in two reads (the second while the first runs) share one run', async () => {
    const runs: string[][] = [];
    const spawn: SpawnFn = (file, args, options) => {
      runs.push([...args]);
      return nodeSpawn(file, args, options);
    };
    const batcher = new NftBatcher(nftRunner(['ip', 'netns', 'exec', R, 'nft'], 10_000, { spawn }));
    inR('nft', 'add table netdev nb_two; add set netdev nb_two s { type ether_addr; }');
    // A bus hands the calls over in pieces: B's is on the socket while A's is handled, read at the next poll.
    const path = join(tmpdir(), `nb-${id}.sock`);
    const made: Array<Promise<string>> = [];
    const server = createServer((conn) =>
      conn.on('data', (chunk) => {
        for (const mac of chunk
          .toString()
          .split(' ')
          .filter((x) => x !== '')) {
          made.push(batcher.run(['-f', '-'], `add element netdev nb_two s { ${mac} }\n`));
          if (mac === A) peer.write(B);
        }
      }),
    );
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const peer = connect(path);
    await new Promise<void>((resolve) => peer.once('connect', resolve));
    peer.write(`${A} `);
    while (made.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all(made);
    peer.destroy();
    server.close();
    rmSync(path, { force: true });
    assert.is(runs.length, 1, 'one nft run for both');
    const set = inR('nft', 'list', 'set', 'netdev', 'nb_two', 's');
    assert.ok(set.includes(A) && set.includes(B), set);
    inR('nft', 'delete', 'table', 'netdev', 'nb_two');
  });

  test("real nft: a module's refused lines fail it alone; the others' changes in the same turn are made", async () => {
    const m = await parts(true);
    m.file.addClient(B, '10.0.0.3');
    // The quota's table deleted behind sluice's back: its lines fail, the merged run with them.
    inR('nft', 'delete', 'table', 'netdev', KERNEL_QUOTA_TABLE);
    assert.is(await m.valve.open(B, { dataBytes: 700_000 }), 'opened');
    assert.is(m.batcher!.stats().split, 1, 'the merged run failed and was run as its parts');
    const counted = inR('nft', 'list', 'map', 'netdev', COUNTER_TABLE, 'cdown');
    assert.ok(counted.includes(B), 'the counters were made');
    assert.ok(m.counters.has(B));
    // The quota made its table again with B's quota in it (its own failure, its own rebuild).
    assert.ok(inR('nft', 'list', 'quotas', 'table', 'netdev', KERNEL_QUOTA_TABLE).includes('q_020000000c02'));
    assert.ok(m.gate.isOpen(B));
  });
}

test.run();
