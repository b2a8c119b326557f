// tier: fast
/**
 * The router's half of a handover (src/upstream/venue-roaming.ts, docs/roaming.md): the holder closes first — a
 * release's reply leaves only once the portal confirmed the device's gate closed, and a close that failed is refused
 * as a device still here (the lease stays; the next release, finding the session ended `moved`, waits for the close
 * again). And the router a session moves to opens no more than the venue session was sold.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VenueRoaming, type VenueRoamingDeps } from '../../src/upstream/venue-roaming.ts';
import type { Grant, Session } from '../../src/sessions/index.ts';

const D = '02:00:00:00:5e:01';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function rig(gate: (mac: string) => Promise<'closed' | 'failed' | 'kept-open'>) {
  let s = {
    id: '00000000000000a1',
    mac: D,
    state: 'ACTIVE',
    metric: 'bytes',
    allotment: 8n * 1048576n,
    used: 1048576,
    bytes: 1048576,
    payments: [],
    endCause: null,
    endedAt: null,
    expiresAt: null,
    rates: null,
    maxDevices: 1,
    user: null,
    plan: null,
  } as unknown as Session;
  const granted: Grant[] = [];
  const sessions = {
    byMac: () => s,
    get: () => s,
    end: async () => (s = { ...s, state: 'TERMINATED', endCause: 'moved', endedAt: Date.now() } as Session),
    prepare: () => ({ release() {} }),
    activate: async (g: Grant) => {
      granted.push(g);
      return { session: s };
    },
    isApplied: () => false,
    on: () => () => undefined,
    charge: async () => ({ session: s, taken: null }),
    chargeTaken: () => null,
  } as unknown as VenueRoamingDeps['sessions'];
  const roaming = new VenueRoaming({
    sessions,
    publish: () => true,
    settings: () => ({ venue: 'hall', presentWindowMs: 1000 }),
    reading: async () => undefined,
    gateClosed: gate,
    log: quiet,
  });
  return { roaming, granted };
}

const release = { mac: D, venue: 'hall', lease: 'ra/00000000000000a1', epoch: '1', to: 'rb', revoke: true };

test("the release's reply waits for the portal to confirm the gate closed", async () => {
  let confirm: (v: 'closed') => void = () => undefined;
  const { roaming } = rig(() => new Promise((r) => (confirm = r)));
  let replied = false;
  const reply = roaming.release(release).then((r) => ((replied = true), r));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.not.ok(replied, 'no reply while the gate is open');
  confirm('closed');
  const figures = await reply;
  assert.is(figures['remaining'], String(7 * 1048576));
});

test('a close that failed is refused as a device still here; the next release answers once it closed', async () => {
  let outcome: 'closed' | 'failed' = 'failed';
  const { roaming } = rig(async () => outcome);
  await roaming.release(release).then(
    () => assert.unreachable('replied with the gate open'),
    (err: { code: string }) => assert.is(err.code, 'ERR_VENUE_DEVICE_PRESENT'),
  );
  outcome = 'closed';
  const again = await roaming.release(release);
  assert.is(again['remaining'], String(7 * 1048576), 'the ended session answers with its figures');
});

test('an open grants no more than the venue session was sold', async () => {
  const { roaming, granted } = rig(async () => 'closed');
  const args = { mac: '02:00:00:00:5e:09', venue: 'hall', lease: 'ra/00000000000000a1', epoch: '2', from: 'ra' };
  await roaming.open({ ...args, metric: 'bytes', remaining: '1125899906842624', sold: String(8 * 1048576) });
  assert.is(granted[0]!.allotment, 8n * 1048576n);
});

test.run();
