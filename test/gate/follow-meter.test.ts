// tier: fast
// The gate follows the meter as it follows the sessions (Gatekeeper.follow): a good tick's open
// gates without a live session are closed, a paying client back unauthenticated is re-opened, metering overdue closes
// gates on nodogsplash only, and an open takes the address the ticks listed. A fake valve and meter, the real
// SessionManager over the MemoryStore, fake time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { Gatekeeper, type GateValve } from '../../src/gate/index.ts';
import { createLogger } from '../../src/log.ts';
import type { MeterEvents, TickReport } from '../../src/meter/options.ts';
import { Emitter, SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import type { PortalSnapshot } from '../../src/portal/index.ts';
import { FakeTime } from '../helpers/fake-time.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';

/** The portal as the gate sees it: who is present, whose gate is open; every call recorded (an open with `listed`). */
class FakeValve implements GateValve {
  readonly calls: string[] = [];
  readonly present = new Set<string>();
  readonly open_ = new Set<string>();
  async open(mac: string, _net: unknown, _ip?: string | null, listed?: boolean): Promise<'opened' | 'already-open'> {
    this.calls.push(`open ${mac}${listed ? ' listed' : ''}`);
    if (!this.present.has(mac)) throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `${mac} is not listed yet`);
    if (this.open_.has(mac)) return 'already-open';
    this.open_.add(mac);
    return 'opened';
  }
  async close(mac: string): Promise<'closed' | 'not-found'> {
    this.calls.push(`close ${mac}`);
    return this.open_.delete(mac) ? 'closed' : 'not-found';
  }
  async snapshot(): Promise<PortalSnapshot> {
    return { flavour: 'opennds', clients: [], declaredCount: 0 } as unknown as PortalSnapshot;
  }
}

/** The meter as the gate follows it: its events, and the addresses its ticks listed (each question recorded). */
class FakeMeter {
  readonly listed = new Map<string, string>();
  readonly asked: Array<[mac: string, maxAgeMs: number]> = [];
  private readonly events = new Emitter<MeterEvents>((err) => {
    throw err;
  });
  on<K extends keyof MeterEvents>(event: K, listener: (...args: MeterEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }
  emit<K extends keyof MeterEvents>(event: K, ...args: MeterEvents[K]): void {
    this.events.emit(event, ...args);
  }
  listedIp(mac: string, maxAgeMs: number): string | null {
    this.asked.push([mac, maxAgeMs]);
    return this.listed.get(mac) ?? null;
  }
}

function tick(fields: Partial<TickReport>): TickReport {
  return {
    tick: 1,
    ok: true,
    clients: 0,
    usage: [],
    reopen: [],
    gone: [],
    openUnpaid: [],
    at: 0,
    dropped: 0,
    baselined: 0,
    durationMs: 0,
    fetchMs: 0,
    scanMs: 0,
    applyMs: 0,
    nextInMs: 0,
    ...fields,
  };
}

/** Lets the gate's un-awaited work (enforce, reopen, closes) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function rig() {
  const time = new FakeTime();
  const valve = new FakeValve();
  const sessions = await SessionManager.open({ store: new MemoryStore(), clock: time, timers: time });
  const log = createLogger({ write: () => undefined });
  const gates = new Gatekeeper({ valve, sessions, log, clock: time, timers: time });
  const meter = new FakeMeter();
  gates.follow(meter);
  let refs = 0;
  const buy = async (mac: string, ip?: string): Promise<Session> =>
    (
      await sessions.activate({
        mac,
        ...(ip && { ip }),
        metric: 'bytes',
        allotment: 10n ** 9n,
        payment: { method: 'grant', reference: `g-${++refs}`, amount: 0n, asset: '', at: time.now() },
      })
    ).session;
  return { time, valve, sessions, gates, meter, buy };
}

test("a good tick's open gates without a live session are closed; a skipped tick's closes nothing", async () => {
  const r = await rig();
  r.valve.present.add(B);
  r.valve.open_.add(B); // opened behind sluice's back
  r.meter.emit('tick', tick({ ok: false, skipped: 'worker-error', openUnpaid: [B], at: r.time.now() }));
  await settle();
  assert.equal(r.valve.calls, []);
  r.meter.emit('tick', tick({ openUnpaid: [B], at: r.time.now() }));
  await settle();
  assert.equal(r.valve.calls, [`close ${B}`]);
  assert.is(r.gates.stats()['unpaidClosed'], 1);
});

test('a paying client the meter finds back unauthenticated has its gate re-opened', async () => {
  const r = await rig();
  const s = await r.buy(A); // the portal has not seen A yet: pending
  assert.is(await r.gates.opened(s), 'pending');
  r.valve.present.add(A);
  r.meter.emit('paying-client-needs-gate', A);
  await settle();
  assert.ok(r.valve.open_.has(A));
  assert.is(r.gates.gateOf(A), 'already-open');
  assert.is(r.gates.stats()['reopened'], 1);
});

test('metering overdue closes gates on nodogsplash only (its auth takes no limits); sessions stay active', async () => {
  const r = await rig();
  r.valve.present.add(A);
  const s = await r.buy(A);
  assert.is(await r.gates.opened(s), 'opened');
  r.meter.emit('metering-overdue', [A], 'opennds');
  await settle();
  assert.ok(r.valve.open_.has(A), 'openNDS stops a client at its quota itself');
  r.meter.emit('metering-overdue', [A], 'nodogsplash');
  await settle();
  assert.not.ok(r.valve.open_.has(A));
  assert.is(r.sessions.get(s.id)!.state, 'ACTIVE');
});

test("an open takes the ticks' listed address (at most 3 s old) only when it is the session's own", async () => {
  const r = await rig();
  r.valve.present.add(A);
  r.valve.present.add(B);
  r.meter.listed.set(A, '10.0.0.1');
  r.meter.listed.set(B, '10.0.0.9');
  assert.is(await r.gates.opened(await r.buy(A, '10.0.0.1')), 'opened');
  assert.is(await r.gates.opened(await r.buy(B, '10.0.0.2')), 'opened');
  assert.equal(r.valve.calls, [`open ${A} listed`, `open ${B}`]);
  assert.equal(r.meter.asked, [
    [A, 3000],
    [B, 3000],
  ]);
});

test.run();
