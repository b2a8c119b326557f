// tier: fast
// The gate's invariants, with a fake valve, the real SessionManager over the MemoryStore, and fake time: every end
// closes its gate; every live session's gate is open or pending (re-opened when the client shows up, ended
// `portal-lost` after the grace); a held gate stays closed until released; clients open without a live session are
// closed at every tick (unless leave_foreign_clients); nothing but the gate's own decisions reaches the valve.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { Gatekeeper, type GateValve } from '../../src/gate/index.ts';
import { createLogger } from '../../src/log.ts';
import { SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import type { PortalSnapshot } from '../../src/portal/index.ts';
import { FakeTime } from '../helpers/fake-time.ts';

const A = '02:00:00:00:0f:01';
const B = '02:00:00:00:0f:02';

/** The portal as the gate sees it: who is present, whose gate is open; every call recorded. */
class FakeValve implements GateValve {
  readonly calls: string[] = [];
  readonly present = new Set<string>();
  readonly open_ = new Set<string>();
  async open(mac: string): Promise<'opened' | 'already-open'> {
    this.calls.push(`open ${mac}`);
    if (!this.present.has(mac))
      throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `the portal has not seen client ${mac} yet`);
    if (this.open_.has(mac)) return 'already-open';
    this.open_.add(mac);
    return 'opened';
  }
  async close(mac: string): Promise<'closed' | 'not-found'> {
    this.calls.push(`close ${mac}`);
    return this.open_.delete(mac) ? 'closed' : 'not-found';
  }
  async snapshot(): Promise<PortalSnapshot> {
    const clients = [...this.present].map((mac) => ({
      mac,
      ip: null,
      token: null,
      state: this.open_.has(mac) ? 'Authenticated' : 'Preauthenticated',
      downloadBytes: 0,
      uploadBytes: 0,
    }));
    return { flavour: 'opennds', clients, declaredCount: clients.length } as PortalSnapshot;
  }
  /** The clients a tick would report open without a live session (or held). */
  openUnpaid(sessions: SessionManager, gates: Gatekeeper): string[] {
    return [...this.open_].filter((mac) => {
      const s = sessions.byMac(mac);
      return s === null || s.state !== 'ACTIVE' || gates.isHeld(mac);
    });
  }
}

async function rig(opts: { leaveForeign?: boolean; graceMs?: number } = {}) {
  const time = new FakeTime();
  const valve = new FakeValve();
  const sessions = await SessionManager.open({ store: new MemoryStore(), clock: time, timers: time });
  const toppedUp: string[] = [];
  const kernelQuota = {
    enabled: true,
    start: async () => true,
    has: () => false,
    set: async () => undefined,
    toppedUp: async (mac: string) => {
      toppedUp.push(mac);
    },
  };
  const gates = new Gatekeeper({
    valve,
    sessions,
    log: createLogger({ write: () => undefined }),
    clock: time,
    timers: time,
    kernelQuota,
    ...(opts.leaveForeign !== undefined && { leaveForeign: opts.leaveForeign }),
    ...(opts.graceMs !== undefined && { portalLostGraceMs: opts.graceMs }),
  });
  const events: string[] = [];
  gates.on('auth-starting', (mac) => events.push(`auth-starting ${mac}`));
  gates.on('auth-finished', (mac, _id, result) => events.push(`auth-finished ${mac} ${result}`));
  gates.on('opened', (s) => events.push(`opened ${s.mac}`));
  let refs = 0;
  const buy = async (mac: string, metric: 'bytes' | 'seconds' = 'bytes', allotment = 10n ** 9n): Promise<Session> =>
    (
      await sessions.activate({
        mac,
        metric,
        allotment,
        payment: { method: 'grant', reference: `g-${++refs}`, amount: 0n, asset: '', at: time.now() },
      })
    ).session;
  const tick = () => gates.enforce(valve.openUnpaid(sessions, gates), time.now());
  return { time, valve, sessions, gates, events, toppedUp, buy, tick };
}

test(
  'a session start opens its gate by itself; the meter ' + 'hears auth-starting, auth-finished, then opened',
  async () => {
    const r = await rig();
    r.valve.present.add(A);
    const s = await r.buy(A);
    assert.is(await r.gates.opened(s), 'opened');
    assert.equal(r.valve.calls, [`open ${A}`]);
    assert.equal(r.events, [`auth-starting ${A}`, `auth-finished ${A} opened`, `opened ${A}`]);
    assert.is(r.gates.gateOf(A), 'already-open');
  },
);

test('every session end closes its gate: admin, time limit, and the close is what closed() reports', async () => {
  const r = await rig();
  r.valve.present.add(A);
  r.valve.present.add(B);
  const a = await r.buy(A);
  const b = await r.buy(B, 'seconds', 60n);
  await r.gates.opened(a);
  await r.gates.opened(b);
  await r.sessions.end(a.id, 'admin');
  assert.is(await r.gates.closed(A), 'closed');
  assert.not.ok(r.valve.open_.has(A));
  await r.time.advance(61_000); // b's deadline
  assert.is(r.sessions.get(b.id)!.state, 'EXPIRED');
  assert.is(await r.gates.closed(B), 'closed');
  assert.not.ok(r.valve.open_.has(B));
});

test('a top-up raises the kernel quota and never re-auths', async () => {
  const r = await rig();
  r.valve.present.add(A);
  await r.gates.opened(await r.buy(A));
  await r.buy(A); // the same MAC again: a top-up
  assert.equal(r.toppedUp, [A]);
  assert.equal(r.valve.calls, [`open ${A}`]);
});

test(
  "new limits (CoA-Request, ubus change) move a data session's kernel quota, never re-auth; a time session's are " +
    'left alone',
  async () => {
    const r = await rig();
    r.valve.present.add(A);
    r.valve.present.add(B);
    const a = await r.buy(A);
    const b = await r.buy(B, 'seconds', 600n);
    await r.gates.opened(a);
    await r.gates.opened(b);
    await r.sessions.setLimits(a.id, { bytes: 5n * 10n ** 8n });
    await r.sessions.setLimits(b.id, { seconds: 1200n });
    assert.equal(r.toppedUp, [A]);
    assert.equal(r.valve.calls, [`open ${A}`, `open ${B}`]);
  },
);

test(
  'a live session whose client is absent is pending; it opens when the client shows up (a new epoch, no `opened` ' +
    'event)',
  async () => {
    const r = await rig();
    const s = await r.buy(A);
    assert.is(await r.gates.opened(s), 'pending');
    assert.is(r.gates.gateOf(A), 'pending');
    r.valve.present.add(A);
    await r.gates.reopen(A); // the meter: a paying client present but not authenticated
    assert.ok(r.valve.open_.has(A));
    assert.is(r.gates.gateOf(A), 'already-open');
    assert.not.ok(r.events.includes(`opened ${A}`), "opened is for a start (the meter's first reading), not a re-open");
    assert.is(r.gates.stats().reopened, 1);
  },
);

test(
  'a paying client whose gate keeps failing to open ends ' + 'portal-lost after the grace, and its gate is closed',
  async () => {
    const r = await rig({ graceMs: 60_000 });
    const s = await r.buy(A);
    await r.gates.opened(s);
    await r.gates.reopen(A); // starts the failing streak
    await r.time.advance(30_000);
    await r.gates.reopen(A);
    assert.is(r.sessions.get(s.id)!.state, 'ACTIVE', 'within the grace');
    await r.time.advance(31_000);
    await r.gates.reopen(A);
    assert.is(r.sessions.get(s.id)!.state, 'TERMINATED');
    assert.is(r.sessions.get(s.id)!.endCause, 'portal-lost');
    assert.is(await r.gates.closed(A), 'closed');
  },
);

test(
  'a held gate stays closed until released: a re-open ' + 'skips it, a tick closes it again, release opens it',
  async () => {
    const r = await rig();
    r.valve.present.add(A);
    await r.gates.opened(await r.buy(A));
    assert.ok(await r.gates.hold(A));
    assert.not.ok(await r.gates.hold(A), 'a second hold changes nothing');
    assert.not.ok(r.valve.open_.has(A));
    await r.gates.reopen(A);
    assert.not.ok(r.valve.open_.has(A), "the meter's re-open leaves a held gate closed");
    r.valve.open_.add(A); // opened behind sluice's back
    await r.tick();
    assert.not.ok(r.valve.open_.has(A), 'a tick closes a held gate found open');
    assert.is(r.gates.stats().unpaidClosed, 0, 'not counted as free access');
    assert.ok(await r.gates.release(A));
    assert.ok(r.valve.open_.has(A));
    await r.tick();
    assert.ok(r.valve.open_.has(A), 'a released gate is left open');
  },
);

test("a client open without a live session is closed at every tick; a live session's gate never is", async () => {
  const r = await rig();
  r.valve.present.add(A);
  r.valve.present.add(B);
  await r.gates.opened(await r.buy(A));
  r.valve.open_.add(B); // authenticated by other means
  await r.tick();
  assert.not.ok(r.valve.open_.has(B));
  assert.ok(r.valve.open_.has(A));
  assert.is(r.gates.stats().unpaidClosed, 1);
  r.valve.open_.add(B); // again
  await r.tick();
  assert.not.ok(r.valve.open_.has(B));
});

test(
  'leave_foreign_clients: a gate sluice did not open is left alone; one it opened still closes when its session ' +
    'ends',
  async () => {
    const r = await rig({ leaveForeign: true });
    r.valve.present.add(A);
    r.valve.present.add(B);
    r.valve.open_.add(B);
    const a = await r.buy(A);
    await r.gates.opened(a);
    await r.tick();
    assert.ok(r.valve.open_.has(B));
    await r.sessions.end(a.id, 'admin');
    await r.gates.closed(A);
    assert.not.ok(r.valve.open_.has(A));
  },
);

test(
  'start: gates of sessions that ended while down are closed, open clients without a session deauthed, live ones ' +
    're-opened',
  async () => {
    const r = await rig();
    const ended = await r.buy(A);
    await r.gates.opened(ended);
    await r.sessions.end(ended.id, 'time-limit');
    r.valve.open_.add(A); // as if the portal had kept it open while sluice was down
    r.valve.present.add(B);
    const live = await r.buy(B);
    r.valve.open_.clear(); // the portal restarted: B present but not authenticated
    r.valve.calls.length = 0;
    r.valve.open_.add(A);
    await r.gates.start([r.sessions.get(ended.id)!]);
    assert.not.ok(r.valve.open_.has(A));
    assert.ok(r.valve.open_.has(B));
    assert.is(r.sessions.get(live.id)!.state, 'ACTIVE');
  },
);

test.run();
