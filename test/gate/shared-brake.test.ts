// tier: fast
/**
 * The kernel quota at a gate's opening for a device of a multi-device purchase (src/gate/shared-brake.ts): the bytes
 * left are split evenly with the devices the kernel already brakes, their quotas lowered before the new one is set, so
 * the quotas together never let more through than is left. The real KernelQuota over a fake nft that keeps limits
 * and counts as the kernel does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelQuota } from '../../src/portal/kernel-quota.ts';
import { KERNEL_QUOTA_TABLE } from '../../src/portal/kernel-quota-nft.ts';
import { brakeAtOpening, brakedSessionOf } from '../../src/gate/shared-brake.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';
const C = '02:00:00:00:0e:03';
const name = (mac: string): string => `q_${mac.replace(/:/g, '')}`;

function fakeKernel() {
  const used = new Map<string, number>();
  const limits = new Map<string, number>();
  const order: string[] = [];
  let made = false;
  const run = async (args: readonly string[], stdin: string): Promise<string> => {
    if (stdin.includes(`table netdev ${KERNEL_QUOTA_TABLE} {`)) made = true;
    if (args[0] === '-j') {
      if (args[2] === 'table' && !made) throw new Error('nft failed (exit 1): Error: No such file or directory');
      return JSON.stringify({
        nftables: [...limits].map(([n, bytes]) => ({
          quota: { family: 'netdev', name: n, table: KERNEL_QUOTA_TABLE, bytes, used: used.get(n) ?? 0 },
        })),
      });
    }
    // A deleted quota goes with its count; `add` of an existing one changes its limit only (the count goes on).
    for (const m of stdin.matchAll(/delete quota netdev sluice_quota (q_\w+)/g)) {
      limits.delete(m[1]!);
      used.delete(m[1]!);
    }
    for (const m of stdin.matchAll(/add quota netdev sluice_quota (q_\w+) \{ over (\d+) bytes \}/g)) {
      limits.set(m[1]!, Number(m[2]));
      order.push(m[1]!);
    }
    return '';
  };
  /** What the kernel still lets through, all quotas together. */
  const open = (): number => [...limits].reduce((sum, [n, l]) => sum + Math.max(0, l - (used.get(n) ?? 0)), 0);
  return { run, used, limits, order, open };
}

test(
  'a joining device gets an even share of what is left, ' + 'and the braked device is lowered to its share first',
  async () => {
    const k = fakeKernel();
    const session = { mac: A, devices: [B] as string[] };
    const kq = new KernelQuota({
      devices: ['lan'],
      run: k.run,
      session: () => ({ left: 1_000_000, allotment: 1_000_000n }),
    });
    assert.ok(await kq.start());
    await brakeAtOpening(kq, () => ({ mac: A }), A, 1_000_000);
    assert.is(k.limits.get(name(A)), 1_000_000, 'alone, the buyer gets all that is left');
    k.used.set(name(A), 300_000); // A downloads, the meter bills it: 700,000 left when B's gate opens
    kq.noteBilled(A, 300_000);
    k.order.length = 0;
    await brakeAtOpening(kq, () => session, B, 700_000);
    assert.is(k.limits.get(name(A)), 300_000 + 350_000, 'A: its count so far plus half of what is left');
    assert.is(k.open(), 700_000, 'together, no more than what is left');
    assert.is(k.order[0], name(A), 'the braked device is lowered before the new quota exists');
    // A third device: three shares of what is left then.
    k.used.set(name(B), 100_000);
    kq.noteBilled(B, 100_000);
    await brakeAtOpening(kq, () => ({ mac: A, devices: [B, C] }), C, 600_000);
    assert.ok(k.open() <= 600_000, `three devices: ${k.open()} B open of 600000 left`);
    assert.ok(k.open() >= 600_000 - 3, 'whole bytes, nothing more lost');
  },
);

test('one device, a device with no known address, a shared session whose other devices are not braked', async () => {
  const k = fakeKernel();
  const kq = new KernelQuota({ devices: ['lan'], run: k.run, session: () => ({ left: 500, allotment: 500n }) });
  assert.ok(await kq.start());
  await brakeAtOpening(kq, () => null, A, 500);
  assert.is(k.limits.get(name(A)), 500);
  await brakeAtOpening(kq, () => ({ mac: C, devices: [B] }), B, 400);
  assert.is(k.limits.get(name(B)), 400, 'C is not braked: B gets all that is left');
  await brakeAtOpening(kq, () => ({ mac: A, devices: [C] }), C, 300);
  // Braked by its MAC, a device needs no address: C and A split what is left (a quota by address left C unbraked).
  assert.equal([k.limits.get(name(A)), k.limits.get(name(C))], [150, 150]);
  assert.ok(kq.has(C));
});

test(
  'set from the session alone (a used-up quota at a top-up, a rebuilt table), each device of a shared purchase gets ' +
    'an even part of what is left, not all of it',
  async () => {
    const now = { t: 1_795_221_800_000 };
    const sessions = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
    try {
      const { session } = await sessions.activate({
        mac: A,
        metric: 'bytes',
        allotment: 1_000_000n,
        devices: 2,
        payment: { method: 'grant', reference: 'brake-even', amount: 1n, asset: 'X', at: 1 },
      });
      await sessions.joinDevice(sessions.joinCode(session.id)!, B);
      const of = brakedSessionOf(sessions, () => now.t);
      assert.equal(of(A), { left: 500_000, allotment: 1_000_000n, devices: 2 });
      assert.equal(of(B), { left: 500_000, allotment: 1_000_000n, devices: 2 }, 'the joined device too');
      assert.is(of(C), null, 'no session');
      const k = fakeKernel();
      const kq = new KernelQuota({ devices: ['lan'], run: k.run, session: of });
      assert.ok(await kq.start());
      await brakeAtOpening(kq, (m) => sessions.byMac(m), A, 1_000_000);
      await brakeAtOpening(kq, (m) => sessions.byMac(m), B, 1_000_000);
      assert.is(k.open(), 1_000_000);
      // A top-up of 200,000 while both still pass: each raised by its part of it, together no more than what is left.
      k.used.set(name(A), 100_000);
      const first = { method: 'grant', reference: 'brake-even-1', amount: 1n, asset: 'X', at: 2 } as const;
      assert.ok((await sessions.activate({ mac: A, metric: 'bytes', allotment: 200_000n, payment: first })).toppedUp);
      await kq.toppedUp(A);
      await kq.toppedUp(B);
      assert.is(k.limits.get(name(A)), 600_000);
      assert.is(k.open(), 1_100_000, '1,200,000 left less the 100,000 A passed');
      // Both stopped by their shares, then another top-up: fresh counts, together no more than what is left.
      for (const mac of [A, B]) k.used.set(name(mac), k.limits.get(name(mac))!);
      const topUp = { method: 'grant', reference: 'brake-even-2', amount: 1n, asset: 'X', at: 3 } as const;
      const { toppedUp } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 200_000n, payment: topUp });
      assert.ok(toppedUp);
      await kq.toppedUp(A);
      await kq.toppedUp(B);
      const left = Number(sessions.remaining(session.id));
      assert.ok(k.open() <= left, `the quotas let ${k.open()} B through together, ${left} B left`);
      assert.ok(k.open() >= left - 2, 'and no less');
    } finally {
      await sessions.close();
    }
  },
);

test.run();
