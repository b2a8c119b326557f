/**
 * The soft landing (portal/soft-landing.ts): the scripts, its failures kept away from the quota, and against the real
 * kernel (a network namespace of its own) that the policer runs before the quota, so what it drops is never counted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KernelQuota, KERNEL_QUOTA_TABLE, nftRunner, type NftRun } from '../../src/portal/kernel-quota.ts';
import {
  LANDING_BUCKET_BYTES, LANDING_TABLE, SoftLanding, landingTableScript, liftScript, slowScript,
} from '../../src/portal/soft-landing.ts';
import { SluiceError } from '../../src/errors.ts';
import { recordingLog } from '../helpers/log.ts';

const A = '02:00:00:00:0c:01';

test('scripts: its own table, a chain just before the quota, a limit per client by download address', () => {
  const table = landingTableScript();
  assert.match(table, /^add table inet sluice_landing\ndelete table inet sluice_landing\ntable inet sluice_landing \{/);
  assert.match(table, /hook postrouting priority raw - 1; policy accept; limit name ip daddr map @down drop;/);
  assert.not.match(table, new RegExp(KERNEL_QUOTA_TABLE), 'nothing of the quota table');
  assert.equal(slowScript(A, '10.0.0.5').split('\n'), [
    'add limit inet sluice_landing l_020000000c01 { rate over 128 kbytes/second }',
    'add element inet sluice_landing down { 10.0.0.5 : "l_020000000c01" }',
    '',
  ]);
  assert.equal(liftScript(A, '10.0.0.5').split('\n'), [
    'delete element inet sluice_landing down { 10.0.0.5 }',
    'delete limit inet sluice_landing l_020000000c01',
    '',
  ]);
});

/** A fake nft: records each script, fails those matching `fail`. */
function fakeNft(fail: RegExp | null = null): { run: NftRun; scripts: string[] } {
  const scripts: string[] = [];
  return {
    scripts,
    run: async (args, stdin) => {
      const text = stdin || args.join(' ');
      scripts.push(text);
      if (fail !== null && fail.test(text)) throw new SluiceError('ERR_KERNEL_QUOTA', 'nft failed (exit 1): Error: Could not process rule');
      if (args.includes('-j')) return JSON.stringify({ nftables: [] });
      return '';
    },
  };
}

test('the quota slows a client through the landing once, lifts it at removal and at a top-up; the landing\'s failures never touch the quota', async () => {
  const nft = fakeNft(/sluice_landing/);
  const logs: string[] = [];
  const log = recordingLog((_l, m) => logs.push(m));
  let allotment = 10_000n;
  const kq = new KernelQuota({ run: nft.run, log, session: () => ({ left: 1000, allotment }), landing: new SoftLanding({ run: nft.run, log }) });
  assert.ok(await kq.start());
  await kq.set(A, '10.0.0.5', 1000);
  const before = nft.scripts.length;
  kq.slow(A);
  kq.slow(A);
  await kq.set(A, '10.0.0.5', 1000); // queued after: the landing's work has run by then
  const landing = nft.scripts.slice(before).filter((s) => s.includes(LANDING_TABLE));
  assert.is(landing.length, 1, 'the table is tried once; failed, the landing is off');
  assert.ok(kq.has(A), 'the quota stays');
  assert.is(kq.stats().failures, 0, 'no quota change failed: no rebuild');
  assert.not.ok(nft.scripts.some((s) => s.startsWith('add table inet sluice_quota\ndelete table')) && nft.scripts.filter((s) => s.includes('table inet sluice_quota {')).length > 1, 'the quota table was not rebuilt');
  assert.ok(logs.some((m) => m.startsWith('soft landing off')));

  // A working landing: slowed once however many readings ask, lifted by a top-up and by the removal.
  const ok = fakeNft();
  const kq2 = new KernelQuota({ run: ok.run, session: () => ({ left: 1000, allotment }), landing: new SoftLanding({ run: ok.run }) });
  assert.ok(await kq2.start());
  await kq2.set(A, '10.0.0.5', 1000);
  kq2.slow(A);
  kq2.slow(A);
  kq2.slow('02:00:00:00:0c:09'); // no quota: nothing to slow
  await kq2.set(A, '10.0.0.5', 1000);
  assert.is(ok.scripts.filter((s) => s.includes('add limit inet sluice_landing')).length, 1);
  assert.ok(ok.scripts.some((s) => s.includes('l_020000000c01') && s.includes('10.0.0.5')));
  assert.is(kq2.stats().slowed, 1);
  allotment += 5000n;
  await kq2.toppedUp(A);
  await kq2.set(A, '10.0.0.5', 1000);
  assert.is(ok.scripts.filter((s) => s.startsWith('delete element inet sluice_landing down { 10.0.0.5 }')).length, 1, 'a top-up lifts it');
  kq2.slow(A);
  await kq2.remove(A);
  await kq2.set(A, '10.0.0.6', 1000);
  assert.is(ok.scripts.filter((s) => s.startsWith('delete element inet sluice_landing down')).length, 2, 'the gate\'s close lifts it');
  assert.is(kq2.stats().slowed, 0);
});

test('a client whose slow-down fails is not tried again until lifted; the landing never throws', async () => {
  const nft = fakeNft(/add limit/);
  const logs: string[] = [];
  const landing = new SoftLanding({ run: nft.run, log: recordingLog((_l, m) => logs.push(m)) });
  await landing.slow(A, '10.0.0.5');
  await landing.slow(A, '10.0.0.5');
  assert.is(nft.scripts.filter((s) => s.includes('add limit')).length, 1);
  assert.is(logs.filter((m) => m.startsWith('soft landing: cannot slow')).length, 1);
  assert.not.ok(landing.isSlowed(A));
  await landing.lift(A);
  await landing.slow(A, '10.0.0.5');
  assert.is(nft.scripts.filter((s) => s.includes('add limit')).length, 2, 'tried again after a lift');
  await landing.slow('02:00:00:00:0c:02', 'fe80::1');
  assert.is(nft.scripts.filter((s) => s.includes('fe80')).length, 0, 'IPv4 only');
});

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;

if (!root || !haveNft || !haveIp) {
  console.log(`SKIP soft landing against the real kernel: needs root, nft and ip (root=${root} nft=${haveNft} ip=${haveIp})`);
} else {
  const ns = `sluice-sl-${randomBytes(3).toString('hex')}`;
  const inNs = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
  /** Sends `n` UDP datagrams of 1000 IP bytes at once to a bound socket on 127.0.0.1; returns how many got out. */
  const send = (n: number): number => Number(inNs('python3', ['-c', `
import socket
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(('127.0.0.1', 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ok = 0
for i in range(${n}):
    try:
        s.sendto(b'x' * 972, r.getsockname())
        ok += 1
    except PermissionError:
        pass
print(ok)`]).trim());

  test.before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    inNs('ip', ['link', 'set', 'lo', 'up']);
  });
  test.after(() => { spawnSync('ip', ['netns', 'del', ns]); });

  test('real kernel: a slowed client gets its burst at once and the rest is dropped before the quota counts it; lifted, it passes again', async () => {
    const run = nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000);
    const landing = new SoftLanding({ run });
    const kq = new KernelQuota({ run, session: () => ({ left: 1_000_000, allotment: 1_000_000n }), landing });
    assert.ok(await kq.start());
    await kq.set(A, '127.0.0.1', 1_000_000);
    kq.slow(A);
    await landing.slow(A, '127.0.0.1'); // queued behind the first: done once that is
    assert.ok(landing.isSlowed(A));
    const passed = send(200);
    // The bucket (a second of the rate, 128 KiB) and what the rate refills while python sends: far below the 200 sent.
    assert.ok(passed >= 128 && passed < 180, `${passed} of 200 passed the policer`);
    const quotas = JSON.parse(inNs('nft', ['-j', 'list', 'quotas', 'table', 'inet', KERNEL_QUOTA_TABLE])) as { nftables: Array<{ quota?: { used?: number } }> };
    const used = quotas.nftables.find((x) => x.quota)?.quota?.used ?? 0;
    assert.is(used, passed * 1000, 'the quota counted only what the policer let through');
    assert.ok(LANDING_BUCKET_BYTES <= passed * 1000 + 1000);
    await kq.remove(A);
    assert.is(send(200), 200, 'lifted with the quota: nothing dropped');
    assert.match(inNs('nft', ['list', 'table', 'inet', LANDING_TABLE]), /map down/);
    assert.not.match(inNs('nft', ['list', 'table', 'inet', LANDING_TABLE]), /l_020000000c01/);
  });
}

test.run();
