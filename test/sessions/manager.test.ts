// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeTime, settle } from './fake-time.ts';
import { CountingStore, mac, payment, setup, useBytes } from './helpers.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { FIRST_CHECKPOINT_MS } from '../../src/sessions/checkpoints.ts';
import type { Session, SessionManager } from '../../src/sessions/index.ts';

/** A data session for mac(n) whose allotment no test reaches. */
async function dataSession(manager: SessionManager, n: number): Promise<Session> {
  const { session } = await manager.activate({
    mac: mac(n),
    metric: 'bytes',
    allotment: 10n ** 12n,
    payment: payment(),
  });
  return session;
}

test('time sessions end with time-limit within 1 s of their deadline, from a single armed timer', async () => {
  const { time, manager, events } = await setup();
  const sessions = [];
  for (let i = 0; i < 60; i++) {
    const { session } = await manager.activate({
      mac: mac(i),
      metric: 'seconds',
      allotment: BigInt(30 + ((i * 37) % 90)),
      payment: payment(),
    });
    sessions.push(session);
  }
  assert.is(time.pending(), 1, 'one timer for 60 sessions');
  const start = time.now();
  for (const s of [...sessions].sort((a, b) => a.expiresAt! - b.expiresAt!)) {
    await time.advance(s.expiresAt! - 1 - time.now());
    assert.is(manager.get(s.id)!.state, 'ACTIVE', 'not before its deadline');
    assert.ok(time.pending() <= 1);
    await time.advance(1000);
    const ended = manager.get(s.id)!;
    assert.is(ended.state, 'EXPIRED');
    assert.is(ended.endCause, 'time-limit');
    assert.ok(ended.endedAt! - s.expiresAt! < 1000 && ended.endedAt! >= s.expiresAt!);
    assert.is(ended.used, Number(s.allotment), 'a time session used all of its seconds');
  }
  assert.ok(time.now() - start < 130_000);
  assert.is(events.ended.length, 60);
  assert.is(new Set(events.ended).size, 60, 'each ended exactly once');
  assert.is(time.pending(), 0, 'no timer left once nothing is scheduled');
  await manager.close();
});

test('a top-up extends a time session: same id, start kept, expiry moved, topup event, no second start', async () => {
  const { time, manager, events } = await setup();
  const { session } = await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment() });
  await time.advance(30_000);
  const topped = await manager.activate({
    mac: '02-00-00-00-00-01',
    metric: 'seconds',
    allotment: 60n,
    payment: payment(),
  });
  assert.ok(topped.toppedUp);
  assert.is(topped.session.id, session.id);
  assert.is(topped.session.startedAt, session.startedAt);
  assert.is(topped.session.allotment, 120n);
  assert.is(topped.session.expiresAt, session.startedAt! + 120_000);
  assert.is(topped.session.used, 30);
  assert.is(topped.session.payments.length, 2);
  assert.equal(events.started, [session.id]);
  assert.equal(events.topup, [session.id]);
  await time.advance(89_000);
  assert.is(manager.get(session.id)!.state, 'ACTIVE', 'still open after the original deadline');
  await time.advance(1000);
  assert.is(manager.get(session.id)!.endCause, 'time-limit');
  assert.is(time.pending(), 0);
  await manager.close();
});

test('a data top-up keeps usage and grows the allotment; a metric mismatch is refused clearly', async () => {
  const { manager } = await setup();
  const { session } = await manager.activate({ mac: mac(2), metric: 'bytes', allotment: 1000n, payment: payment() });
  useBytes(manager, [[mac(2), 600]]);
  const topped = await manager.activate({ mac: mac(2), metric: 'bytes', allotment: 1000n, payment: payment() });
  assert.is(topped.session.id, session.id);
  assert.is(topped.session.used, 600);
  assert.is(topped.session.allotment, 2000n);
  await rejectsWithCode(
    manager.activate({ mac: mac(2), metric: 'seconds', allotment: 60n, payment: payment() }),
    'ERR_SESSION_METRIC_MISMATCH',
  );
  assert.is(manager.get(session.id)!.allotment, 2000n, 'the refused purchase changed nothing');
  await manager.close();
});

test('data sessions end with data-limit at their allotment; usage is never negative', async () => {
  const { manager, events } = await setup();
  const { session } = await manager.activate({ mac: mac(3), metric: 'bytes', allotment: 10_000n, payment: payment() });
  assert.equal(
    useBytes(manager, [
      [mac(3), 4000],
      [mac(3), -5000],
      [mac(3), 1.5],
      [mac(3), Number.NaN],
    ]),
    [],
  );
  assert.is(manager.get(session.id)!.used, 4000);
  assert.is(manager.stats().rejectedDeltas, 3);
  assert.equal([...manager.activeDataSessions()], [{ id: session.id, mac: mac(3), remainingBytes: 6000 }]);
  const ended = useBytes(manager, [
    [mac(3), 6500],
    [mac(99), 100],
  ]);
  assert.is(ended.length, 1);
  assert.is(ended[0]!.endCause, 'data-limit');
  assert.is(ended[0]!.state, 'EXPIRED');
  assert.is(ended[0]!.used, 10_500, 'the overshoot is counted, not forgiven');
  assert.equal(events.ended, [session.id]);
  assert.equal(useBytes(manager, [[mac(3), 100]]), [], 'no usage after the end');
  assert.is(manager.get(session.id)!.used, 10_500);
  assert.equal([...manager.activeDataSessions()], []);
  await manager.close();
});

test('time sessions count bytes for accounting but are not ended by them', async () => {
  const { manager } = await setup();
  const { session } = await manager.activate({ mac: mac(4), metric: 'seconds', allotment: 600n, payment: payment() });
  assert.equal(useBytes(manager, [['02:00:00:00:00:04', 5_000_000_000]]), []);
  assert.is(manager.get(session.id)!.bytes, 5_000_000_000);
  assert.is(manager.get(session.id)!.state, 'ACTIVE');
  await manager.close();
});

test('device limit: a user on a new device ends their oldest session first', async () => {
  const { time, manager, events } = await setup({ limits: { maxDevicesPerUser: 2 } });
  const a = await manager.activate({
    mac: mac(10),
    user: 'alice',
    metric: 'seconds',
    allotment: 600n,
    payment: payment(),
  });
  await time.advance(1000);
  const b = await manager.activate({
    mac: mac(11),
    user: 'alice',
    metric: 'seconds',
    allotment: 600n,
    payment: payment(),
  });
  await time.advance(1000);
  await manager.activate({ mac: mac(20), user: 'bob', metric: 'seconds', allotment: 600n, payment: payment() });
  const c = await manager.activate({
    mac: mac(12),
    user: 'alice',
    metric: 'bytes',
    allotment: 1000n,
    payment: payment(),
  });
  assert.is(manager.get(a.session.id)!.endCause, 'device-limit');
  assert.is(manager.get(a.session.id)!.state, 'TERMINATED');
  assert.is(manager.get(b.session.id)!.state, 'ACTIVE');
  assert.is(manager.get(c.session.id)!.state, 'ACTIVE');
  assert.is(events.ended.indexOf(a.session.id), 0);
  assert.ok(events.started.indexOf(c.session.id) > -1);
  assert.is(manager.list({ user: 'alice', state: 'ACTIVE' }).length, 2);
  // A top-up on a device already counted is not a new device.
  await manager.activate({ mac: mac(11), user: 'alice', metric: 'seconds', allotment: 60n, payment: payment() });
  assert.is(manager.list({ user: 'alice', state: 'ACTIVE' }).length, 2);
  manager.configure({ limits: { maxDevicesPerUser: 1 } });
  const d = await manager.activate({
    mac: mac(13),
    user: 'alice',
    metric: 'seconds',
    allotment: 60n,
    payment: payment(),
  });
  assert.equal(
    manager.list({ user: 'alice', state: 'ACTIVE' }).map((s) => s.id),
    [d.session.id],
  );
  assert.is(manager.list({ user: 'bob', state: 'ACTIVE' }).length, 1, 'other users are untouched');
  await manager.close();
});

test('two causes racing end a session exactly once', async () => {
  const { time, manager, events } = await setup();
  const data = await manager.activate({ mac: mac(30), metric: 'bytes', allotment: 100n, payment: payment() });
  const [admin, limit] = [manager.end(data.session.id, 'admin'), useBytes(manager, [[mac(30), 500]])];
  assert.equal(limit, []);
  assert.is((await admin)!.endCause, 'admin');
  assert.is(await manager.end(data.session.id, 'portal-lost'), null, 'ending an ended session is a no-op');
  const timed = await manager.activate({ mac: mac(31), metric: 'seconds', allotment: 10n, payment: payment() });
  await time.advance(9_999);
  const racing = Promise.all([manager.end(timed.session.id, 'disconnect'), time.advance(2000)]);
  await racing;
  assert.is(manager.get(timed.session.id)!.endCause, 'disconnect');
  assert.equal(events.ended, [data.session.id, timed.session.id]);
  assert.is(await manager.end('no-such-session', 'admin'), null);
  await rejectsWithCode(manager.end(timed.session.id, 'bogus' as never), 'ERR_INVALID_END_CAUSE');
  await manager.close();
});

test('endUser ends every live session of a user (pc-logout)', async () => {
  const { manager } = await setup();
  await manager.activate({ mac: mac(40), user: 'carol', metric: 'seconds', allotment: 60n, payment: payment() });
  await manager.activate({ mac: mac(41), user: 'carol', metric: 'bytes', allotment: 60n, payment: payment() });
  await manager.activate({ mac: mac(42), user: 'dave', metric: 'bytes', allotment: 60n, payment: payment() });
  const ended = await manager.endUser('carol', 'pc-logout');
  assert.is(ended.length, 2);
  assert.ok(ended.every((s) => s.endCause === 'pc-logout' && s.state === 'TERMINATED'));
  assert.is(manager.list({ state: 'ACTIVE' }).length, 1);
  assert.equal(await manager.endUser('carol'), []);
  await manager.close();
});

test("usage reaches the store only at checkpoints, then on close; a data session's first usage at once", async () => {
  const { time, store, manager } = await setup({ checkpointIntervalMs: 300_000 });
  const session = await dataSession(manager, 50);
  const afterPurchase = store.count();
  useBytes(manager, [[mac(50), 1000]]);
  await time.advance(FIRST_CHECKPOINT_MS - 1);
  assert.is(store.count(), afterPurchase);
  await time.advance(1);
  // Its counter mark goes with it: a restart bills the time sluice was down from there, not from nothing.
  assert.is(store.count('usage'), 1, 'the first usage of a data session is written within FIRST_CHECKPOINT_MS');
  const afterFirst = store.count();
  for (let second = 2; second <= 300; second++) {
    useBytes(manager, [[mac(50), 1000]]);
    await time.advance(1000);
  }
  assert.is(store.count(), afterFirst, 'no write while usage flows between checkpoints');
  useBytes(manager, [[mac(50), 1000]]);
  await time.advance(1000);
  assert.is(store.count('usage'), 2, 'one checkpoint after the interval');
  for (let second = 1; second <= 120; second++) {
    useBytes(manager, [[mac(50), 1000]]);
    await time.advance(1000);
  }
  assert.is(store.count('usage'), 2);
  await time.advance(600_000);
  assert.is(store.count('usage'), 3, 'the pending usage is written once the interval is up');
  await time.advance(600_000);
  assert.is(store.count('usage'), 3, 'no checkpoint when nothing changed');
  useBytes(manager, [[mac(50), 5]]);
  await manager.close();
  await manager.close();
  assert.is(store.count('usage'), 4, 'close writes the last checkpoint');
  const reopened = await setup({ store: new CountingStore(store.inner) });
  assert.is(reopened.manager.get(session.id)!.used, 301_000 + 120_000 + 5);
  await reopened.manager.close();
});

test('a checkpoint is due one interval after the last write, not after the first usage that follows it', async () => {
  // The meter bills a poll after a write: were the timer armed then, a crash just before it would lose an interval
  // and a poll of usage, more than checkpoint_interval promises.
  const { time, store, manager } = await setup({ checkpointIntervalMs: 10_000 });
  await dataSession(manager, 52);
  useBytes(manager, [[mac(52), 1000]]);
  await time.advance(FIRST_CHECKPOINT_MS);
  assert.is(store.count('usage'), 1, 'the first usage, early');
  const pollMs = 2000;
  await time.advance(pollMs);
  useBytes(manager, [[mac(52), 1000]]);
  await time.advance(10_000 - pollMs - 1);
  assert.is(store.count('usage'), 1, 'not before the interval is up');
  await time.advance(1);
  assert.is(store.count('usage'), 2, 'one interval after the last write');
  await time.advance(60_000);
  useBytes(manager, [[mac(52), 1000]]);
  await time.advance(0);
  assert.is(store.count('usage'), 3, 'a change after a quiet spell longer than the interval goes at once');
  await manager.close();
});

test(
  'every usage checkpoint carries every session billed since the one before ' + '(the meter marks them by slot)',
  async () => {
    const { time, store, manager } = await setup({ checkpointIntervalMs: 10_000 });
    const ids: string[] = [];
    for (const n of [60, 61, 62]) ids.push((await dataSession(manager, n)).id);
    const lastUsage = (): string[] => {
      const batch = store.appends.filter((b) => b.some((r) => r.t === 'usage')).at(-1)!;
      const record = batch.find((r) => r.t === 'usage');
      return record?.t === 'usage' ? record.entries.map(([id]) => id).sort() : [];
    };
    for (let round = 1; round <= 3; round++) {
      const before = store.count('usage');
      for (let second = 0; second < 10; second++) {
        useBytes(manager, [
          [mac(60), 100],
          [mac(61), 100],
          [mac(62), 100],
        ]);
        await time.advance(1000);
      }
      assert.ok(store.count('usage') > before, `round ${round}: a checkpoint was written`);
      assert.equal(lastUsage(), [...ids].sort(), `round ${round}: all three sessions in it`);
    }
    await manager.close();
  },
);

test("a data session's first usage is written early once, billed first by id and then by its slot", async () => {
  const { time, store, manager } = await setup({ checkpointIntervalMs: 300_000 });
  const session = await dataSession(manager, 51);
  manager.applyUsage([session.id], [1000], 1);
  await time.advance(FIRST_CHECKPOINT_MS);
  assert.is(store.count('usage'), 1);
  manager.applyUsage([session.id], [1000], 1, undefined, undefined, Int32Array.of(manager.slotOf(session.id)));
  await time.advance(FIRST_CHECKPOINT_MS * 10);
  assert.is(store.count('usage'), 1, 'billed before: the interval applies');
  await manager.close();
});

test(
  "a time session's usage waits for the interval: only " + "a data session's first usage is written at once",
  async () => {
    const { time, store, manager } = await setup({ checkpointIntervalMs: 300_000 });
    await manager.activate({ mac: mac(51), metric: 'seconds', allotment: 3600n, payment: payment() });
    const afterPurchase = store.count();
    useBytes(manager, [[mac(51), 1000]]);
    await time.advance(FIRST_CHECKPOINT_MS * 10);
    assert.is(store.count(), afterPurchase);
    await manager.close();
  },
);

test('recovery: time spent while down ends sessions; data sessions resume from the last checkpoint', async () => {
  const store = new CountingStore();
  const first = await setup({ store, checkpointIntervalMs: 60_000 });
  const short = await first.manager.activate({ mac: mac(60), metric: 'seconds', allotment: 120n, payment: payment() });
  const long = await first.manager.activate({ mac: mac(61), metric: 'seconds', allotment: 3600n, payment: payment() });
  const data = await first.manager.activate({
    mac: mac(62),
    metric: 'bytes',
    allotment: 1_000_000n,
    payment: payment(),
  });
  const full = await first.manager.activate({ mac: mac(63), metric: 'bytes', allotment: 1000n, payment: payment() });
  useBytes(first.manager, [
    [mac(62), 4000],
    [mac(63), 999],
  ]);
  await first.time.advance(60_000);
  useBytes(first.manager, [[mac(62), 7000]]);
  // Power cut: no close(). 10 minutes pass.
  const time = new FakeTime(first.time.now() + 600_000);
  const second = await setup({ store: new CountingStore(store.inner), time });
  assert.equal(
    second.recovery.ended.map((s) => [s.id, s.endCause]),
    [[short.session.id, 'time-limit']],
  );
  assert.is(second.manager.get(short.session.id)!.state, 'EXPIRED');
  assert.is(second.manager.get(long.session.id)!.state, 'ACTIVE');
  assert.is(second.manager.get(long.session.id)!.expiresAt, long.session.expiresAt);
  assert.is(second.manager.get(data.session.id)!.used, 4000, 'usage after the last checkpoint is lost, earlier kept');
  assert.is(second.manager.get(full.session.id)!.used, 999);
  assert.is(time.pending(), 1, 'the surviving time session is scheduled');
  await time.advance(long.session.expiresAt! - time.now());
  assert.is(second.manager.get(long.session.id)!.endCause, 'time-limit');
  await rejectsWithCode(
    second.manager.activate({ mac: mac(64), metric: 'bytes', allotment: 1n, payment: short.session.payments[0]! }),
    'ERR_PAYMENT_REPLAYED',
  );
  await second.manager.close();
});

test('nobody hears "yes" before the purchase is durable: PENDING until then, no usage, no start event', async () => {
  const { store, manager, events } = await setup();
  store.hold = true;
  const purchase = manager.activate({ mac: mac(70), metric: 'bytes', allotment: 1000n, payment: payment() });
  await settle();
  const pending = manager.byMac(mac(70))!;
  assert.is(pending.state, 'PENDING');
  assert.equal(events.started, []);
  assert.equal(useBytes(manager, [[mac(70), 5000]]), []);
  assert.is(manager.byMac(mac(70))!.used, 0);
  // A second purchase for the same MAC while the first is being written tops it up.
  const second = manager.activate({ mac: mac(70), metric: 'bytes', allotment: 500n, payment: payment() });
  await settle();
  store.release();
  const [a, b] = await Promise.all([purchase, second]);
  assert.is(a.session.state, 'ACTIVE');
  assert.ok(b.toppedUp);
  assert.is(b.session.allotment, 1500n);
  assert.equal(events.started, [a.session.id]);
  assert.equal(events.topup, [a.session.id]);
  await manager.close();
});

test('a sale being written is told to the gate (selling), and its refusal (unsold); nobody else hears', async () => {
  const { MemoryStore } = await import('../../src/sessions/memory-store.ts');
  let refuse = false;
  const inner = new MemoryStore();
  const store = new CountingStore({
    load: () => inner.load(),
    append: (records) => (refuse ? Promise.reject(new Error('EIO')) : inner.append(records)),
    compact: (now) => inner.compact(now),
    close: () => inner.close(),
  });
  const { manager, events } = await setup({ store });
  const told: string[] = [];
  for (const event of ['selling', 'unsold', 'started'] as const)
    manager.on(event, (s: Session) => told.push(`${event} ${s.mac} ${s.state}`));
  store.hold = true;
  const sold = manager.activate({ mac: mac(71), metric: 'bytes', allotment: 1000n, payment: payment() });
  await settle();
  assert.equal(told, [`selling ${mac(71)} PENDING`], 'told while the record is written');
  store.release();
  await sold;
  assert.equal(told, [`selling ${mac(71)} PENDING`, `started ${mac(71)} ACTIVE`]);
  told.length = 0;
  refuse = true;
  await rejectsWithCode(
    manager.activate({ mac: mac(72), metric: 'bytes', allotment: 1000n, payment: payment() }),
    'ERR_JOURNAL_WRITE',
  );
  assert.equal(told, [`selling ${mac(72)} PENDING`, `unsold ${mac(72)} PENDING`], 'refused: unsold, never started');
  assert.is(manager.byMac(mac(72)), null);
  assert.equal(events.started.length, 1);
  // A top-up is no sale of a new session: its gate is open already.
  refuse = false;
  await manager.activate({ mac: mac(71), metric: 'bytes', allotment: 500n, payment: payment() });
  assert.equal(told, [`selling ${mac(72)} PENDING`, `unsold ${mac(72)} PENDING`]);
  await manager.close();
});

test('a purchase on a spent session that has not ended yet starts a new session', async () => {
  const { time, manager } = await setup({ maxSleepMs: 30_000 });
  const { session } = await manager.activate({ mac: mac(80), metric: 'seconds', allotment: 10n, payment: payment() });
  // The wall clock jumps 1 h ahead (NTP at boot): the deadline passed but the monotonic timer has not fired.
  time.jumpWall(3_600_000);
  const next = await manager.activate({ mac: mac(80), metric: 'seconds', allotment: 10n, payment: payment() });
  assert.not.ok(next.toppedUp);
  assert.is.not(next.session.id, session.id);
  assert.is(manager.get(session.id)!.endCause, 'time-limit');
  await manager.close();
});

test('clock jumps: forward ends due sessions within maxSleepMs; backward never ends early', async () => {
  const { time, manager } = await setup({ maxSleepMs: 30_000 });
  const a = await manager.activate({ mac: mac(90), metric: 'seconds', allotment: 3600n, payment: payment() });
  time.jumpWall(2 * 3_600_000);
  await time.advance(30_000);
  assert.is(manager.get(a.session.id)!.endCause, 'time-limit');
  const b = await manager.activate({ mac: mac(91), metric: 'seconds', allotment: 120n, payment: payment() });
  time.jumpWall(-60_000);
  await time.advance(120_000);
  assert.is(manager.get(b.session.id)!.state, 'ACTIVE', 'the wall clock says 60 s are left');
  await time.advance(60_000);
  assert.is(manager.get(b.session.id)!.endCause, 'time-limit');
  await manager.close();
});

test('bad grants, limits and a closed manager are refused with codes', async () => {
  const { manager } = await setup({ limits: { maxSessions: 1 } });
  await rejectsWithCode(
    manager.activate({ mac: 'nope', metric: 'bytes', allotment: 1n, payment: payment() }),
    'ERR_INVALID_MAC',
  );
  await rejectsWithCode(
    manager.activate({ mac: mac(1), metric: 'bytes', allotment: 0n, payment: payment() }),
    'ERR_INVALID_AMOUNT',
  );
  await rejectsWithCode(
    manager.activate({ mac: mac(1), metric: 'seconds', allotment: 10n ** 12n, payment: payment() }),
    'ERR_INVALID_AMOUNT',
  );
  await rejectsWithCode(
    manager.activate({ mac: mac(1), metric: 'hours' as never, allotment: 1n, payment: payment() }),
    'ERR_INVALID_GRANT',
  );
  await rejectsWithCode(
    manager.activate({ mac: mac(1), metric: 'bytes', allotment: 1n, payment: { method: 'x' } as never }),
    'ERR_INVALID_GRANT',
  );
  await manager.activate({ mac: mac(1), metric: 'bytes', allotment: 1n, payment: payment() });
  await rejectsWithCode(
    manager.activate({ mac: mac(2), metric: 'bytes', allotment: 1n, payment: payment() }),
    'ERR_SESSION_LIMIT',
  );
  await manager.close();
  await rejectsWithCode(
    manager.activate({ mac: mac(3), metric: 'bytes', allotment: 1n, payment: payment() }),
    'ERR_SESSIONS_CLOSED',
  );
  assert.equal(useBytes(manager, [[mac(1), 1]]), []);
});

test('a throwing listener is reported and does not stop other listeners', async () => {
  const { manager, events } = await setup();
  manager.on('started', () => {
    throw new Error('sink broke');
  });
  const { session } = await manager.activate({ mac: mac(5), metric: 'bytes', allotment: 1n, payment: payment() });
  assert.equal(events.started, [session.id]);
  assert.equal(events.warning, ['ERR_LISTENER']);
  await manager.close();
});

test('byMac shows the live session, else the most recent end; list filters', async () => {
  const { time, manager } = await setup();
  const first = await manager.activate({ mac: mac(6), metric: 'bytes', allotment: 10n, payment: payment() });
  useBytes(manager, [[mac(6), 10]]);
  await time.advance(1000);
  assert.is(manager.byMac('02:00:00:00:00:06')!.endCause, 'data-limit');
  const second = await manager.activate({ mac: mac(6), metric: 'seconds', allotment: 10n, payment: payment() });
  assert.is(manager.byMac(mac(6))!.id, second.session.id);
  await manager.end(second.session.id, 'admin');
  assert.is(manager.byMac(mac(6))!.id, second.session.id);
  assert.equal(
    manager.list({ mac: '02-00-00-00-00-06' }).map((s) => s.id),
    [first.session.id, second.session.id],
  );
  assert.equal(
    manager.list({ state: 'EXPIRED' }).map((s) => s.id),
    [first.session.id],
  );
  assert.is(manager.byMac(mac(7)), null);
  await manager.close();
});

test.run();
