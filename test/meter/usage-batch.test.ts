// The meter's allocation-free usage path: SessionManager.applyUsageBatch (by session id, numbers in arrays) keeps
// applyUsage's rules, and a Meter on the fast port bills exactly what a Meter on the tuple port bills, across slices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInlineRunner, Meter, sessionManagerPort, type SessionsPort, type TickReport } from '../../src/meter/index.ts';
import { MemoryStore, SessionManager, type Session } from '../../src/sessions/index.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

async function manager(now = { t: 1_795_221_800_000 }): Promise<SessionManager> {
  return SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
}

let ref = 0;
async function buy(m: SessionManager, mac: string, allotment: bigint, metric: 'bytes' | 'seconds' = 'bytes'): Promise<Session> {
  const { session } = await m.activate({ mac, metric, allotment, payment: { method: 'grant', reference: `r${++ref}`, amount: 1n, asset: 'X', at: 1 } });
  return session;
}

test('applyUsageBatch adds bytes by session id exactly as applyUsage does by MAC', async () => {
  const byMac = await manager();
  const byId = await manager();
  const ids: string[] = [];
  for (const m of [byMac, byId]) {
    await buy(m, A, 10_000n);
    await buy(m, B, 3600n, 'seconds');
  }
  for (const s of byId.list()) ids[s.mac === A ? 0 : 1] = s.id;
  byMac.applyUsage([[A, 1234], [B, 999]]);
  const remaining = new Float64Array(2);
  const ended = byId.applyUsageBatch(ids, new Float64Array([1234, 999]), 2, remaining);
  assert.equal(ended, []);
  for (const mac of [A, B]) {
    assert.is(byId.byMac(mac)!.used, byMac.byMac(mac)!.used);
    assert.is(byId.byMac(mac)!.bytes, byMac.byMac(mac)!.bytes);
  }
  assert.is(byId.byMac(A)!.used, 1234);
  assert.is(byId.byMac(B)!.bytes, 999);
  assert.is(remaining[0], 10_000 - 1234);
  assert.is(remaining[1], Infinity, 'a time session has no byte limit');
  await byMac.close();
  await byId.close();
});

test('applyUsageBatch ends a data session at its allotment with data-limit and reports 0 left', async () => {
  const m = await manager();
  const s = await buy(m, A, 1000n);
  const remaining = new Float64Array(1);
  const ended = m.applyUsageBatch([s.id], [1500], 1, remaining);
  assert.is(ended.length, 1);
  assert.is(ended[0]!.endCause, 'data-limit');
  assert.is(m.get(s.id)!.state, 'EXPIRED');
  assert.is(m.get(s.id)!.used, 1500, 'the overshoot is billed, not forgiven');
  assert.is(remaining[0], 0);
  // Later bytes for the ended session go nowhere.
  m.applyUsageBatch([s.id], [10], 1, remaining);
  assert.is(m.get(s.id)!.used, 1500);
  await m.close();
});

test('applyUsageBatch: bad deltas are rejected and counted; unknown or replaced sessions get nothing', async () => {
  const m = await manager();
  const old = await buy(m, A, 1000n);
  m.endNow(old.id, 'admin');
  const fresh = await buy(m, A, 5000n); // a new purchase on the same MAC since the meter looked the old one up
  const remaining = new Float64Array(5).fill(-1);
  m.applyUsageBatch([old.id, 'no-such-id', fresh.id, fresh.id, fresh.id], [700, 700, -1, 1.5, Number.NaN], 5, remaining);
  assert.is(m.get(old.id)!.used, 0);
  assert.is(m.get(fresh.id)!.used, 0);
  assert.is(m.stats().rejectedDeltas, 3);
  assert.equal([...remaining], [0, 0, 5000, 5000, 5000]);
  await m.close();
});

test('applyUsageBatch does nothing after close, like applyUsage', async () => {
  const m = await manager();
  const s = await buy(m, A, 1000n);
  await m.close();
  m.applyUsageBatch([s.id], [10], 1);
  assert.is(m.get(s.id)!.used, 0);
});

/** The same portal read by two meters: one on the fast port, one on the tuple port (no applyUsageBatch). */
test('a Meter on the fast port bills, reports and ends exactly like one on the tuple port, across many slices', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-usage-batch-'));
  const now = { t: 1_795_221_800_000 };
  const portal = new PortalModel({ flavour: 'opennds' }, { now: () => Math.floor(now.t / 1000) });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const fast = await manager(now);
  const slow = await manager(now);
  const fastPort = sessionManagerPort(fast);
  const slowBase = sessionManagerPort(slow);
  const slowPort: SessionsPort = {
    active: slowBase.active, activeSessions: slowBase.activeSessions, applyUsage: slowBase.applyUsage, remainingBytes: slowBase.remainingBytes,
  };
  const meters = [fastPort, slowPort].map((sessions) => new Meter({
    source: { kind: 'socket', path: server.path }, pollIntervalMs: 10_000, sessions, runner: createInlineRunner(),
    clock: () => now.t, newSessionGraceMs: 0,
    // Billing is compared, not timing: no bill-ahead (it depends on each meter's real fetch time), and cuts scheduled
    // between ticks never fire.
    closeLatencyMs: () => 0, timers: { setTimeout: () => undefined, clearTimeout: () => {} },
  }));
  try {
    const macs: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      macs.push(mac);
      portal.addClient(mac, `10.1.${i >> 8}.${i & 255}`);
    }
    now.t += 1000;
    for (const [i, mac] of macs.entries()) {
      if (i % 5 === 4) continue; // some clients never pay
      const time = i % 11 === 0;
      for (const m of [fast, slow]) await buy(m, mac, time ? 3600n : i % 7 === 0 ? 50_000n : 10n ** 12n, time ? 'seconds' : 'bytes');
      portal.auth(mac);
    }
    now.t += 10;
    for (const m of meters) await m.tick();
    const reports: TickReport[][] = [[], []];
    for (let round = 0; round < 3; round++) {
      for (const [i, mac] of macs.entries()) portal.addTraffic(mac, 1024 * (1 + ((i * 7 + round) % 40)), 1024 * (i % 3));
      now.t += 1000;
      for (const [k, m] of meters.entries()) reports[k]!.push(await m.tick());
    }
    const summary = (r: TickReport): unknown => ({
      dropped: r.dropped, baselined: r.baselined, // nextInMs depends on each tick's real duration

      usage: r.usage.map((u) => [u.mac, u.metric, u.deltaBytes, u.deltaDownloadBytes, u.deltaUploadBytes, u.remainingBytes, u.exhausted]),
    });
    assert.equal(reports[0]!.map(summary), reports[1]!.map(summary));
    assert.ok(reports[0]![0]!.usage.length > 1000, 'the tick crossed several slices');
    const view = (m: SessionManager): unknown => m.list().map((s) => [s.mac, s.state, s.endCause, s.used, s.bytes]);
    assert.equal(view(fast), view(slow));
    assert.ok(fast.list().some((s) => s.endCause === 'data-limit'), 'some sessions ran out');
  } finally {
    for (const m of meters) await m.close();
    await fast.close();
    await slow.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('counters are numbers that saturate at 2^53 - 1 rather than lose exactness; the bigint remainder stays exact', async () => {
  const m = await manager();
  const s = await buy(m, A, 1n << 80n);
  const remaining = new Float64Array(1);
  m.applyUsageBatch([s.id], [Number.MAX_SAFE_INTEGER - 10], 1, remaining);
  m.applyUsageBatch([s.id], [1000], 1, remaining);
  const view = m.get(s.id)!;
  assert.equal([view.state, view.used, view.bytes], ['ACTIVE', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
  assert.is(m.remaining(s.id), (1n << 80n) - BigInt(Number.MAX_SAFE_INTEGER));
  assert.is(remaining[0], Number.MAX_SAFE_INTEGER, 'the per-tick remainder is clamped, not rounded');
  const out = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'ACTIVE' } as Parameters<SessionManager['figuresInto']>[2];
  assert.ok(m.figuresInto(s.id, 0, out));
  assert.equal([out.allotment, out.used, out.remaining], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
});

test('a live session keeps its slot from purchase to end; a reused slot never shows another session\'s figures', async () => {
  const m = await manager();
  const a = await buy(m, A, 1000n);
  const slot = m.slotOf(a.id);
  assert.ok(slot >= 0);
  const port = sessionManagerPort(m);
  assert.is(port.active(A)!.slot, slot, 'the meter\'s view carries it');
  m.applyUsage([[A, 1500]]);
  assert.is(m.slotOf(a.id), -1, 'freed at the end');
  const b = await buy(m, B, 5000n);
  assert.is(m.slotOf(b.id), slot, 'reused by the next purchase');
  m.applyUsage([[B, 200]]);
  const out = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'ACTIVE' } as Parameters<SessionManager['figuresInto']>[2];
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
});

test.run();
