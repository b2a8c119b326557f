// tier: fast
/**
 * The start-up reconcile under a gate whose openings do not wait in the portal's queue (`portal 'sluice'`: the
 * opening's nft run and the listing go their own ways, gate/own-valve.ts). A listing taken while an opening is in
 * flight does not show that device yet; a reconcile that runs once the opening answered must leave the gate to it,
 * not mark it pending: the device passes, and a gate sluice thinks pending is reported and waited on for good.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Gatekeeper } from '../../src/gate/gatekeeper.ts';
import type { GateValve } from '../../src/gate/options.ts';
import { silentLogger } from '../../src/log.ts';
import type { PortalClient, PortalSnapshot } from '../../src/portal/types.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';

const A = '02:00:00:00:0f:01';

function authenticated(mac: string): PortalClient {
  return {
    mac,
    ip: '10.0.0.9',
    token: null,
    state: 'Authenticated',
    downloadBytes: 0,
    uploadBytes: 0,
    sessionStart: null,
    sessionEnd: null,
    lastActive: null,
  };
}

test('an opening in flight while the start-up lists keeps its gate open, though the listing predates it', async () => {
  const open = new Set<string>();
  let letOpen = (): void => undefined;
  const openingHeld = new Promise<void>((go) => (letOpen = go));
  let openAnswered = (): void => undefined;
  const answered = new Promise<void>((done) => (openAnswered = done));
  const valve: GateValve = {
    async open(mac) {
      await openingHeld; // the opening's nft run
      open.add(mac);
      return 'opened';
    },
    async close(mac) {
      open.delete(mac);
      return 'closed';
    },
    // The listing is read now; its answer reaches the reconcile only after the opening answered.
    snapshot() {
      const clients = [...open].map(authenticated);
      const snapshot: PortalSnapshot = { flavour: 'opennds', clients, declaredCount: clients.length };
      return answered.then(() => snapshot);
    },
  };
  const sessions = await SessionManager.open({ store: new MemoryStore() });
  const gates = new Gatekeeper({ valve, sessions, log: silentLogger });
  try {
    const { session } = await sessions.activate({
      mac: A,
      metric: 'bytes',
      allotment: 10n ** 9n,
      payment: { method: 'grant', reference: 'g-inflight', amount: 0n, asset: '', at: Date.now() },
    });
    const opening = gates.opened(session);
    const started = gates.start([]);
    letOpen();
    assert.is(await opening, 'opened');
    assert.is(gates.gateOf(A), 'already-open', 'open once the opening answered');
    openAnswered();
    await started;
    assert.ok(open.has(A), 'the device passes');
    assert.is(gates.gateOf(A), 'already-open', 'the reconcile left the gate to its opening, not pending');
  } finally {
    await sessions.close();
  }
});

test.run();
