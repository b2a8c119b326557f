// tier: fast
/**
 * Speed tiers through the gate: a live change is journaled before the kernel hears of it and then set on
 * the session's open gates (a pending gate gets it at its auth); at start-up the gates found open are limited again
 * with their sessions' journaled rates (the shaper's start replaces what an earlier run left), and with nothing to
 * limit only the old table is dropped. The real Valve and SessionManager over a simulated portal; the shaper records.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SessionManager, type SessionRates } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { Valve, type ShapedClient } from '../../src/portal/index.ts';
import { Gatekeeper, type RateShaper } from '../../src/gate/gatekeeper.ts';
import { DaemonBackend } from '../../src/api/daemon-backend.ts';
import { createLogger } from '../../src/log.ts';
import { CountingStore } from '../sessions/helpers.ts';
import { OwnedTimers } from '../helpers/owned-timers.ts';
import { modelSpawn } from './model-spawn.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';
const SLOW: SessionRates = { downBps: 2_000_000, upBps: 1_000_000 };
const planRates = (plan: string): SessionRates | null => (plan === 'slow' ? SLOW : null);

type Call = ['set', ShapedClient] | ['remove', string] | ['start', ShapedClient[]] | ['dropLeftover'];

/** Records what the valve and the gate ask of the shaper, and the journal's length at each call. */
class RecordingShaper implements RateShaper {
  calls: Call[] = [];
  journalAt: number[] = [];
  constructor(private readonly store: CountingStore) {}
  private note(c: Call): void {
    this.calls.push(c);
    this.journalAt.push(this.store.appends.length);
  }
  async set(c: ShapedClient) {
    this.note(['set', { ...c }]);
  }
  async remove(mac: string) {
    this.note(['remove', mac]);
  }
  async start(clients: readonly ShapedClient[]) {
    this.note(['start', clients.map((c) => ({ ...c }))]);
    return true;
  }
  async dropLeftover() {
    this.note(['dropLeftover']);
  }
}

async function rig(portal: PortalModel, store: CountingStore) {
  const shaper = new RecordingShaper(store);
  const valve = new Valve({ command: ['ndsctl'], spawn: modelSpawn(portal), shaper });
  const sessions = await SessionManager.open({ store, planRates });
  const log = createLogger({ write: () => undefined });
  const timers = new OwnedTimers();
  const gates = new Gatekeeper({ valve, sessions, log, shaper, timers });
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
    shaper,
    sessions,
    gates,
    backend,
    async close() {
      timers.stop();
      await sessions.close();
      await valve.shutdown();
    },
  };
}

const grant = (mac: string, plan: string | null, ref: string) => ({
  mac,
  plan,
  metric: 'seconds' as const,
  allotment: 3600n,
  payment: { method: 'grant', reference: ref, amount: 0n, asset: '', at: Date.now() },
});

test(
  'change: the rates record is on flash before the shaper hears of it; the open gate gets the new rates at its ' +
    'address',
  async () => {
    const portal = new PortalModel({ flavour: 'opennds' });
    portal.addClient(A, '10.0.0.11');
    const store = new CountingStore(new MemoryStore());
    const r = await rig(portal, store);
    try {
      const { session } = await r.sessions.activate(grant(A, 'slow', 'g-a'));
      assert.is(await r.gates.opened(session), 'opened');
      assert.equal(r.shaper.calls, [['set', { mac: A, ip: '10.0.0.11', ...SLOW }]], "the plan's rates with the auth");
      store.hold = true;
      const reply = r.backend.changeRates(A, { downBps: 8_000_000, upBps: 1_000_000 });
      await new Promise((res) => setTimeout(res, 20));
      assert.is(r.shaper.calls.length, 1, 'nothing set while the record is being written');
      store.release();
      const view = await reply;
      assert.equal(view.rates, { downBps: 8_000_000, upBps: 1_000_000 });
      assert.equal(r.shaper.calls.at(-1), ['set', { mac: A, ip: '10.0.0.11', downBps: 8_000_000, upBps: 1_000_000 }]);
      const rec = store.appends.findIndex((batch) => batch.some((x) => x.t === 'rates'));
      assert.ok(
        rec >= 0 && r.shaper.journalAt.at(-1)! > rec,
        'the shaper was told after the rates record was appended',
      );
    } finally {
      await r.close();
    }
  },
);

test('change of a pending gate: nothing in the kernel now; its auth sets the new rates', async () => {
  const portal = new PortalModel({ flavour: 'opennds' });
  const store = new CountingStore(new MemoryStore());
  const r = await rig(portal, store);
  try {
    const { session } = await r.sessions.activate(grant(B, 'slow', 'g-b'));
    assert.is(await r.gates.opened(session), 'pending', 'the portal does not list the client yet');
    await r.backend.changeRates(B, { downBps: 4_000_000, upBps: null });
    assert.equal(r.shaper.calls, []);
    portal.addClient(B, '10.0.0.12');
    await r.gates.reopen(B);
    assert.equal(r.shaper.calls, [['set', { mac: B, ip: '10.0.0.12', downBps: 4_000_000, upBps: null }]]);
  } finally {
    await r.close();
  }
});

test(
  'restart: gates found open are limited again with their journaled rates (a change included); none: the old ' +
    'table is dropped',
  async () => {
    const portal = new PortalModel({ flavour: 'opennds' });
    portal.addClient(A, '10.0.0.11');
    portal.addClient(B, '10.0.0.12');
    const memory = new MemoryStore();
    const first = await rig(portal, new CountingStore(memory));
    const a = (await first.sessions.activate(grant(A, 'slow', 'g-a'))).session;
    const b = (await first.sessions.activate(grant(B, null, 'g-b'))).session;
    assert.is(await first.gates.opened(a), 'opened');
    assert.is(await first.gates.opened(b), 'opened');
    await first.backend.changeRates(A, { downBps: 6_000_000, upBps: 1_000_000 });
    // The daemon dies: nothing closes; the portal keeps both gates open.
    const second = await rig(portal, new CountingStore(memory));
    try {
      await second.gates.start([]);
      assert.equal(
        second.shaper.calls,
        [['start', [{ mac: A, ip: '10.0.0.11', downBps: 6_000_000, upBps: 1_000_000 }]]],
        'one rebuild with the limited client (the unlimited one is not in it), no auth',
      );
      assert.is(portal.get(A)!.state, 'Authenticated');
    } finally {
      await second.close();
    }
    await first.sessions.end(a.id, 'admin');
    const third = await rig(portal, new CountingStore(memory));
    try {
      await third.gates.start([]);
      assert.equal(
        third.shaper.calls.filter((c) => c[0] !== 'remove'),
        [['dropLeftover']],
        'no rated gate open: the shaper is not started, the old table dropped',
      );
    } finally {
      await third.close();
      await first.close();
    }
  },
);

test.run();
