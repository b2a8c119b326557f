// tier: daemon
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { settle } from './fake-time.ts';
import { CountingStore, mac, payment, setup, useBytes } from './helpers.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { applyRecord, emptyState } from '../../src/sessions/store.ts';
import { decodeRecord, encodeLine } from '../../src/sessions/journal-codec.ts';

test(
  'a move keeps the session (id, usage, allotment, deadline), is on flash before `moved`, and leaves the old MAC ' +
    'without one',
  async () => {
    const { manager, store } = await setup();
    const { session } = await manager.activate({
      mac: mac(1),
      metric: 'bytes',
      allotment: 10_000n,
      payment: payment(),
    });
    useBytes(manager, [[mac(1), 4000]]);
    const moved: Array<[string, string]> = [];
    manager.on('moved', (s, from) => moved.push([s.mac, from]));
    store.hold = true;
    const moving = manager.move(session.id, '02-00-00-00-00-09');
    await settle();
    assert.equal(moved, [], 'nobody hears of the move before it is on flash');
    assert.is(manager.byMac(mac(1))!.mac, mac(1), 'still on the old MAC while the record is written');
    store.release();
    const view = await moving;
    assert.equal(moved, [['02:00:00:00:00:09', mac(1)]]);
    assert.is(view.id, session.id);
    assert.is(view.mac, '02:00:00:00:00:09');
    assert.is(view.used, 4000);
    assert.is(view.allotment, 10_000n);
    assert.is(manager.byMac(mac(1)), null, 'the old MAC has no session');
    assert.is(manager.byMac('02:00:00:00:00:09')!.id, session.id);
    assert.equal([...manager.activeMacs()], ['02:00:00:00:00:09']);
    // Usage goes on on the new MAC; a purchase there tops the moved session up.
    useBytes(manager, [['02:00:00:00:00:09', 1000]]);
    assert.is(manager.get(session.id)!.used, 5000);
    const topped = await manager.activate({
      mac: '02:00:00:00:00:09',
      metric: 'bytes',
      allotment: 1000n,
      payment: payment(),
    });
    assert.ok(topped.toppedUp);
    assert.is(topped.session.id, session.id);
    assert.is(store.count('move'), 1);
    await manager.close();
  },
);

test(
  'a move is refused, with nothing written, to a MAC with its own live session, for an ended or unknown session, ' +
    'and twice at once',
  async () => {
    const { manager, store } = await setup();
    const a = (await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment() })).session;
    await manager.activate({ mac: mac(2), metric: 'seconds', allotment: 60n, payment: payment() });
    await rejectsWithCode(manager.move(a.id, mac(2)), 'ERR_SESSION_MOVE_TARGET');
    await rejectsWithCode(manager.move('0000000000000000', mac(3)), 'ERR_SESSION_NOT_FOUND');
    await rejectsWithCode(manager.move(a.id, 'not-a-mac'), 'ERR_INVALID_MAC');
    store.hold = true;
    const first = manager.move(a.id, mac(3));
    await rejectsWithCode(manager.move(a.id, mac(4)), 'ERR_SESSION_MOVING');
    // A purchase for the MAC the session is moving to would race the move for that MAC: it waits (retry).
    await rejectsWithCode(
      manager.activate({ mac: mac(3), metric: 'seconds', allotment: 60n, payment: payment() }),
      'ERR_SESSION_MOVING',
    );
    store.release();
    await first;
    await manager.end(a.id, 'admin');
    await rejectsWithCode(manager.move(a.id, mac(5)), 'ERR_SESSION_NOT_FOUND');
    assert.is(store.count('move'), 1);
    await manager.close();
  },
);

test('a session ended while its move was being written stays ended, on no MAC; a replay agrees', async () => {
  const inner = new MemoryStore();
  const { manager, store, time } = await setup({ store: new CountingStore(inner) });
  const { session } = await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment() });
  store.hold = true;
  const moving = manager.move(session.id, mac(2));
  await settle();
  const ended = manager.endNow(session.id, 'admin');
  assert.ok(ended);
  store.release();
  await rejectsWithCode(moving, 'ERR_SESSION_NOT_FOUND');
  assert.is(manager.byMac(mac(2)), null);
  await manager.close();
  const again = await SessionManager.open({ store: inner, clock: time, timers: time });
  assert.is(again.get(session.id)!.state, 'TERMINATED');
  assert.equal([...again.activeMacs()], []);
  await again.close();
});

test('the move record round-trips through the journal codec and the reducer; a bad MAC in it is corruption', () => {
  const line = encodeLine({ t: 'move', id: 'abcdef0123456789', mac: '02:00:00:00:00:09', at: 5 });
  const decoded = decodeRecord(JSON.parse(line.slice(line.indexOf('{'))));
  assert.ok(decoded.ok);
  assert.equal(decoded.ok && decoded.value, { t: 'move', id: 'abcdef0123456789', mac: '02:00:00:00:00:09', at: 5 });
  const bad = decodeRecord({ t: 'move', id: 'abcdef0123456789', mac: 'AA-BB', at: 5 });
  assert.not.ok(bad.ok);
  const state = emptyState();
  applyRecord(state, {
    t: 'open',
    keys: [],
    session: {
      id: 's1',
      mac: mac(1),
      ip: '10.0.0.5',
      user: null,
      plan: null,
      metric: 'bytes',
      allotment: 10n,
      used: 3,
      bytes: 3,
      createdAt: 0,
      startedAt: 0,
      expiresAt: null,
      endedAt: null,
      state: 'ACTIVE',
      endCause: null,
      payments: [],
    },
  });
  applyRecord(state, { t: 'move', id: 's1', mac: mac(2), at: 1 });
  assert.is(state.sessions.get('s1')!.mac, mac(2));
  assert.is(state.sessions.get('s1')!.ip, null, "the old address was the old device's");
  applyRecord(state, { t: 'end', id: 's1', state: 'TERMINATED', cause: 'admin', at: 2, used: 3, bytes: 3 });
  applyRecord(state, { t: 'move', id: 's1', mac: mac(3), at: 3 });
  assert.is(state.sessions.get('s1')!.mac, mac(2), 'an ended session does not move');
});

test('a move survives a restart and a compaction of the flash journal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-move-'));
  try {
    const first = await SessionManager.open({ store: new JournalStore({ dir }) });
    const { session } = await first.activate({ mac: mac(1), metric: 'bytes', allotment: 10_000n, payment: payment() });
    await first.move(session.id, mac(7));
    await first.close();
    const second = await SessionManager.open({ store: new JournalStore({ dir }) });
    assert.is(second.byMac(mac(7))!.id, session.id);
    assert.is(second.byMac(mac(1)), null);
    await second.close();
    const journal = new JournalStore({ dir });
    await journal.load();
    await journal.compact(Date.now());
    await journal.close();
    const third = await SessionManager.open({ store: new JournalStore({ dir }) });
    assert.equal([...third.activeMacs()], [mac(7)]);
    await third.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [point, expected] of [
  ['before-write', '02:00:00:00:00:0a'],
  ['after-write', '02:00:00:00:00:0b'],
] as const) {
  const when =
    point === 'before-write'
      ? 'before the move record is written'
      : 'after the move is on flash, before the gate heard of it';
  test(
    `kill -9 ${when}: after a restart the session is ` + `live on exactly one MAC (${expected}), usage kept`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-move-crash-'));
      try {
        const child = spawnSync(
          process.execPath,
          ['--import', 'tsx', join(import.meta.dirname, 'move-crash-child.ts'), dir, point],
          { encoding: 'utf8' },
        );
        assert.is(child.signal, 'SIGKILL', child.stderr);
        const id = child.stdout.split('\n')[0]!;
        const manager = await SessionManager.open({ store: new JournalStore({ dir }) });
        assert.equal([...manager.activeMacs()], [expected]);
        const s = manager.byMac(expected)!;
        assert.is(s.id, id);
        assert.is(s.used, 1234, 'usage carried over');
        assert.is(s.allotment, 10_000n);
        await manager.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

test.run();
