// tier: fast
/**
 * KernelQuota.share: the devices of one purchase splitting its bytes left. Each quota's new limit is the kernel's
 * count so far plus the device's share (one read, one batch), so what the kernel lets through from now is the share
 * exactly, whatever each device passed since its gate opened. nft is a fake that answers like the real one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelQuota } from '../../src/portal/kernel-quota.ts';
import { KERNEL_QUOTA_TABLE } from '../../src/portal/kernel-quota-nft.ts';

const A = '02:00:00:00:0d:01';
const B = '02:00:00:00:0d:02';

/**
 * nft as a fake that answers like the real one: each quota's limit and what it counted, by quota name, listed no more
 * than its limit (the kernel counts the packets it drops too, and lists the limit); a deleted quota's count goes.
 */
function fakeNft(used = new Map<string, number>()) {
  const limits = new Map<string, number>();
  const scripts: string[] = [];
  const calls: string[][] = [];
  let made = false;
  const run = async (args: readonly string[], stdin: string): Promise<string> => {
    calls.push([...args]);
    if (stdin.includes(`table netdev ${KERNEL_QUOTA_TABLE} {`)) made = true;
    if (args[0] === '-j') {
      if (args[2] === 'table' && !made) throw new Error('nft failed (exit 1): Error: No such file or directory');
      return JSON.stringify({
        nftables: [...limits].map(([name, bytes]) => ({
          quota: {
            family: 'netdev',
            name,
            table: KERNEL_QUOTA_TABLE,
            bytes,
            used: Math.min(bytes, used.get(name) ?? 0),
          },
        })),
      });
    }
    for (const m of stdin.matchAll(/delete quota netdev sluice_quota (q_\w+)/g)) used.delete(m[1]!);
    for (const m of stdin.matchAll(/add quota netdev sluice_quota (q_\w+) \{ over (\d+) bytes \}/g))
      limits.set(m[1]!, Number(m[2]));
    scripts.push(stdin);
    return '';
  };
  return { used, limits, scripts, calls, run };
}

test('share: each limit set to the kernel count plus the share, both in one batch after one read', async () => {
  const { scripts, calls, run } = fakeNft(
    new Map([
      ['q_020000000d01', 300_000],
      ['q_020000000d02', 50_000],
    ]),
  );
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 1_000_000, allotment: 1_000_000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 1_000_000);
  await kq.set(B, 1_000_000);
  kq.noteBilled(A, 300_000); // the meter billed what the kernel counted
  kq.noteBilled(B, 50_000);
  scripts.length = 0;
  calls.length = 0;
  await kq.share([
    { mac: A, shareBytes: 500_000.6 },
    { mac: B, shareBytes: 150_000 },
    { mac: '02:00:00:00:0d:09', shareBytes: 7 },
  ]);
  assert.is(calls.filter((c) => c[0] === '-j').length, 1, 'one read of the counts');
  assert.is(scripts.length, 1, 'one change for both');
  assert.is(
    scripts[0],
    'add quota netdev sluice_quota q_020000000d01 { over 800000 bytes }\n' +
      'add quota netdev sluice_quota q_020000000d02 { over 200000 bytes }\n',
  );
  // Unchanged limits are not written again.
  scripts.length = 0;
  await kq.share([{ mac: A, shareBytes: 500_000 }]);
  assert.is(scripts.length, 0);
});

test(
  'share: what the kernel counted beyond the bytes billed ' + 'comes off the share (it passed after the reading)',
  async () => {
    const { used, limits, run } = fakeNft();
    const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 1_000_000, allotment: 1_000_000n }) });
    assert.ok(await kq.start());
    await kq.set(A, 500_000);
    await kq.set(B, 500_000);
    // The meter's reading billed A 200,000 and B 100,000; by the split the kernel has counted 260,000 and 100,000.
    kq.noteBilled(A, 200_000);
    kq.noteBilled(B, 100_000);
    used.set('q_020000000d01', 260_000);
    used.set('q_020000000d02', 100_000);
    await kq.share([
      { mac: A, shareBytes: 400_000 },
      { mac: B, shareBytes: 300_000 },
    ]);
    assert.is(
      limits.get('q_020000000d01'),
      260_000 + 400_000 - 60_000,
      'A: the 60,000 it passed since the reading come off',
    );
    assert.is(limits.get('q_020000000d02'), 100_000 + 300_000, 'B: nothing unbilled');
    // A share smaller than what passed unbilled: the client is stopped (no negative share). Its quota used up (the
    // kernel lists no more than the limit), it gets a fresh count with nothing in it.
    kq.noteBilled(A, 10_000);
    used.set('q_020000000d01', 600_000);
    await kq.share([{ mac: A, shareBytes: 100_000 }]);
    assert.is(limits.get('q_020000000d01'), 0);
    // A fresh install starts a new count: what was billed before it no longer offsets anything.
    await kq.set(A, 50_000);
    used.set('q_020000000d01', 20_000);
    await kq.share([{ mac: A, shareBytes: 30_000 }]);
    assert.is(
      limits.get('q_020000000d01'),
      20_000 + 30_000 - 20_000,
      'billed 0 since the new quota: its 20,000 count against the share',
    );
  },
);

test('share: a quota used up gets a fresh count of its share, less what passed unbilled, which is owed', async () => {
  const { used, limits, scripts, run } = fakeNft();
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 1_000_000, allotment: 1_000_000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 300_000);
  await kq.set(B, 300_000);
  // A used up its 300,000 and was sent 50,000 more, dropped; the meter billed 280,000 of it. B is under its limit.
  kq.noteBilled(A, 280_000);
  used.set('q_020000000d01', 350_000);
  used.set('q_020000000d02', 100_000);
  kq.noteBilled(B, 100_000);
  scripts.length = 0;
  await kq.share([
    { mac: A, shareBytes: 200_000 },
    { mac: B, shareBytes: 100_000 },
  ]);
  assert.is(scripts.length, 1, 'one change for both');
  assert.match(
    scripts[0]!,
    /delete quota netdev sluice_quota q_020000000d01\nadd quota netdev sluice_quota q_020000000d01/,
  );
  assert.is(
    limits.get('q_020000000d01'),
    200_000 - 20_000,
    'A: a fresh count; the 20,000 unbilled come off, not the 50,000 dropped',
  );
  assert.is(limits.get('q_020000000d02'), 100_000 + 100_000, 'B: its count goes on');
  // The meter bills A's 20,000 and 30,000 of the new count: the owed 20,000 are the old count's.
  kq.noteBilled(A, 50_000);
  used.set('q_020000000d01', 30_000);
  await kq.share([{ mac: A, shareBytes: 100_000 }]);
  assert.is(limits.get('q_020000000d01'), 30_000 + 100_000, 'nothing unbilled in the new count');
});

test('share: a device stopped at each split gets its share less one dropped packet each time, not more', async () => {
  // Each tick A passes its whole fresh quota but the packet the kernel drops at the limit (DROP bytes short), the
  // meter's reading after the stop bills exactly what passed, and the split finds A used up. What came off for the
  // dropped packet must not be charged again at the next stop (paid off by the new count's bytes, then counted as
  // unbilled of that count): each stop would take another packet off, until A got nothing at all.
  const DROP = 1_500;
  const SHARE = 200_000;
  const { used, limits, run } = fakeNft();
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 10_000_000, allotment: 10_000_000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 300_000);
  const got: number[] = [];
  for (let stop = 0; stop < 10; stop++) {
    const limit = limits.get('q_020000000d01')!;
    kq.noteBilled(A, limit - DROP);
    used.set('q_020000000d01', limit + DROP);
    await kq.share([{ mac: A, shareBytes: SHARE }]);
    got.push(limits.get('q_020000000d01')!);
  }
  assert.equal(got, Array(10).fill(SHARE - DROP), 'the same share each stop, less the one packet dropped at the limit');
});

test('share: a fresh quota of 0 (a share smaller than what passed unbilled) gets the next share whole', async () => {
  const { used, limits, run } = fakeNft();
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 1_000_000, allotment: 1_000_000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 100_000);
  kq.noteBilled(A, 40_000);
  used.set('q_020000000d01', 100_000); // 60,000 passed after the reading, more than the next share
  await kq.share([{ mac: A, shareBytes: 50_000 }]);
  assert.is(limits.get('q_020000000d01'), 0, 'stopped: its share already passed');
  // The next reading bills the 60,000 (owed); nothing passed under the quota of 0, which the kernel lists used up.
  kq.noteBilled(A, 60_000);
  await kq.share([{ mac: A, shareBytes: 80_000 }]);
  assert.is(limits.get('q_020000000d01'), 80_000, 'not stopped again: nothing of the quota of 0 was unbilled');
  kq.noteBilled(A, 30_000);
  used.set('q_020000000d01', 30_000);
  await kq.share([{ mac: A, shareBytes: 70_000 }]);
  assert.is(limits.get('q_020000000d01'), 30_000 + 70_000, 'the owed bytes were paid before: none come off');
});

test('share: real bytes owed at one stop can make the next stop short of them once, not after', async () => {
  const Q = 'q_020000000d01';
  const { used, limits, run } = fakeNft();
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => ({ left: 10_000_000, allotment: 10_000_000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 300_000);
  // Billed 250,000; after the reading A passes 49,000 more and the kernel drops a 1,000-byte packet at the limit.
  kq.noteBilled(A, 250_000);
  used.set(Q, 301_000);
  await kq.share([{ mac: A, shareBytes: 200_000 }]);
  assert.is(limits.get(Q), 200_000 - 50_000, 'the 49,000 that passed, and the dropped packet, owed');
  // The next reading bills those 49,000 and 100,000 of the new count; after it A passes 49,000 more, and the kernel
  // drops a 1,000-byte packet. The billings cannot tell the old count's bytes from the new one's: reckoned from all
  // billed since the install, the new count has 1,000 unbilled where it has 49,000 (the price of not adding up).
  kq.noteBilled(A, 149_000);
  used.set(Q, 151_000);
  await kq.share([{ mac: A, shareBytes: 200_000 }]);
  const second = limits.get(Q)!;
  assert.is(second, 200_000 - 1_000, '48,000 more than exact (151,000), this once');
  // Stopped before the reading this time (all it passed billed, the last count's 49,000 first): nothing unbilled,
  // its share whole; neither that shortfall nor any dropped packet carried on.
  kq.noteBilled(A, 49_000 + (second - 1_500));
  used.set(Q, second + 1_500);
  await kq.share([{ mac: A, shareBytes: 200_000 }]);
  assert.is(limits.get(Q), 200_000);
  kq.noteBilled(A, 200_000 - 1_500);
  used.set(Q, 200_000 + 1_500);
  await kq.share([{ mac: A, shareBytes: 200_000 }]);
  assert.is(limits.get(Q), 200_000 - 1_500, 'and again: its share less the packet dropped');
});

test('share: a read that fails changes nothing and throws nothing; off, it is a no-op', async () => {
  let fail = false;
  const scripts: string[] = [];
  let made = false;
  const run = async (args: readonly string[], stdin: string): Promise<string> => {
    if (stdin.includes(`table netdev ${KERNEL_QUOTA_TABLE} {`)) made = true;
    if (args[0] === '-j') {
      if (args[2] === 'table' && !made) throw new Error('no table');
      if (fail) throw new Error('nft failed (exit 1)');
      return JSON.stringify({ nftables: [] });
    }
    scripts.push(stdin);
    return '';
  };
  const kq = new KernelQuota({ devices: ['lan'], run, session: () => null });
  await kq.share([{ mac: A, shareBytes: 5 }]);
  assert.is(scripts.length, 0, 'not started: nothing');
  assert.ok(await kq.start());
  await kq.set(A, 1000);
  scripts.length = 0;
  fail = true;
  await kq.share([{ mac: A, shareBytes: 5 }]);
  assert.is(scripts.length, 0);
});

test.run();
