// tier: fast
/**
 * The release's presence wait (src/upstream/venue-presence.ts) on a fake clock: a device that has just left is given
 * up once `present_window` has passed since its last billed traffic (a fresh reading after each wait), not refused;
 * one whose traffic goes on is refused 2 s past the window; one never seen is given up at once. And where the fleet
 * sends a pending overlap charge (src/fleet/venue/charges.ts): to the holder it was sent to, never on to the next
 * holder before that one answered.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeTime } from '../helpers/fake-time.ts';
import { VenuePresence } from '../../src/upstream/venue-presence.ts';
import { chargeTarget, type PendingCharge } from '../../src/fleet/venue/charges.ts';
import type { UsageReport } from '../../src/sessions/index.ts';

const MAC = '02:00:00:00:aa:01';

/** A presence on a fake clock whose meter bills `mac` traffic at each reading while `busy()` says so. */
function rig(busy: () => boolean) {
  const time = new FakeTime();
  let listener: ((batch: readonly UsageReport[]) => void) | null = null;
  let readings = 0;
  const bill = (): void => listener?.([{ mac: MAC, deltaBytes: 1000 } as UsageReport]);
  const presence = new VenuePresence({
    sessions: {
      on: ((_: string, fn: (batch: readonly UsageReport[]) => void) => {
        listener = fn;
        return () => (listener = null);
      }) as never,
    },
    windowMs: () => 1000,
    reading: async () => {
      readings++;
      if (busy()) bill();
    },
    clock: time,
    timers: time,
  });
  presence.follow();
  return { time, presence, bill, readings: () => readings };
}

/** The outcome of `p` once the fake clock ran `ms` more. */
async function after<T>(time: FakeTime, ms: number, p: Promise<T>): Promise<string> {
  let outcome = 'pending';
  p.then(
    () => (outcome = 'released'),
    (err: { code?: string }) => (outcome = err.code ?? 'error'),
  );
  // In steps, as a clock moves: the reading each wait ends with settles before the clock moves on.
  await time.advance(0);
  for (let t = 0; t < ms; t += 50) await time.advance(Math.min(50, ms - t));
  return outcome;
}

test('a device that has just left is given up once the window passed since its last traffic', async () => {
  let busy = true;
  const r = rig(() => busy);
  r.bill(); // its last traffic here, just now
  busy = false;
  const wait = r.presence.untilAbsent(MAC);
  assert.is(await after(r.time, 900, wait), 'pending', 'within the window: waits, does not refuse');
  assert.is(await after(r.time, 200, wait), 'released');
  assert.ok(r.readings() >= 2, 'a fresh reading before and after the wait');
});

test('a device whose traffic goes on is refused 2 s past the window; one never seen is given up at once', async () => {
  const r = rig(() => true);
  const wait = r.presence.untilAbsent(MAC);
  assert.is(await after(r.time, 2500, wait), 'pending');
  assert.is(await after(r.time, 1000, wait), 'ERR_VENUE_DEVICE_PRESENT');
  const quiet = rig(() => false);
  assert.is(await after(quiet.time, 0, quiet.presence.untilAbsent(MAC)), 'released');
});

const pending = (p: Partial<PendingCharge>): PendingCharge => ({
  leaseId: 'ra/0123456789abcdef',
  move: 2,
  overlap: '100',
  metric: 'bytes',
  chargeEpoch: null,
  state: 'held',
  holder: 'rb',
  holderSession: 's1',
  epoch: 2,
  mac: MAC,
  venue: 'hall',
  ...p,
});

test('a charge goes to the holder it was sent to, or the holder now if none; never on before an answer', () => {
  assert.equal(chargeTarget(pending({})), { holder: 'rb', session: 's1', epoch: 2 });
  assert.equal(chargeTarget(pending({ chargeEpoch: 2 })), { holder: 'rb', session: 's1', epoch: 2 });
  assert.is(chargeTarget(pending({ chargeEpoch: 2, epoch: 3, holder: 'rc' })), null, 'moved on: wait for rb');
  assert.is(chargeTarget(pending({ state: 'moving', holderSession: null })), null, 'between two routers');
  assert.equal(chargeTarget(pending({ state: 'ended' })), { holder: 'rb', session: 's1', epoch: 2 });
});

test.run();
