// tier: fast
// Several devices per purchase under the kernel quota: after each tick the session's bytes left are split among its
// devices' quotas, so what the kernel still lets the devices through together never exceeds the session's bytes left
// (a quota installed at each gate's opening with the whole bytes left would let two devices pass twice the allotment).
// The kernel is a model here (count and limit per client); test/portal/kernel-quota-share.test.ts has the nft side.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KERNEL_AUDIT_MS } from '../../src/meter/brake-watch.ts';
import { splitShares } from '../../src/meter/shared-quota.ts';
import { socketMeter } from './socket-meter.ts';

const A = '02:00:00:00:00:2a';
const B = '02:00:00:00:00:2b';
const C = '02:00:00:00:00:2c';
const K = 1024;

test('splitShares: whole bytes adding up to at most what is left, by demand, an idle device keeping a part', () => {
  const s = splitShares(100_000, [
    { mac: A, bytes: 30_000 },
    { mac: B, bytes: 0 },
  ]);
  const sum = [...s.values()].reduce((a, b) => a + b, 0);
  assert.ok(sum <= 100_000 && sum >= 99_998, `sum ${sum}`);
  assert.is(s.get(B), 12_500, 'the idle device keeps an even part of a quarter');
  assert.is(s.get(A), 87_500);
  assert.equal(
    [
      ...splitShares(10, [
        { mac: A, bytes: 0 },
        { mac: B, bytes: 0 },
        { mac: C, bytes: 0 },
      ]).values(),
    ],
    [3, 3, 3],
  );
  assert.equal([...splitShares(-5, [{ mac: A, bytes: 1 }]).values()], [0], 'nothing left: nothing more through');
  assert.equal([...splitShares(7777.9, [{ mac: A, bytes: 5 }]).values()], [7777], 'one device: all of it');
  assert.is(splitShares(1000, []).size, 0);
});

/** The kernel's quotas as a model: a count and a limit per client; `share` sets limit = count + share. */
function kernelModel() {
  const q = new Map<string, { used: number; limit: number }>();
  const shares: Array<Array<{ mac: string; shareBytes: number }>> = [];
  return {
    q,
    shares,
    install(mac: string, limit: number) {
      q.set(mac, { used: 0, limit });
    },
    pass(mac: string, bytes: number): number {
      const e = q.get(mac)!;
      const through = Math.max(0, Math.min(bytes, e.limit - e.used));
      e.used += through;
      return through;
    },
    /** What every quota still lets through, together. */
    open(): number {
      return [...q.values()].reduce((sum, e) => sum + Math.max(0, e.limit - e.used), 0);
    },
    port: {
      has: (mac: string) => q.has(mac),
      usedUp: async () => new Set([...q].filter(([, e]) => e.used >= e.limit).map(([mac]) => mac)),
      share: async (list: ReadonlyArray<{ mac: string; shareBytes: number }>) => {
        shares.push([...list]);
        for (const { mac, shareBytes } of list) {
          const e = q.get(mac);
          if (e) e.limit = e.used + shareBytes;
        }
      },
    },
  };
}

type Rig = Awaited<ReturnType<typeof rig>>;

async function rig() {
  const kernel = kernelModel();
  const r = await socketMeter('shared-quota', kernel.port);
  /** Traffic through the kernel first, as on a router: the portal counts only what the quota let through. */
  const traffic = (mac: string, bytes: number) => r.portal.addTraffic(mac, kernel.pass(mac, bytes), 0);
  return { ...r, kernel, traffic };
}

/** A and B listed by the portal, then a data purchase for two devices bought by A (B has not joined yet). */
async function sharedSession(r: Rig, allotment: bigint, reference: string): Promise<{ id: string }> {
  r.portal.addClient(A, '10.2.0.1');
  r.portal.addClient(B, '10.2.0.2');
  r.now.t += 1000;
  const { session } = await r.sessions.activate({
    mac: A,
    metric: 'bytes',
    allotment,
    devices: 2,
    payment: { method: 'grant', reference, amount: 1n, asset: 'X', at: 1 },
  });
  return session;
}

test(
  'two devices under the kernel quota: after a tick their ' + 'quotas together let through no more than the bytes left',
  async () => {
    const r = await rig();
    try {
      const session = await sharedSession(r, 400n * K_BIG, 'shared-q');
      // Each gate opens with a quota of what the session has left then (the valve's brake).
      r.kernel.install(A, Number(r.sessions.remaining(session.id)));
      r.portal.auth(A);
      r.now.t += 10;
      await r.meter.tick();
      await r.sessions.joinDevice(r.sessions.joinCode(session.id)!, B);
      assert.equal(r.port.sharedDevices?.(session.id), [A, B]);
      r.kernel.install(B, Number(r.sessions.remaining(session.id)));
      r.portal.auth(B);
      r.now.t += 10;
      await r.meter.tick();
      r.traffic(A, 100 * K);
      r.traffic(B, 40 * K);
      r.now.t += 1000;
      await r.meter.tick();
      const left = Number(r.sessions.remaining(session.id));
      assert.is(left, 260 * K);
      assert.ok(r.kernel.open() <= left, `the quotas let ${r.kernel.open()} B through together, ${left} B left`);
      assert.ok(r.kernel.open() >= left - 2, 'and no less (whole bytes)');
      // The devices then send all they can: together they stop at the allotment.
      r.traffic(A, 10_000 * K);
      r.traffic(B, 10_000 * K);
      const passed = r.kernel.q.get(A)!.used + r.kernel.q.get(B)!.used;
      assert.ok(passed <= 400 * K, `passed ${passed} B of a 400 KiB allotment`);
      r.now.t += 1000;
      await r.meter.tick();
      assert.ok(r.kernel.shares.length >= 1);
    } finally {
      await r.close();
    }
  },
);

test('a device leaving: the session is one device again and its quota is no longer split', async () => {
  const r = await rig();
  try {
    const session = await sharedSession(r, 400n * K_BIG, 'shared-r');
    await r.sessions.joinDevice(r.sessions.joinCode(session.id)!, B);
    assert.equal(r.port.sharedDevices?.(session.id), [A, B]);
    await r.sessions.removeDevice(session.id, B);
    assert.is(r.port.sharedDevices?.(session.id), undefined);
    r.kernel.install(A, Number(r.sessions.remaining(session.id)));
    r.portal.auth(A);
    r.now.t += 10;
    await r.meter.tick();
    r.traffic(A, 50 * K);
    r.now.t += 1000;
    await r.meter.tick();
    assert.is(
      r.kernel.shares.length,
      0,
      'a single device keeps the quota of its gate opening (the single-device path)',
    );
  } finally {
    await r.close();
  }
});

/**
 * sharedSession with B joined, both gates open with a quota of what is left then (as the valve's brake sets them
 * without a split), and the meter's base readings taken.
 */
async function bothBraked(r: Rig, allotment: bigint, reference: string): Promise<{ id: string }> {
  const session = await sharedSession(r, allotment, reference);
  await r.sessions.joinDevice(r.sessions.joinCode(session.id)!, B);
  for (const mac of [A, B]) {
    r.kernel.install(mac, Number(r.sessions.remaining(session.id)));
    r.portal.auth(mac);
  }
  r.now.t += 10;
  await r.meter.tick(); // base readings
  return session;
}

test(
  'near the end, the kernel stopping either device ends ' + 'the shared session (not only the device first watched)',
  async () => {
    const r = await rig();
    try {
      const session = await bothBraked(r, 200n * K_BIG, 'shared-e');
      r.traffic(A, 150 * K); // 50 KiB left: watched from A's reading; split 43.75 / 6.25 KiB
      r.now.t += 1000;
      await r.meter.tick();
      assert.is(r.kernel.q.get(B)!.limit, 6400);
      r.traffic(B, 10 * K); // the kernel stops B at its share
      r.traffic(A, 40 * K);
      r.now.t += 1000;
      await r.meter.tick();
      const s = r.sessions.get(session.id)!;
      assert.is(s.state, 'EXPIRED', 'ended: B is stopped and 4 KiB is all that is left');
      assert.is(r.meter.stats().kernel_quota_ends, 1, 'by the kernel stop');
    } finally {
      await r.close();
    }
  },
);

test(
  'a device stopped by its share far from the end while the others idle: the audit splits the bytes left again, and ' +
    'the session is not ended with them billed',
  async () => {
    const r = await rig();
    try {
      const session = await bothBraked(r, 400n * K_BIG, 'shared-s');
      r.traffic(A, 100 * K);
      r.now.t += 1000;
      await r.meter.tick();
      const left = Number(r.sessions.remaining(session.id));
      assert.is(left, 300 * K);
      // A's share used up (a share the kernel's dropped packet ate, kernel-quota.ts), B idle: no tick bills anything,
      // so no split comes after it.
      const a = r.kernel.q.get(A)!;
      a.limit = a.used;
      const splits = r.kernel.shares.length;
      for (let i = 0; i < 3; i++) {
        r.now.t += KERNEL_AUDIT_MS;
        await r.meter.tick();
      }
      const s = r.sessions.get(session.id)!;
      assert.is(s.state, 'ACTIVE', 'the 300 KiB left are not billed for bytes that never passed');
      assert.is(Number(r.sessions.remaining(session.id)), left);
      assert.ok(r.kernel.shares.length > splits, 'split again');
      assert.ok(a.limit > a.used, `A may pass again (${a.used} of ${a.limit})`);
      assert.ok(r.kernel.open() <= left, `the quotas let ${r.kernel.open()} B through together, ${left} B left`);
      assert.is(r.meter.stats().kernel_quota_unbilled_ends, 0);
      // A passes what it can: billed, and the devices together still stop at the allotment.
      r.traffic(A, 10_000 * K);
      r.traffic(B, 10_000 * K);
      assert.ok(a.used + r.kernel.q.get(B)!.used <= 400 * K);
    } finally {
      await r.close();
    }
  },
);

const K_BIG = 1024n;

test.run();
