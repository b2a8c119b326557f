// tier: fast
/**
 * Several devices per purchase (a plan's `devices`): one session, one allotment, several MACs. A second device joins
 * by the code, durable before anyone hears of it (`joined`); the sum of every device's bytes is billed to the one
 * allotment and ends it (`data-limit`) for all at once; a removed device leaves (`left`) while the others go on; the
 * limit, a busy device and a bad code are refused with their codes; a restart (journal on disk) keeps every device.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CountingStore, mac, payment, setup, useBytes } from './helpers.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { JournalStore, SessionManager, devicesOf } from '../../src/sessions/index.ts';
import { FakeTime } from './fake-time.ts';

const A = mac(1);
const B = mac(2);
const C = mac(3);

test('a second device joins by code; the sum of both devices ends the one allotment for both', async () => {
  const { manager, store, events } = await setup();
  const joined: string[] = [];
  manager.on('joined', (_s, m) => joined.push(m));
  const { session } = await manager.activate({
    mac: A,
    metric: 'bytes',
    allotment: 1000n,
    payment: payment(),
    devices: 2,
  });
  assert.is(session.maxDevices, 2);
  const code = manager.joinCode(session.id)!;
  assert.match(code, /^[0-9A-Z]{8}$/);
  const view = await manager.joinDevice(code.toLowerCase(), B);
  assert.equal(devicesOf(view), [A, B]);
  assert.equal(joined, [B]);
  assert.ok(
    store.appends.flat().some((r) => r.t === 'join'),
    'the join is written',
  );
  assert.is(manager.byMac(B)!.id, session.id, 'the second MAC finds the shared session');
  assert.equal([...manager.activeMacs()].sort(), [A, B]);
  assert.is(manager.stats().live, 1, 'one session, not two');
  // Repeating the join is a no-op.
  await manager.joinDevice(code, B);
  assert.equal(joined, [B]);
  useBytes(manager, [
    [A, 400],
    [B, 400],
  ]);
  assert.is(manager.get(session.id)!.used, 800, 'the sum is billed');
  assert.is(manager.get(session.id)!.state, 'ACTIVE');
  const ended = useBytes(manager, [[B, 250]]);
  assert.is(ended.length, 1);
  assert.is(ended[0]!.endCause, 'data-limit');
  assert.equal(events.ended, [session.id]);
  assert.is(manager.byMac(B)!.state, 'EXPIRED', 'the joined device sees the end too');
  assert.equal([...manager.activeMacs()], []);
  await manager.close();
});

test(
  'the device limit, a device with its own session and a ' + 'bad code are refused; a removed device frees its place',
  async () => {
    const { manager } = await setup();
    const left: string[] = [];
    manager.on('left', (_s, m) => left.push(m));
    const { session } = await manager.activate({
      mac: A,
      metric: 'seconds',
      allotment: 3600n,
      payment: payment(),
      devices: 2,
    });
    const code = manager.joinCode(session.id)!;
    await rejectsWithCode(manager.joinDevice('ZZZZZZZZ', B), 'ERR_DEVICE_CODE_INVALID');
    await manager.activate({ mac: C, metric: 'seconds', allotment: 60n, payment: payment() });
    await rejectsWithCode(manager.joinDevice(code, C), 'ERR_DEVICE_BUSY');
    await manager.joinDevice(code, B);
    await manager.end(manager.byMac(C)!.id, 'admin');
    await rejectsWithCode(manager.joinDevice(code, C), 'ERR_DEVICE_LIMIT');
    await rejectsWithCode(manager.removeDevice(session.id, A), 'ERR_DEVICE_NOT_MEMBER');
    const after = await manager.removeDevice(session.id, B);
    assert.equal(devicesOf(after), [A]);
    assert.equal(left, [B]);
    assert.is(manager.byMac(B), null, 'the removed device has no session');
    await manager.joinDevice(code, C);
    assert.equal(devicesOf(manager.get(session.id)!), [A, C]);
    // A single-device purchase has no code.
    const single = await manager.activate({ mac: mac(9), metric: 'seconds', allotment: 60n, payment: payment() });
    assert.is(manager.joinCode(single.session.id), null);
    await manager.close();
  },
);

test(
  'two joins racing for the last place: one wins, the ' + 'other is refused, and only one join is on the journal',
  async () => {
    const store = new CountingStore();
    const { manager } = await setup({ store });
    const { session } = await manager.activate({
      mac: A,
      metric: 'seconds',
      allotment: 3600n,
      payment: payment(),
      devices: 2,
    });
    const code = manager.joinCode(session.id)!;
    store.hold = true;
    const first = manager.joinDevice(code, B);
    await rejectsWithCode(manager.joinDevice(code, C), 'ERR_DEVICE_LIMIT');
    store.release();
    await first;
    assert.is(store.appends.flat().filter((r) => r.t === 'join').length, 1);
    await manager.close();
  },
);

test('a restart keeps every device: the journal replays joins and removals', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-devices-'));
  try {
    const time = new FakeTime();
    const first = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    const { session } = await first.activate({
      mac: A,
      metric: 'bytes',
      allotment: 10_000n,
      payment: payment(),
      devices: 3,
    });
    const code = first.joinCode(session.id)!;
    await first.joinDevice(code, B);
    await first.joinDevice(code, C);
    await first.removeDevice(session.id, C);
    useBytes(first, [
      [A, 100],
      [B, 200],
    ]);
    await first.close();
    const second = await SessionManager.open({ store: new JournalStore({ dir }), clock: time, timers: time });
    const back = second.byMac(B)!;
    assert.is(back.id, session.id);
    assert.is(back.maxDevices, 3);
    assert.equal(devicesOf(back), [A, B]);
    assert.is(back.used, 300, 'the checkpoint kept the sum');
    assert.is(second.byMac(C), null);
    assert.equal([...second.activeMacs()].sort(), [A, B]);
    // A new run draws a new code; joining with it still works.
    await second.joinDevice(second.joinCode(session.id)!, C);
    assert.equal(devicesOf(second.get(session.id)!), [A, B, C]);
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
