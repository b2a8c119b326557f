// tier: fast
// The meter's events and the gate it follows: what it tells (tick, usage, paying-client-needs-gate,
// metering-overdue, error) and what it hears from the gate (auths, held gates), end to end on one thread over a
// simulated portal, with the real SessionManager as the sessions port.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createInlineRunner,
  Meter,
  sessionManagerPort,
  type MeterOptions,
  type UsageReport,
} from '../../src/meter/index.ts';
import type { GateFacts } from '../../src/meter/ports.ts';
import { Emitter, SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler, type NdsctlSocketServer } from '../../src/sim/socket.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const MiB = 1024 * 1024;
/** 1000 KiB: whole in both portals' units. */
const K = 1_024_000;
const POLL_MS = 10_000;

/** The gate as the meter follows it: its auth events, and the gates it holds. */
class FakeGate {
  private readonly events = new Emitter<GateFacts>((err) => {
    throw err;
  });
  on<E extends keyof GateFacts>(event: E, listener: (...args: GateFacts[E]) => void): () => void {
    return this.events.on(event, listener);
  }
  /** What the gatekeeper tells when it holds a live session's gate closed (hold) or lets it go (release). */
  hold(mac: string, held: boolean): void {
    this.events.emit('held', mac, held);
  }
  /** Whether anyone follows the auths. */
  followed(): boolean {
    return (['auth-starting', 'auth-finished', 'opened'] as const).some((event) => this.events.listens(event));
  }
  /** What the gatekeeper tells around the auth it runs for a session (Gatekeeper.open). */
  auth(portal: PortalModel, s: Session): void {
    this.events.emit('auth-starting', s.mac, s.id);
    portal.auth(s.mac);
    this.events.emit('auth-finished', s.mac, s.id, 'opened', null);
    this.events.emit('opened', s);
  }
}

interface Rig {
  portal: PortalModel;
  manager: SessionManager;
  meter: Meter;
  gate: FakeGate;
  server: NdsctlSocketServer;
  now: { t: number };
  timers: Array<{ fn: () => void; ms: number; cleared: boolean }>;
  grant(mac: string, bytes: number): Promise<Session>;
  close(): Promise<void>;
}

const open = new Set<Rig>();
test.after.each(async () => {
  for (const r of open) await r.close();
});

async function rig(flavour: 'opennds' | 'nodogsplash' = 'opennds', extra: Partial<MeterOptions> = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-meter-events-'));
  const now = { t: 1_795_221_800_000 };
  const portal = new PortalModel({ flavour }, { clock: { now: () => now.t } });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const manager = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
  manager.on('ended', (s) => portal.deauth(s.mac));
  const gate = new FakeGate();
  const timers: Rig['timers'] = [];
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: POLL_MS,
    sessions: sessionManagerPort(manager),
    runner: createInlineRunner(),
    clock: { now: () => now.t },
    newSessionGraceMs: 0,
    gate,
    // The meter's own scheduling (ticks, the safety net's checks): a test fires what it wants.
    timers: {
      setTimeout: (fn: () => void, ms: number) => {
        const t = { fn, ms, cleared: false };
        timers.push(t);
        return t;
      },
      clearTimeout: (h: unknown) => {
        if (h) (h as { cleared: boolean }).cleared = true;
      },
    },
    ...extra,
  });
  let n = 0;
  const r: Rig = {
    portal,
    manager,
    meter,
    gate,
    server,
    now,
    timers,
    async grant(mac, bytes) {
      const payment = { method: 'grant', reference: `g${++n}`, amount: 1n, asset: 'X', at: now.t };
      return (await manager.activate({ mac, metric: 'bytes', allotment: BigInt(bytes), payment })).session;
    },
    async close() {
      open.delete(r);
      await meter.close();
      await manager.close();
      await server.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  open.add(r);
  return r;
}

test("the gate's auth events are followed: a grant to a client never read is billed from its first byte", async () => {
  const r = await rig();
  r.portal.addClient(A, '10.0.0.10');
  const s = await r.grant(A, 10 * MiB);
  r.gate.auth(r.portal, s);
  r.portal.addTraffic(A, K, 0);
  r.now.t += 700;
  const t = await r.meter.tick();
  assert.is(t.baselined, 0);
  assert.is(r.manager.get(s.id)!.used, K, 'billed in full: the auth the gate told of started the counters at 0');
});

test('a held gate: a live session the portal shows open is reported with the open unpaid while held', async () => {
  const r = await rig();
  r.portal.addClient(A, '10.0.0.10');
  r.gate.auth(r.portal, await r.grant(A, 10 * MiB));
  r.now.t += 1000;
  assert.equal((await r.meter.tick()).openUnpaid, [], 'paid and not held');
  r.gate.hold(A, true);
  r.now.t += 1000;
  assert.equal((await r.meter.tick()).openUnpaid, [A]);
});

test("usage leaves the tick once: the session manager's `usage`, one batch a tick; the meter has none", async () => {
  const r = await rig();
  const told: (readonly UsageReport[])[] = [];
  r.manager.on('usage', (batch) => told.push(batch));
  const byMeter: unknown[] = [];
  // @ts-expect-error the meter tells no usage of its own
  r.meter.on('usage', (batch: unknown) => byMeter.push(batch));
  r.portal.addClient(A, '10.0.0.10');
  r.portal.addClient(B, '10.0.0.11');
  const a = await r.grant(A, 10 * MiB);
  const b = await r.grant(B, 10 * MiB);
  r.gate.auth(r.portal, a);
  r.gate.auth(r.portal, b);
  r.portal.addTraffic(A, K, 0);
  r.portal.addTraffic(B, 2 * K, 0);
  r.now.t += 1000;
  await r.meter.tick();
  assert.is(told.length, 1);
  assert.equal(told[0]!.map((u) => [u.mac, u.deltaBytes]).sort(), [
    [A, K],
    [B, 2 * K],
  ]);
  r.now.t += 1000;
  await r.meter.tick();
  assert.is(told.length, 1, 'a tick that billed nothing tells nothing');
  assert.equal(byMeter, [], 'usage is not told twice');
});

test("a paying client back unauthenticated: told (`paying-client-needs-gate`), in the tick's report too", async () => {
  const r = await rig();
  const reopen: string[] = [];
  r.meter.on('paying-client-needs-gate', (mac) => reopen.push(mac));
  r.portal.addClient(A, '10.0.0.10');
  r.gate.auth(r.portal, await r.grant(A, 10 * MiB));
  r.now.t += 1000;
  await r.meter.tick();
  r.portal.deauth(A); // the portal restarted: the client is back, unauthenticated
  r.portal.addClient(A, '10.0.0.10');
  r.now.t += 1000;
  const t = await r.meter.tick();
  assert.equal(reopen, [A]);
  assert.equal(t.reopen, [A]);
});

test("a listener that throws is the meter's `error` (ERR_LISTENER); the others and the tick go on", async () => {
  const r = await rig();
  const seen: string[] = [];
  r.meter.on('tick', () => {
    throw new Error('a broken follower');
  });
  r.meter.on('tick', (t) => seen.push(`tick ${t.ok}`));
  r.meter.on('error', (e) => seen.push(e.code));
  assert.ok((await r.meter.tick()).ok);
  assert.equal(seen, ['ERR_LISTENER', 'tick true']);
});

for (const configured of ['nodogsplash', 'auto'] as const) {
  test(`metering-overdue (main.portal ${configured}): told with the portal's flavour once started`, async () => {
    const r = await rig('nodogsplash', { flavour: configured, peakRateBytesPerS: 100 * MiB });
    const overdue: Array<[string[], string]> = [];
    r.meter.on('metering-overdue', (macs, flavour) => overdue.push([macs, flavour]));
    r.portal.addClient(A, '10.0.0.10');
    r.gate.auth(r.portal, await r.grant(A, 3 * MiB));
    r.portal.addTraffic(A, 2 * MiB, 0);
    r.now.t += 10_000;
    assert.ok((await r.meter.tick()).ok);
    r.meter.start();
    const check = r.timers.find((t) => t.ms === POLL_MS && !t.cleared);
    assert.ok(check, 'the safety net checks every poll interval once started');
    await r.server.close(); // the portal stops answering: metering lags
    r.now.t += 25_000;
    check!.fn();
    assert.equal(overdue, [[[A], 'nodogsplash']]);
  });
}

test("metering-overdue followed by nobody: the safety net's check is not armed at start", async () => {
  const r = await rig('nodogsplash', { flavour: 'nodogsplash' });
  r.meter.start();
  assert.equal(
    r.timers.filter((t) => !t.cleared).map((t) => t.ms),
    [0],
    'the first tick only',
  );
});

test('close stops following the gate', async () => {
  const r = await rig();
  assert.ok(r.gate.followed());
  await r.meter.close();
  assert.not.ok(r.gate.followed());
});

test.run();
