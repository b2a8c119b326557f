// tier: fast
// The one usage path: SessionManager.applyUsage (by session id, numbers in arrays, nothing allocated per client), its
// billing rules, and a Meter on it billing exactly what the portal counted after each purchase, across slices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sessionManagerPort, type TickReport } from '../../src/meter/index.ts';
import { SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { socketMeter } from './socket-meter.ts';

/** Two hex digits of a number's low byte, for a MAC's part. */
const hexByte = (n: number): string => (n & 255).toString(16).padStart(2, '0');

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

async function manager(now = { t: 1_795_221_800_000 }): Promise<SessionManager> {
  return SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
}

let ref = 0;
async function buy(
  m: SessionManager,
  mac: string,
  allotment: bigint,
  metric: 'bytes' | 'seconds' = 'bytes',
): Promise<Session> {
  const { session } = await m.activate({
    mac,
    metric,
    allotment,
    payment: { method: 'grant', reference: `r${++ref}`, amount: 1n, asset: 'X', at: 1 },
  });
  return session;
}

test('applyUsage adds bytes by session id to data and time sessions and writes what each may still use', async () => {
  const m = await manager();
  const data = await buy(m, A, 10_000n);
  const time = await buy(m, B, 3600n, 'seconds');
  const remaining = new Float64Array(2);
  const ended = m.applyUsage([data.id, time.id], new Float64Array([1234, 999]), 2, remaining);
  assert.equal(ended, []);
  assert.is(m.byMac(A)!.used, 1234);
  assert.is(m.byMac(A)!.bytes, 1234);
  assert.is(m.byMac(B)!.bytes, 999);
  assert.is(remaining[0], 10_000 - 1234);
  assert.is(remaining[1], Infinity, 'a time session has no byte limit');
  await m.close();
});

test('applyUsage ends a data session at its allotment with data-limit and reports 0 left', async () => {
  const m = await manager();
  const s = await buy(m, A, 1000n);
  const remaining = new Float64Array(1);
  const ended = m.applyUsage([s.id], [1500], 1, remaining);
  assert.is(ended.length, 1);
  assert.is(ended[0]!.endCause, 'data-limit');
  assert.is(m.get(s.id)!.state, 'EXPIRED');
  assert.is(m.get(s.id)!.used, 1500, 'the overshoot is billed, not forgiven');
  assert.is(remaining[0], 0);
  // Later bytes for the ended session go nowhere.
  m.applyUsage([s.id], [10], 1, remaining);
  assert.is(m.get(s.id)!.used, 1500);
  await m.close();
});

test('applyUsage: bad deltas are rejected and counted; unknown or replaced sessions get nothing', async () => {
  const m = await manager();
  const old = await buy(m, A, 1000n);
  m.endNow(old.id, 'admin');
  const fresh = await buy(m, A, 5000n); // a new purchase on the same MAC since the meter looked the old one up
  const remaining = new Float64Array(5).fill(-1);
  m.applyUsage([old.id, 'no-such-id', fresh.id, fresh.id, fresh.id], [700, 700, -1, 1.5, Number.NaN], 5, remaining);
  assert.is(m.get(old.id)!.used, 0);
  assert.is(m.get(fresh.id)!.used, 0);
  assert.is(m.stats().rejectedDeltas, 3);
  assert.equal([...remaining], [0, 0, 5000, 5000, 5000]);
  await m.close();
});

test('applyUsage with slots: a slot that still holds the id is read, a reused or wrong slot bills by id', async () => {
  const m = await manager();
  const old = await buy(m, A, 1000n);
  const oldSlot = m.slotOf(old.id);
  m.endNow(old.id, 'admin');
  const b = await buy(m, B, 5000n); // takes the slot the ended session freed
  assert.is(m.slotOf(b.id), oldSlot);
  const a = await buy(m, A, 5000n);
  const remaining = new Float64Array(4).fill(-1);
  // old's stale slot (now b's), a's own, b's given for a, and none.
  m.applyUsage(
    [old.id, a.id, a.id, b.id],
    [700, 100, 10, 1],
    4,
    remaining,
    undefined,
    Int32Array.of(oldSlot, m.slotOf(a.id), m.slotOf(b.id), -1),
  );
  assert.is(m.get(old.id)!.used, 0, "the ended session's bytes never reach the slot's new session");
  assert.is(m.get(a.id)!.used, 110);
  assert.is(m.get(b.id)!.used, 1);
  assert.equal([...remaining], [0, 4900, 4890, 4999]);
  await m.close();
});

test('applyUsage does nothing after close', async () => {
  const m = await manager();
  const s = await buy(m, A, 1000n);
  await m.close();
  m.applyUsage([s.id], [10], 1);
  assert.is(m.get(s.id)!.used, 0);
});

test(
  'a Meter bills, reports and ends exactly what the ' + 'portal counted after each purchase, across many slices',
  async () => {
    const { now, portal, sessions, meter, close } = await socketMeter('usage-batch');
    try {
      const macs: string[] = [];
      for (let i = 0; i < 1500; i++) {
        const mac = `02:00:00:00:${hexByte(i >> 8)}:${hexByte(i)}`;
        macs.push(mac);
        portal.addClient(mac, `10.1.${i >> 8}.${i & 255}`);
      }
      now.t += 1000;
      /** What each paying client may use (bytes; Infinity for a time session), and what it used so far. */
      const allotment = new Map<string, number>();
      const used = new Map<string, number>();
      for (const [i, mac] of macs.entries()) {
        if (i % 5 === 4) continue; // some clients never pay
        const time = i % 11 === 0;
        const bytes = time ? 3600 : i % 7 === 0 ? 50_000 : 1e12;
        await buy(sessions, mac, BigInt(bytes), time ? 'seconds' : 'bytes');
        allotment.set(mac, time ? Infinity : bytes);
        used.set(mac, 0);
        portal.auth(mac);
      }
      now.t += 10;
      await meter.tick(); // the purchases' base readings
      const reports: TickReport[] = [];
      for (let round = 0; round < 3; round++) {
        /** This round's expected usage reports: every paying client still ACTIVE, with what it used. */
        const expected: unknown[] = [];
        for (const [i, mac] of macs.entries()) {
          const down = 1024 * (1 + ((i * 7 + round) % 40));
          const up = 1024 * (i % 3);
          portal.addTraffic(mac, down, up);
          const limit = allotment.get(mac);
          if (limit === undefined || used.get(mac)! >= limit) continue; // no session, or ended: dropped
          used.set(mac, used.get(mac)! + down + up);
          const remaining = limit === Infinity ? Infinity : Math.max(0, limit - used.get(mac)!);
          expected.push([
            mac,
            limit === Infinity ? 'seconds' : 'bytes',
            down + up,
            down,
            up,
            remaining,
            remaining <= 0,
          ]);
        }
        now.t += 1000;
        const report = await meter.tick();
        reports.push(report);
        const got = report.usage.map((u) => [
          u.mac,
          u.metric,
          u.deltaBytes,
          u.deltaDownloadBytes,
          u.deltaUploadBytes,
          u.remainingBytes,
          u.exhausted,
        ]);
        const byMac = (a: unknown, b: unknown): number =>
          String((a as string[])[0]).localeCompare(String((b as string[])[0]));
        assert.equal(got.sort(byMac), expected.sort(byMac), `round ${round}`);
      }
      assert.ok(reports[0]!.usage.length > 1000, 'the tick crossed several slices');
      for (const s of sessions.list()) {
        const limit = allotment.get(s.mac)!;
        assert.is(s.bytes, used.get(s.mac), s.mac);
        assert.is(s.state, used.get(s.mac)! >= limit ? 'EXPIRED' : 'ACTIVE', s.mac);
        if (s.state === 'EXPIRED') assert.is(s.endCause, 'data-limit');
      }
      assert.ok(
        sessions.list().some((s) => s.endCause === 'data-limit'),
        'some sessions ran out',
      );
    } finally {
      await close();
    }
  },
);

test(
  'counters are numbers that saturate at 2^53 - 1 rather ' + 'than lose exactness; the bigint remainder stays exact',
  async () => {
    const m = await manager();
    const s = await buy(m, A, 1n << 80n);
    const remaining = new Float64Array(1);
    m.applyUsage([s.id], [Number.MAX_SAFE_INTEGER - 10], 1, remaining);
    m.applyUsage([s.id], [1000], 1, remaining);
    const view = m.get(s.id)!;
    assert.equal([view.state, view.used, view.bytes], ['ACTIVE', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
    assert.is(m.remaining(s.id), (1n << 80n) - BigInt(Number.MAX_SAFE_INTEGER));
    assert.is(remaining[0], Number.MAX_SAFE_INTEGER, 'the per-tick remainder is clamped, not rounded');
    const out = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'ACTIVE' } as Parameters<
      SessionManager['figuresInto']
    >[2];
    assert.ok(m.figuresInto(s.id, 0, out));
    assert.equal(
      [out.allotment, out.used, out.remaining],
      [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    );
    await m.close();
  },
);

test(
  'a live session keeps its slot from purchase to end; ' + "a reused slot never shows another session's figures",
  async () => {
    const m = await manager();
    const a = await buy(m, A, 1000n);
    const slot = m.slotOf(a.id);
    assert.ok(slot >= 0);
    const port = sessionManagerPort(m);
    assert.is(port.active(A)!.slot, slot, "the meter's view carries it");
    m.applyUsage([a.id], [1500], 1);
    assert.is(m.slotOf(a.id), -1, 'freed at the end');
    const b = await buy(m, B, 5000n);
    assert.is(m.slotOf(b.id), slot, 'reused by the next purchase');
    m.applyUsage([b.id], [200], 1);
    const out = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'ACTIVE' } as Parameters<
      SessionManager['figuresInto']
    >[2];
    // A usage batch from before the reuse names `a` with the old slot: its own (ended) figures, found by id.
    assert.ok(m.figuresInto(a.id, 0, out, slot));
    assert.equal([out.state, out.used, out.remaining], ['EXPIRED', 1500, 0]);
    assert.ok(m.figuresInto(b.id, 0, out, slot));
    assert.equal([out.state, out.used, out.remaining, out.allotment], ['ACTIVE', 200, 4800, 5000]);
    // Read by slot again (the allotment's number is remembered per slot): still each one's own allotment.
    assert.ok(m.figuresInto(a.id, 0, out, slot));
    assert.is(out.allotment, 1000);
    assert.ok(m.figuresInto(b.id, 0, out, slot));
    assert.is(out.allotment, 5000);
    // A top-up (same MAC: added to the live session) and a limit change show at once.
    await buy(m, B, 2000n);
    assert.ok(m.figuresInto(b.id, 0, out, slot));
    assert.equal([out.allotment, out.remaining], [7000, 6800]);
    await m.setLimits(b.id, { bytes: 9000n });
    assert.ok(m.figuresInto(b.id, 0, out, slot));
    assert.equal([out.allotment, out.remaining], [9000, 8800]);
    assert.not.ok(m.figuresInto('ffffffffffffffff', 0, out, slot));
    port.dispose();
    await m.close();
  },
);

test.run();
