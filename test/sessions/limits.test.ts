// tier: fast
// Data sessions with a hard deadline (a voucher with both limits) and limits set anew (a RADIUS CoA-Request).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mac, payment, setup, useBytes } from './helpers.ts';
import { FakeTime } from './fake-time.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { usedAt } from '../../src/sessions/model.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

test('a data session with a deadline ends as time-limit at the deadline; a data top-up does not move it', async () => {
  const { time, manager, events } = await setup();
  const deadline = time.now() + 60_000;
  const { session } = await manager.activate({
    mac: mac(1),
    metric: 'bytes',
    allotment: 1000n,
    payment: payment(),
    expiresAt: deadline,
  });
  assert.is(session.expiresAt, deadline);
  const topped = await manager.activate({ mac: mac(1), metric: 'bytes', allotment: 500n, payment: payment() });
  assert.is(topped.session.allotment, 1500n);
  assert.is(topped.session.expiresAt, deadline, 'bytes do not buy time');
  useBytes(manager, [[mac(1), 100]]);
  await time.advance(59_000);
  assert.is(manager.get(session.id)!.state, 'ACTIVE');
  await time.advance(1_500);
  const ended = manager.get(session.id)!;
  assert.equal([ended.state, ended.endCause, ended.used], ['EXPIRED', 'time-limit', 100]);
  assert.equal(events.ended, [session.id]);
  await manager.close();
});

test('the data limit still ends a session with a deadline first when it comes first', async () => {
  const { time, manager } = await setup();
  const { session } = await manager.activate({
    mac: mac(2),
    metric: 'bytes',
    allotment: 1000n,
    payment: payment(),
    expiresAt: time.now() + 60_000,
  });
  const ended = useBytes(manager, [[mac(2), 1000]]);
  assert.equal(
    ended.map((s) => [s.id, s.endCause]),
    [[session.id, 'data-limit']],
  );
  await manager.close();
});

test('a deadline on a time session is refused', async () => {
  const { time, manager } = await setup();
  await rejectsWithCode(
    manager.activate({ mac: mac(3), metric: 'seconds', allotment: 10n, payment: payment(), expiresAt: time.now() + 1 }),
    'ERR_INVALID_GRANT',
  );
  await manager.close();
});

test('setLimits: a time session shortened past now ends at once; lengthened it moves its deadline', async () => {
  const { time, manager } = await setup();
  const a = (await manager.activate({ mac: mac(4), metric: 'seconds', allotment: 600n, payment: payment() })).session;
  const b = (await manager.activate({ mac: mac(5), metric: 'seconds', allotment: 600n, payment: payment() })).session;
  await time.advance(120_000);
  const shortened = await manager.setLimits(a.id, { seconds: 60n });
  assert.equal([shortened.state, shortened.endCause], ['EXPIRED', 'time-limit']);
  const longer = await manager.setLimits(b.id, { seconds: 900n });
  assert.equal([longer.allotment, longer.expiresAt], [900n, b.startedAt! + 900_000]);
  const shorter = await manager.setLimits(b.id, { seconds: 180n });
  assert.is(shorter.state, 'ACTIVE');
  await time.advance(61_000);
  assert.equal(manager.get(b.id)!.endCause, 'time-limit');
  await manager.close();
});

test('setLimits: bytes on a data session; bytes on a time session refused; unknown session refused', async () => {
  const { manager } = await setup();
  const d = (await manager.activate({ mac: mac(6), metric: 'bytes', allotment: 10_000n, payment: payment() })).session;
  const t = (await manager.activate({ mac: mac(7), metric: 'seconds', allotment: 60n, payment: payment() })).session;
  useBytes(manager, [[mac(6), 4000]]);
  assert.is((await manager.setLimits(d.id, { bytes: 5000n })).allotment, 5000n);
  assert.equal(
    useBytes(manager, [[mac(6), 1000]]).map((s) => s.endCause),
    ['data-limit'],
  );
  await rejectsWithCode(manager.setLimits(t.id, { bytes: 5n }), 'ERR_SESSION_METRIC_MISMATCH');
  await rejectsWithCode(manager.setLimits('0000000000000000', { seconds: 5n }), 'ERR_SESSION_NOT_FOUND');
  await manager.close();
});

test('limits and deadlines survive a restart on the journal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
  try {
    const time = new FakeTime();
    const first = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    const deadline = time.now() + 3600_000;
    const d = (
      await first.activate({
        mac: mac(8),
        metric: 'bytes',
        allotment: 10_000n,
        payment: payment(),
        expiresAt: deadline,
      })
    ).session;
    const t = (await first.activate({ mac: mac(9), metric: 'seconds', allotment: 600n, payment: payment() })).session;
    await first.setLimits(d.id, { bytes: 7000n, seconds: 1800n });
    await first.setLimits(t.id, { seconds: 1200n });
    await first.close();
    const second = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    const d2 = second.get(d.id)!;
    const t2 = second.get(t.id)!;
    assert.equal([d2.allotment, d2.expiresAt], [7000n, d.startedAt! + 1800_000]);
    assert.equal([t2.allotment, t2.expiresAt], [1200n, t.startedAt! + 1200_000]);
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "a time session's clock start at its gate's opening survives a restart: used counts from then, the clock moves " +
    'once',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
    try {
      const time = new FakeTime();
      const first = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
      const t = (await first.activate({ mac: mac(10), metric: 'seconds', allotment: 600n, payment: payment() }))
        .session;
      // The device joins the portal 30 s after the purchase (a whole second: its deadline needs no rounding).
      await time.advance(30_000);
      await first.startClock(t.id, time.now());
      const opened = { ...first.get(t.id)! };
      assert.equal([opened.startedAt, opened.expiresAt], [t.createdAt + 30_000, t.createdAt + 630_000]);
      await time.advance(60_000);
      assert.is(usedAt(first.get(t.id)!, time.now()), 60);
      await first.close();
      const second = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
      const t2 = second.get(t.id)!;
      // Before, the start went back to the purchase: used 90 s with 540 s left of a 600 s session.
      assert.equal([t2.startedAt, t2.expiresAt], [opened.startedAt, opened.expiresAt]);
      assert.is(usedAt(t2, time.now()), 60);
      await second.startClock(t.id, time.now());
      assert.equal(
        [second.get(t.id)!.startedAt, second.get(t.id)!.expiresAt],
        [opened.startedAt, opened.expiresAt],
        'not moved again',
      );
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('charge: at most what is left, once per key, journaled; a repeat takes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-limits-'));
  try {
    const time = new FakeTime();
    const first = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    const d = (await first.activate({ mac: mac(11), metric: 'bytes', allotment: 10_000n, payment: payment() })).session;
    const t = (await first.activate({ mac: mac(12), metric: 'seconds', allotment: 600n, payment: payment() })).session;
    useBytes(first, [[mac(11), 1000]]);
    const [a, again] = await Promise.all([first.charge(d.id, 3000n, 'k1'), first.charge(d.id, 3000n, 'k1')]);
    assert.equal([a.taken, again.taken, first.get(d.id)!.allotment], [3000n, null, 7000n]);
    assert.is(first.chargeTaken('k1'), 3000n, 'what it took');
    const seconds = await first.charge(t.id, 100n, 'k2');
    assert.equal([seconds.taken, seconds.session.allotment], [100n, 500n]);
    assert.is(seconds.session.expiresAt, t.expiresAt! - 100_000, 'the deadline comes forward');
    await first.close();
    const second = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    assert.equal([second.get(d.id)!.allotment, second.get(t.id)!.expiresAt], [7000n, t.expiresAt! - 100_000]);
    assert.is((await second.charge(d.id, 3000n, 'k1')).taken, null, 'the key survives the restart');
    // What each charge took, after the restart too: a venue handover's reply tells the fleet.
    assert.equal([second.chargeTaken('k1'), second.chargeTaken('k2'), second.chargeTaken('k9')], [3000n, 100n, null]);
    const rest = await second.charge(d.id, 9000n, 'k3');
    assert.equal([rest.taken, rest.session.state, rest.session.endCause], [6000n, 'EXPIRED', 'data-limit']);
    assert.is(second.chargeTaken('k3'), 6000n, 'at most what was left');
    await rejectsWithCode(second.charge(d.id, 1n, 'k4'), 'ERR_SESSION_NOT_FOUND');
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
