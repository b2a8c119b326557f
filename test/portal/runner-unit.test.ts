// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NdsctlRunner, type NdsctlPriority } from '../../src/portal/index.ts';
import { AGED_AFTER } from '../../src/portal/call-order.ts';
import { fakeSpawn } from './fake-spawn.ts';
import { isSluiceError } from '../../src/errors.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

test('argv = command prefix + arguments; chunks are joined', async () => {
  const fake = fakeSpawn([{ stdout: ['{"a"', ':1}'] }]);
  const r = new NdsctlRunner({ command: ['ip', 'netns', 'exec', 'router', 'ndsctl'], spawn: fake.spawn });
  const res = await r.run(['json', 'x']);
  assert.is(res.stdout, '{"a":1}');
  assert.equal(fake.calls, [['ip', 'netns', 'exec', 'router', 'ndsctl', 'json', 'x']]);
});

test('busy twice then ok: three spawns', async () => {
  const fake = fakeSpawn([{ code: 4 }, { code: 4 }, { stdout: 'ok' }]);
  const res = await new NdsctlRunner({ command: ['ndsctl'], spawn: fake.spawn, busyBackoffMs: 1 }).run(['json']);
  assert.is(res.attempts, 3);
  assert.is(fake.calls.length, 3);
});

test('spawn errors: ENOENT/EACCES → ERR_NDSCTL_MISSING', async () => {
  await rejectsWithCode(
    new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([{ spawnError: 'ENOENT' }]).spawn }).run(['json']),
    'ERR_NDSCTL_MISSING',
  );
  await rejectsWithCode(
    new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([{ spawnError: 'EACCES' }]).spawn }).run(['json']),
    'ERR_NDSCTL_MISSING',
  );
});

test('output beyond the cap kills the child → ERR_NDSCTL_FAILED', async () => {
  const fake = fakeSpawn([{ stdout: ['0123456789', '0123456789'], hang: true }]);
  await rejectsWithCode(
    new NdsctlRunner({ command: ['x'], spawn: fake.spawn, maxOutputBytes: 15 }).run(['json']),
    'ERR_NDSCTL_FAILED',
  );
  assert.is(fake.kills, 1);
});

test('destroy kills the in-flight call and rejects queued ones; later calls refused', async () => {
  const fake = fakeSpawn([{ hang: true }]);
  const r = new NdsctlRunner({ command: ['x'], spawn: fake.spawn });
  const first = rejectsWithCode(r.run(['json']), 'ERR_VALVE_CLOSED');
  const second = rejectsWithCode(r.run(['json']), 'ERR_VALVE_CLOSED');
  await new Promise((resolve) => setImmediate(resolve));
  await r.destroy();
  await Promise.all([first, second]);
  await rejectsWithCode(r.run(['json']), 'ERR_VALVE_CLOSED');
  assert.is(fake.kills, 1);
  assert.is(fake.calls.length, 1);
  assert.is(r.state, 'closed');
});

test('shutdown lets queued calls finish, then refuses', async () => {
  const fake = fakeSpawn([{ stdout: 'a' }, { stdout: 'b' }]);
  const r = new NdsctlRunner({ command: ['x'], spawn: fake.spawn });
  const calls = [r.run(['json']), r.run(['json'])];
  await r.shutdown();
  assert.equal(
    (await Promise.all(calls)).map((c) => c.stdout),
    ['a', 'b'],
  );
  await rejectsWithCode(r.run(['json']), 'ERR_VALVE_CLOSED');
  await r.shutdown();
});

test('exec handed to runExclusive cannot be used after the section ended; errors in fn free the queue', async () => {
  const fake = fakeSpawn([{ stdout: 'a' }, { stdout: 'b' }]);
  const r = new NdsctlRunner({ command: ['x'], spawn: fake.spawn });
  let leaked: ((args: readonly string[]) => Promise<unknown>) | null = null;
  await r.runExclusive(async (exec) => {
    leaked = exec;
  });
  await rejectsWithCode((leaked as unknown as (a: string[]) => Promise<unknown>)(['json']), 'ERR_INTERNAL');
  await r
    .runExclusive(async () => {
      throw new Error('boom');
    })
    .catch(() => {});
  assert.is((await r.run(['json'])).stdout, 'a');
});

test('bad options and arguments are refused with ERR_INVALID_ARGUMENT', async () => {
  for (const command of [[], [''], 'ndsctl', [1]]) {
    assert.throws(
      () => new NdsctlRunner({ command: command as string[] }),
      (err: unknown) => isSluiceError(err, 'ERR_INVALID_ARGUMENT'),
    );
  }
  assert.throws(
    () => new NdsctlRunner({ command: ['x'], timeoutMs: 0 }),
    (err: unknown) => isSluiceError(err, 'ERR_INVALID_ARGUMENT'),
  );
  await rejectsWithCode(
    new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([]).spawn }).run([1 as unknown as string]),
    'ERR_INVALID_ARGUMENT',
  );
});

/**
 * A runner whose queue is held by a call in flight until `release()`; `ask(name, priority)` queues a call that records
 * its name when it runs. `order` lists the names in the order they ran.
 */
function heldQueue(): {
  ask: (name: string, priority: NdsctlPriority) => Promise<void>;
  release: () => void;
  order: string[];
} {
  const r = new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([]).spawn });
  const order: string[] = [];
  let release!: () => void;
  void r.runExclusive(
    () =>
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    'auth',
  );
  const ask = (name: string, priority: NdsctlPriority): Promise<void> =>
    r.runExclusive(async () => {
      order.push(name);
    }, priority);
  return { ask, release: () => release(), order };
}

test("a purchase's auth goes before a queued tick snapshot; deauths and final readings go before both", async () => {
  const q = heldQueue();
  const all = [
    q.ask('snapshot', 'snapshot'),
    q.ask('lookup', 'lookup'),
    q.ask('auth1', 'auth'),
    q.ask('read', 'read'),
    q.ask('auth2', 'auth'),
    q.ask('deauth', 'deauth'),
  ];
  q.release();
  await Promise.all(all);
  assert.equal(q.order, ['deauth', 'read', 'auth1', 'auth2', 'snapshot', 'lookup']);
});

test('a burst of 100 auths queued after the tick snapshot does not starve it past the bound', async () => {
  const q = heldQueue();
  const all = [q.ask('snapshot', 'snapshot')];
  for (let i = 0; i < 100; i++) all.push(q.ask(`auth${i}`, 'auth'));
  q.release();
  await Promise.all(all);
  assert.is(
    q.order.indexOf('snapshot'),
    AGED_AFTER,
    `the snapshot ran after ${AGED_AFTER} auths: ${q.order.slice(0, AGED_AFTER + 2).join(' ')}`,
  );
  assert.equal(
    q.order.filter((n) => n !== 'snapshot'),
    Array.from({ length: 100 }, (_, i) => `auth${i}`),
    'the auths in the order asked',
  );
});

test('a burst of 100 auths queued before the tick snapshot does not starve it past the bound either', async () => {
  const q = heldQueue();
  const all: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) all.push(q.ask(`auth${i}`, 'auth'));
  all.push(q.ask('snapshot', 'snapshot'));
  q.release();
  await Promise.all(all);
  assert.is(q.order.indexOf('snapshot'), AGED_AFTER);
});

test(
  'the aged snapshot still lets deauths and final readings ' + 'go first; the next snapshot waits its own bound',
  async () => {
    const q = heldQueue();
    const all = [q.ask('snapshot1', 'snapshot')];
    for (let i = 0; i < AGED_AFTER; i++) all.push(q.ask(`auth${i}`, 'auth'));
    all.push(q.ask('deauth', 'deauth'), q.ask('read', 'read'), q.ask('auth-late', 'auth'));
    q.release();
    await Promise.all(all);
    // deauth and read first (the snapshot is not aged yet: 2 ran), then 6 auths age it, then the rest.
    assert.equal(q.order.slice(0, AGED_AFTER + 1), [
      'deauth',
      'read',
      ...Array.from({ length: AGED_AFTER - 2 }, (_, i) => `auth${i}`),
      'snapshot1',
    ]);
    const second = heldQueue();
    const more = [second.ask('snapshot2', 'snapshot')];
    for (let i = 0; i < 3; i++) more.push(second.ask(`auth${i}`, 'auth'));
    second.release();
    await Promise.all(more);
    assert.equal(
      second.order,
      ['auth0', 'auth1', 'auth2', 'snapshot2'],
      'fewer than AGED_AFTER auths: all before the snapshot',
    );
  },
);

test('lookups are never aged: a queued lookup waits for every gate command and snapshot', async () => {
  const q = heldQueue();
  const all = [q.ask('lookup', 'lookup')];
  for (let i = 0; i < 2 * AGED_AFTER; i++) all.push(q.ask(`auth${i}`, 'auth'));
  all.push(q.ask('snapshot', 'snapshot'));
  q.release();
  await Promise.all(all);
  assert.is(q.order.at(-1), 'lookup');
});

test.run();
