// tier: fast
// The gatekeeper with the real Valve, SessionManager and Meter, over one simulated portal: the valve's ndsctl calls
// run the stand-in's command handling in-process (src/sim/ndsctl-exec.ts: the real messages and exit codes), the
// meter reads the same portal over its control socket. Faults are injected per ndsctl call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInlineRunner, Meter, sessionManagerPort, type TickReport } from '../../src/meter/index.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler, type NdsctlSocketServer } from '../../src/sim/socket.ts';
import { Valve } from '../../src/portal/index.ts';
import type { GateIpv6 } from '../../src/portal/types.ts';
import { Gatekeeper, LISTING_RETRY_MS, LISTING_WAITERS } from '../../src/gate/gatekeeper.ts';
import type { RateShaper } from '../../src/gate/options.ts';
import { DaemonBackend } from '../../src/api/daemon-backend.ts';
import { createLogger } from '../../src/log.ts';
import type { SessionStore } from '../../src/sessions/store.ts';
import type { Merchant } from '../../src/merchant/index.ts';
import { CountingStore } from '../sessions/helpers.ts';
import { modelSpawn, type Fault } from './model-spawn.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';
const T = '02:00:00:00:0e:03';

interface Rig {
  portal: PortalModel;
  sessions: SessionManager;
  gates: Gatekeeper;
  meter: Meter;
  backend: DaemonBackend;
  /** `lookupAfterAuth`: the answer to `json <mac|token>` once an auth got the `auth` fault. */
  fault: { deauth?: Fault; auth?: Fault; authDelayMs?: number; listing?: Fault; lookupAfterAuth?: Fault };
  /** The valve's ndsctl calls, `<command> <mac>`, in order. */
  ndsctl: string[];
  tick(): Promise<TickReport>;
  close(): Promise<void>;
}

interface RigOptions {
  leaveForeign?: boolean;
  store?: SessionStore;
  flavour?: 'opennds';
  /** A kernel quota's brake for the valve; `listedIp` the ticks' list, as the meter the gate follows answers it. */
  brake?: {
    beforeAuth(mac: string, ip: string | null, limit: number): Promise<void>;
    afterDeauth(mac: string): Promise<void>;
  };
  listedIp?: (mac: string) => string | null;
  /** GatekeeperOptions.confirmByLook (the kernel's counters on). */
  confirmByLook?: () => boolean;
  /** The valve's deadline per ndsctl call (a slower auth times out, and the portal still does it after). */
  timeoutMs?: number;
  /** sluice's own gate (portal/ipv6-gate.ts) as the valve drives it. */
  ipv6?: GateIpv6;
  shaper?: RateShaper;
}

async function rig(opts: RigOptions = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gates-'));
  const portal = new PortalModel({ flavour: 'opennds', trustedMacs: [T] }); // the portal's own free list
  const server: NdsctlSocketServer = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const fault: Rig['fault'] = {};
  const ndsctl: string[] = [];
  let authFaulted = false;
  const valve = new Valve({
    command: ['ndsctl'],
    ...(opts.flavour && { flavour: opts.flavour }),
    ...(opts.brake && { brake: opts.brake }),
    ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
    ...(opts.ipv6 && { ipv6: opts.ipv6 }),
    lookAgainMs: [1, 1, 1, 1],
    spawn: modelSpawn(
      portal,
      (args) => {
        ndsctl.push(args.slice(0, 2).join(' '));
        if (args[0] === 'json' && args.length === 1) return fault.listing;
        if (args[0] === 'json') return authFaulted ? fault.lookupAfterAuth : undefined;
        if (args[0] === 'auth') authFaulted = fault.auth !== undefined;
        return args[0] === 'deauth' ? fault.deauth : args[0] === 'auth' ? fault.auth : undefined;
      },
      (args) => (args[0] === 'auth' ? (fault.authDelayMs ?? 0) : 0),
    ),
  });
  const sessions = await SessionManager.open({ store: opts.store ?? new MemoryStore() });
  const log = createLogger({ write: () => undefined });
  const gates = new Gatekeeper({
    valve,
    sessions,
    log,
    ...(opts.leaveForeign === undefined ? {} : { leaveForeign: opts.leaveForeign }),
    ...(opts.confirmByLook && { confirmByLook: opts.confirmByLook }),
    ...(opts.shaper && { shaper: opts.shaper }),
  });
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: 10_000,
    sessions: sessionManagerPort(sessions),
    runner: createInlineRunner(),
    gate: gates,
  });
  // The rig's tick() enforces itself (awaited); a test of the ticks' list follows a meter that only lists.
  const { listedIp } = opts;
  if (listedIp) gates.follow({ on: () => () => undefined, listedIp: (mac) => listedIp(mac) });
  const backend = new DaemonBackend({
    merchant: () => {
      throw new Error('not used');
    },
    plans: () => [],
    sessions,
    gates,
    stats: () => ({}),
    reload: async () => ({}),
  });
  return {
    portal,
    sessions,
    gates,
    meter,
    backend,
    fault,
    ndsctl,
    async tick() {
      const report = await meter.tick();
      if (report.ok) await gates.enforce(report.openUnpaid, report.at);
      return report;
    },
    async close() {
      await meter.close();
      await sessions.close();
      await valve.shutdown();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function grantAndOpen(r: Rig, mac: string): Promise<void> {
  const { session } = await r.sessions.activate({
    mac,
    metric: 'bytes',
    allotment: 10n ** 9n,
    payment: { method: 'grant', reference: `g-${mac}`, amount: 0n, asset: '', at: Date.now() },
  });
  assert.is(await r.gates.opened(session), 'opened');
}

test(
  'a session started before the portal lists its client gets its gate as soon as the portal lists it, without ' +
    'waiting for a meter reading',
  async () => {
    const r = await rig();
    const { session } = await r.sessions.activate({
      mac: A,
      metric: 'bytes',
      allotment: 10n ** 9n,
      payment: { method: 'grant', reference: 'g-unlisted', amount: 0n, asset: '', at: Date.now() },
    });
    assert.is(await r.gates.opened(session), 'pending', 'the portal has not seen the client yet');
    const opened = new Promise<string>((resolve) => {
      r.gates.on('auth-finished', (mac, _id, result) => {
        if (mac === A && result !== 'failed') resolve(result);
      });
    });
    r.portal.addClient(A, '10.0.0.1'); // the customer opens a page: the portal lists it
    // A hang guard, not a timing check: without a retry of its own the gate would wait for a tick that never comes.
    const guard = new Promise<string>((resolve) => {
      setTimeout(() => resolve('never opened'), 5000).unref();
    });
    try {
      assert.is(await Promise.race([opened, guard]), 'opened', 'the gate tried again by itself (no tick ran)');
      assert.is(r.portal.get(A)!.state, 'Authenticated');
      assert.is(r.gates.gateOf(A), 'already-open');
    } finally {
      await r.close();
    }
  },
);

test("confirmByLook: a close is confirmed by `json <mac>` in the deauth's turn; without, by a listing", async () => {
  for (const look of [true, false]) {
    const r = await rig({ confirmByLook: () => look });
    const told: Array<[string, string | null | undefined]> = [];
    r.gates.on('closed', (mac, state) => told.push([mac, state]));
    r.portal.addClient(A, '10.0.0.1');
    try {
      await grantAndOpen(r, A);
      r.ndsctl.length = 0;
      await r.sessions.end(r.sessions.byMac(A)!.id, 'admin');
      assert.is(await r.gates.closed(A), 'closed');
      if (look) {
        assert.equal(
          r.ndsctl.map((c) => c.split(' ')[0]),
          ['deauth', 'json'],
          'one look at the client, in the same turn',
        );
        assert.is(r.ndsctl[1], `json ${A}`);
        assert.equal(told, [[A, r.portal.get(A)?.state ?? null]]);
        assert.not.ok(r.gates.closeUnconfirmed(A), 'confirmed without a listing');
      } else {
        assert.equal(
          r.ndsctl.map((c) => c.split(' ')[0]),
          ['deauth'],
        );
        assert.equal(told, [[A, undefined]]);
        assert.ok(r.gates.closeUnconfirmed(A), 'a listing confirms it');
        await r.tick();
        assert.not.ok(r.gates.closeUnconfirmed(A));
      }
    } finally {
      await r.close();
    }
  }
});

// With the kernel's counters the meter lists the portal rarely, so nothing but the gate's own retries would open these.
for (const { title, timeoutMs, fail, heal, took } of [
  {
    // openNDS answered too late (busy with a listing the daemon had given up on) and did the auth after the deadline.
    title: 'an auth that timed out is tried again: the gate opens without a listing',
    timeoutMs: 200,
    fail: (f: Rig['fault']) => void (f.authDelayMs = 400),
    heal: (f: Rig['fault']) => void (f.authDelayMs = 0),
  },
  {
    // The portal is not running (procd starts it again in seconds).
    title: 'a refused auth (the portal restarting) is tried again: the gate opens without a listing',
    timeoutMs: undefined,
    fail: (f: Rig['fault']) => void (f.auth = { code: 3, stdout: '' }),
    heal: (f: Rig['fault']) => void delete f.auth,
  },
  {
    // The portal did the auth but its reply was abnormal, and no look after it got an answer: its outcome unknown. No
    // listing would reopen this one (the portal shows it Authenticated).
    title: 'an auth of unknown outcome (abnormal, no look answered) is tried again: the gate opens without a listing',
    timeoutMs: undefined,
    took: true,
    fail: (f: Rig['fault']) => void ((f.auth = { code: 2, stdout: '' }), (f.lookupAfterAuth = { code: 3, stdout: '' })),
    heal: (f: Rig['fault']) => void (delete f.auth, delete f.lookupAfterAuth),
  },
]) {
  test(title, async () => {
    const r = await rig(timeoutMs === undefined ? {} : { timeoutMs });
    try {
      r.portal.addClient(A, '10.0.0.11');
      fail(r.fault);
      const { session } = await r.sessions.activate({
        mac: A,
        metric: 'bytes',
        allotment: 10n ** 9n,
        payment: { method: 'grant', reference: 'g-retried', amount: 0n, asset: '', at: Date.now() },
      });
      assert.is(await r.gates.opened(session), 'pending');
      if (took === true) r.portal.auth(A);
      heal(r.fault);
      const deadline = Date.now() + 30_000;
      while (r.gates.stats().open !== 1 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
      assert.is(r.gates.stats().open, 1, 'the gate is open');
      assert.is(r.portal.get(A)?.state, 'Authenticated');
    } finally {
      await r.close();
    }
  });
}

test('at most LISTING_WAITERS unlisted sessions retry on their own; the rest are left to the meter', async () => {
  const r = await rig();
  const macs = Array.from(
    { length: LISTING_WAITERS + 4 },
    (_, i) => `02:00:00:00:1f:${i.toString(16).padStart(2, '0')}`,
  );
  for (const mac of macs) {
    const { session } = await r.sessions.activate({
      mac,
      metric: 'bytes',
      allotment: 10n ** 9n,
      payment: { method: 'grant', reference: `g-${mac}`, amount: 0n, asset: '', at: Date.now() },
    });
    assert.is(await r.gates.opened(session), 'pending');
  }
  const tried = new Set<string>();
  r.gates.on('auth-starting', (mac) => tried.add(mac));
  // Two retry periods: every waiter has tried again at least once (a hang guard, not a timing check).
  await new Promise((resolve) => setTimeout(resolve, LISTING_RETRY_MS * 3));
  try {
    assert.is(tried.size, LISTING_WAITERS, `${tried.size} sessions retried by themselves`);
    assert.equal([...tried].sort(), macs.slice(0, LISTING_WAITERS).sort(), 'the first ones to wait');
  } finally {
    await r.close();
  }
});

test(
  "a move (backend.move): the old MAC's gate closes, the new one opens, a tick keeps it so; a held gate stays " +
    'held on the new MAC',
  async () => {
    const r = await rig();
    r.portal.addClient(A, '10.0.0.1');
    r.portal.addClient(B, '10.0.0.2');
    try {
      await grantAndOpen(r, A);
      const id = r.sessions.byMac(A)!.id;
      const moved = await r.backend.move({ mac: A }, B);
      assert.is(moved.gate, 'opened');
      assert.is(moved.from, A);
      assert.is(await r.gates.closed(A), 'closed');
      assert.is(r.portal.get(A)?.state === 'Authenticated', false, 'the old MAC is closed');
      assert.is(r.portal.get(B)!.state, 'Authenticated');
      assert.is(r.gates.gateOf(B), 'already-open');
      await r.tick();
      assert.is(
        r.portal.get(B)!.state,
        'Authenticated',
        'the tick does not take the moved session for an unpaid client',
      );
      assert.is(r.sessions.get(id)!.state, 'ACTIVE');
      // Held (escrow credit): closed on purpose; a move keeps it closed until released, on the new MAC.
      assert.ok(await r.gates.hold(B));
      r.portal.addClient(A, '10.0.0.1');
      const back = await r.backend.move({ mac: B }, A);
      assert.is(back.gate, 'pending');
      assert.ok(r.gates.isHeld(A) && !r.gates.isHeld(B));
      assert.is(r.portal.get(A)!.state === 'Authenticated', false);
      assert.ok(await r.gates.release(A));
      assert.is(r.portal.get(A)!.state, 'Authenticated');
    } finally {
      await r.close();
    }
  },
);

test(
  "a client authenticated behind sluice's back while " + 'it runs is deauthed by the next tick, and counted',
  async () => {
    const r = await rig();
    r.portal.addClient(A, '10.0.0.1');
    r.portal.addClient(B, '10.0.0.2');
    r.portal.addClient(T, '10.0.0.3');
    await grantAndOpen(r, A);
    await r.tick();
    assert.is(r.portal.get(T)!.state, 'Trusted');
    r.portal.auth(B); // e.g. `ndsctl auth` by hand, or the splash page's own FAS
    await r.tick();
    assert.is(r.portal.get(B)?.state ?? 'gone', 'gone', 'openNDS drops a deauthed client');
    assert.is(r.portal.get(A)!.state, 'Authenticated', 'the paying client keeps its gate');
    assert.is(r.portal.get(T)!.state, 'Trusted', 'Trusted is never touched');
    assert.is(r.gates.stats().unpaidClosed, 1);
    await r.tick();
    assert.is(r.gates.stats().closing, 0, 'confirmed by the next listing');
    await r.close();
  },
);

test(
  'leave_foreign_clients: a client authenticated by other ' + 'means is left alone; gates sluice opened still close',
  async () => {
    const r = await rig({ leaveForeign: true });
    r.portal.addClient(A, '10.0.0.1');
    r.portal.addClient(B, '10.0.0.2');
    await grantAndOpen(r, A);
    r.portal.auth(B);
    await r.tick();
    assert.is(r.portal.get(B)!.state, 'Authenticated');
    r.fault.deauth = { code: 1, stdout: `Client ${A} not found.\n` }; // the end's deauth does not take
    await r.backend.terminate(A, 'admin');
    r.fault.deauth = undefined;
    await r.tick();
    assert.is(r.portal.get(A)?.state ?? 'gone', 'gone');
    assert.is(r.portal.get(B)!.state, 'Authenticated');
    await r.close();
  },
);

for (const [what, deauth] of [
  ['exit 1', { code: 1, stdout: '' }],
  ['garbage with exit 0', { code: 0, stdout: '\u0000garbage' }],
] as const) {
  test(
    `terminate while ndsctl fails (${what}): the gate is deauthed again on every tick until the portal's list ` +
      'shows it closed, and counted',
    async () => {
      const r = await rig();
      r.portal.addClient(A, '10.0.0.1');
      await grantAndOpen(r, A);
      await r.tick();
      r.fault.deauth = deauth;
      await r.backend.terminate(A, 'admin');
      assert.is(r.portal.get(A)!.state, 'Authenticated', 'the fault left the gate open');
      await r.tick();
      await r.tick();
      assert.is(r.gates.stats().closeRetries, 2);
      assert.is(r.portal.get(A)!.state, 'Authenticated');
      r.fault.deauth = undefined; // ndsctl recovers
      await r.tick();
      assert.is(r.portal.get(A)?.state ?? 'gone', 'gone');
      await r.tick();
      assert.is(r.gates.stats().closing, 0);
      assert.is(r.gates.stats().closeRetries, 3);
      await r.close();
    },
  );
}

test(
  'a hold whose deauth fails (ndsctl exit 1) is closed by the next tick once ndsctl works; the session stays ' +
    'live, release re-opens',
  async () => {
    const r = await rig();
    r.portal.addClient(A, '10.0.0.1');
    await grantAndOpen(r, A);
    await r.tick();
    r.fault.deauth = { code: 1, stdout: '' };
    assert.ok(await r.gates.hold(A));
    assert.is(r.portal.get(A)!.state, 'Authenticated', 'the fault left the held gate open');
    await r.tick();
    assert.is(r.portal.get(A)!.state, 'Authenticated');
    r.fault.deauth = undefined; // ndsctl recovers
    await r.tick();
    assert.is(r.portal.get(A)?.state ?? 'gone', 'gone', 'closed by a tick, not only by hold()');
    assert.is(r.sessions.byMac(A)?.state, 'ACTIVE', 'held, not ended');
    assert.is(r.gates.stats().unpaidClosed, 0, 'not counted as free access');
    r.portal.addClient(A, '10.0.0.1');
    assert.ok(await r.gates.release(A));
    assert.is(r.portal.get(A)!.state, 'Authenticated', 'release re-opens');
    await r.tick();
    assert.is(r.portal.get(A)!.state, 'Authenticated', 'a released gate is left open');
    await r.close();
  },
);

test(
  'terminate answers after the gate closed: gate "closed" ' + 'and the client is no longer authenticated at the reply',
  async () => {
    const r = await rig();
    r.portal.addClient(A, '10.0.0.1');
    await grantAndOpen(r, A);
    const { session, gate } = await r.backend.terminate(A, 'admin');
    assert.is(session.state, 'TERMINATED');
    assert.is(gate, 'closed');
    assert.is(r.portal.get(A)?.state ?? 'gone', 'gone');
    r.portal.addClient(B, '10.0.0.2');
    await grantAndOpen(r, B);
    r.fault.deauth = { code: 3, stdout: '' }; // the portal is not running
    assert.is((await r.backend.terminate(B, 'admin')).gate, 'failed');
    await r.close();
  },
);

test("an unanswered terminate stops the client in sluice's table until a listing clears it", async () => {
  const calls: string[] = [];
  const r = await rig({
    ipv6: {
      isOpen: () => true, // no opening ahead of the auth: valve.test.ts
      withdraw: async () => undefined,
      open: async (mac) => void calls.push(`open ${mac}`),
      close: async (mac) => void calls.push(`stop ${mac}`),
      released: async (mac) => void calls.push(`release ${mac}`),
    },
  });
  r.portal.addClient(A, '10.0.0.1');
  await grantAndOpen(r, A);
  calls.length = 0;
  r.fault.deauth = { code: 3, stdout: '' }; // the portal is down, its rules still in place
  assert.is((await r.backend.terminate(A, 'admin')).gate, 'failed');
  assert.equal(calls, [`stop ${A}`], 'stopped, and held: nobody answered');
  // The portal comes back without its clients (a restart): the next listing shows A's gate down.
  r.portal.remove(A);
  r.portal.addClient(A, '10.0.0.1');
  delete r.fault.deauth;
  await r.tick();
  assert.equal(calls, [`stop ${A}`, `release ${A}`], 'released by the listing, no deauth needed');
  assert.is(r.portal.get(A)!.state, 'Preauthenticated');
  await r.close();
});

test(
  'a top-up raced by a terminate: the reply shows the session ended and gate "closed", not the portal\'s stale ' +
    '"already-open"',
  async () => {
    const store = new CountingStore();
    const r = await rig({ store });
    r.portal.addClient(A, '10.0.0.1');
    await grantAndOpen(r, A);
    const topUp = () =>
      r.sessions.activate({
        mac: A,
        metric: 'bytes',
        allotment: 1000n,
        payment: { method: 'grant', reference: 'g-top', amount: 0n, asset: '', at: Date.now() },
      });
    const backend = new DaemonBackend({
      merchant: () => ({ grant: topUp }) as unknown as Merchant,
      plans: () => [],
      sessions: r.sessions,
      gates: r.gates,
      stats: () => ({}),
      reload: async () => ({}),
    });
    try {
      store.hold = true;
      const reply = backend.grant({ mac: A, seconds: undefined, bytes: 1000n } as never);
      await new Promise((resolve) => setImmediate(resolve));
      const terminated = r.backend.terminate(A, 'admin');
      store.release();
      const [outcome] = await Promise.all([reply, terminated]);
      assert.ok(outcome.toppedUp, 'the top-up was applied');
      assert.is(outcome.session.state, 'TERMINATED');
      assert.is(outcome.gate, 'closed');
    } finally {
      await r.close();
    }
  },
);

test(
  "a time session's clock starts when its gate opens, and its deadline is a whole second (expires_at is the real " +
    'end)',
  async () => {
    const r = await rig();
    r.portal.addClient(A, '10.0.0.1');
    r.fault.authDelayMs = 300; // the gate takes its time
    const asked = Date.now();
    const { session } = await r.sessions.activate({
      mac: A,
      metric: 'seconds',
      allotment: 20n,
      payment: { method: 'grant', reference: 'g-t', amount: 0n, asset: '', at: Date.now() },
    });
    assert.is(await r.gates.opened(session), 'opened');
    const openedAt = Date.now();
    const s = r.sessions.get(session.id)!;
    assert.ok(s.expiresAt! >= asked + 300 + 20_000, `deadline ${s.expiresAt! - asked} ms after the purchase`);
    assert.ok(s.expiresAt! < openedAt + 21_100, `deadline ${s.expiresAt! - openedAt} ms after the gate opened`);
    assert.is(s.expiresAt! % 1000, 0);
    await r.close();
  },
);

test(
  'a session sold without an IP shows the one the portal lists once its gate opens, and after a restart from the ' +
    'reconcile',
  async () => {
    const store = new MemoryStore();
    const r = await rig({ store });
    r.portal.addClient(A, '10.0.0.41');
    const { session } = await r.sessions.activate({
      mac: A,
      metric: 'bytes',
      allotment: 10n ** 9n,
      payment: { method: 'grant', reference: 'g-ip', amount: 0n, asset: '', at: Date.now() },
    });
    assert.is(session.ip, null, 'a grant without ip');
    assert.is(await r.gates.opened(session), 'opened');
    assert.is(r.sessions.get(session.id)!.ip, '10.0.0.41', 'the address the portal listed at the auth');
    await r.close();
    // Memory only: a restart learns it again from the portal's list at the start-up reconcile.
    const again = await rig({ store });
    again.portal.addClient(A, '10.0.0.42');
    again.portal.auth(A);
    assert.is(again.sessions.get(session.id)!.ip, null);
    await again.gates.start([]);
    assert.is(again.sessions.get(session.id)!.ip, '10.0.0.42');
    await again.close();
  },
);

test(
  "a purchase that carries its client's address (openNDS) opens its gate with one portal call; one without, or a " +
    'joined device, is looked up first',
  async () => {
    const r = await rig({ flavour: 'opennds' });
    try {
      r.portal.addClient(A, '10.0.0.51');
      r.portal.addClient(B, '10.0.0.52');
      const pay = { method: 'grant', reference: 'g-a', amount: 0n, asset: '', at: Date.now() } as const;
      const { session } = await r.sessions.activate({
        mac: A,
        ip: '10.0.0.51',
        devices: 2,
        metric: 'bytes',
        allotment: 10n ** 9n,
        payment: pay,
      });
      assert.is(await r.gates.opened(session), 'opened');
      assert.equal(r.ndsctl, [`auth ${A}`], 'no `json <mac>` before the auth');
      assert.is(r.portal.get(A)!.state, 'Authenticated');
      // A second device of the same purchase: the session's address is the buyer's, not its own.
      const code = r.sessions.joinCode(session.id)!;
      const joined = new Promise<void>((resolve) => {
        r.gates.on('auth-finished', (mac) => {
          if (mac === B) resolve();
        });
      });
      const tokenB = r.portal.get(B)!.token;
      await r.sessions.joinDevice(code, B);
      await joined;
      // The auth after a lookup goes by the token it showed (flat on openNDS: portal/tokens.ts).
      assert.equal(r.ndsctl.slice(1), [`json ${B}`, `auth ${tokenB}`]);
      assert.is(r.portal.get(B)!.state, 'Authenticated');
      // Sold without an address: looked up, and the session learns it (as before).
      r.portal.addClient(T.replace(/03$/, '04'), '10.0.0.53');
      const other = await r.sessions.activate({
        mac: T.replace(/03$/, '04'),
        metric: 'bytes',
        allotment: 10n ** 9n,
        payment: { ...pay, reference: 'g-c' },
      });
      assert.is(await r.gates.opened(other.session), 'opened');
      assert.equal(
        r.ndsctl.slice(3).map((c) => c.split(' ')[0]),
        ['json', 'auth'],
      );
      assert.is(r.sessions.get(other.session.id)!.ip, '10.0.0.53');
    } finally {
      await r.close();
    }
  },
);

test(
  "with the kernel quota, a purchase whose address the ticks' list shows opens with one portal call and brakes " +
    'that address; otherwise it is looked up first',
  async () => {
    const braked: Array<[string, string | null]> = [];
    const listed = new Map<string, string>();
    const r = await rig({
      flavour: 'opennds',
      listedIp: (mac) => listed.get(mac) ?? null,
      brake: {
        beforeAuth: async (mac, ip) => {
          braked.push([mac, ip]);
        },
        afterDeauth: async () => {},
      },
    });
    try {
      const C = T.replace(/03$/, '04');
      for (const [mac, ip] of [
        [A, '10.0.0.51'],
        [B, '10.0.0.52'],
        [C, '10.0.0.53'],
      ] as const)
        r.portal.addClient(mac, ip);
      const buy = async (mac: string, ip: string) => {
        const { session } = await r.sessions.activate({
          mac,
          ip,
          metric: 'bytes',
          allotment: 10n ** 9n,
          payment: { method: 'grant', reference: `g-${mac}`, amount: 0n, asset: '', at: Date.now() },
        });
        assert.is(await r.gates.opened(session), 'opened');
      };
      listed.set(A, '10.0.0.51');
      await buy(A, '10.0.0.51');
      assert.equal(r.ndsctl, [`auth ${A}`], 'listed: no `json <mac>` before the auth');
      assert.equal(braked, [[A, '10.0.0.51']]);
      listed.set(B, '10.0.0.99'); // the list shows another address than the purchase's: the portal is asked
      const tokenOf = (mac: string): string => r.portal.get(mac)!.token;
      await buy(B, '10.0.0.77');
      assert.equal(r.ndsctl.slice(1), [`json ${B}`, `auth ${tokenOf(B)}`], 'the auth by the token the lookup showed');
      assert.equal(braked[1], [B, '10.0.0.52'], "the brake takes the address the portal answers, not the purchase's");
      await buy(C, '10.0.0.53'); // not in the ticks' list (no lookups lately): looked up as before
      assert.equal(r.ndsctl.slice(3), [`json ${C}`, `auth ${tokenOf(C)}`]);
      assert.equal(braked[2], [C, '10.0.0.53']);
    } finally {
      await r.close();
    }
  },
);

test('a start-up listing that failed is asked again until one comes: a gate left open is closed', async () => {
  const r = await rig();
  try {
    // Open in the portal with no session (an earlier run's, or someone else's): the reconcile must close it.
    r.portal.addClient(A, '10.0.0.61');
    r.portal.auth(A);
    r.fault.listing = { code: 3, stdout: '' }; // the portal not answering its listing yet
    await r.gates.start([]);
    assert.is(r.portal.get(A)!.state, 'Authenticated', 'nothing known yet');
    delete r.fault.listing;
    // No tick runs (the kernel's counters list nobody): only the reconcile's own retry can close it.
    const end = Date.now() + 30_000;
    while (r.portal.get(A)?.state === 'Authenticated' && Date.now() < end) await new Promise((x) => setTimeout(x, 50));
    assert.is.not(r.portal.get(A)?.state, 'Authenticated', 'closed by the retried reconcile');
    assert.ok(
      r.ndsctl.some((c) => c.startsWith('deauth ')),
      'a deauth asked',
    );
  } finally {
    await r.close();
  }
});

test('a purchase answered while the start-up reconciles keeps its open gate (the listing predates it)', async () => {
  // The start-up's shaper work (after its listing, before the reconcile) held until B has paid.
  let letGo = (): void => undefined;
  const shaperHeld = new Promise<void>((go) => (letGo = go));
  let listed = (): void => undefined;
  const listingDone = new Promise<void>((done) => (listed = done));
  const r = await rig({
    shaper: {
      set: async () => {},
      start: async () => true,
      dropLeftover: async () => {
        listed();
        await shaperHeld;
      },
    },
  });
  try {
    const C = T.replace(/03$/, '05');
    r.portal.addClient(C, '10.0.0.72'); // listed by the start-up, not yet paid
    const started = r.gates.start([]);
    await listingDone;
    // B joins and pays after the listing, C pays too: both gates opened while the start-up is busy.
    r.portal.addClient(B, '10.0.0.73');
    await grantAndOpen(r, B);
    await grantAndOpen(r, C);
    letGo();
    await started;
    assert.is(r.gates.gateOf(B), 'already-open', "the reconcile left B's gate to its own opening (unlisted)");
    assert.is(r.gates.gateOf(C), 'already-open', "and C's (listed unpaid)");
    assert.is(r.ndsctl.filter((c) => c.startsWith('auth ')).length, 2, 'one auth each: the purchases');
  } finally {
    await r.close();
  }
});

test.run();
