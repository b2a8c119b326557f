import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NdsctlRunner } from '../../src/portal/index.ts';
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
  await rejectsWithCode(new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([{ spawnError: 'ENOENT' }]).spawn }).run(['json']), 'ERR_NDSCTL_MISSING');
  await rejectsWithCode(new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([{ spawnError: 'EACCES' }]).spawn }).run(['json']), 'ERR_NDSCTL_MISSING');
});

test('output beyond the cap kills the child → ERR_NDSCTL_FAILED', async () => {
  const fake = fakeSpawn([{ stdout: ['0123456789', '0123456789'], hang: true }]);
  await rejectsWithCode(new NdsctlRunner({ command: ['x'], spawn: fake.spawn, maxOutputBytes: 15 }).run(['json']), 'ERR_NDSCTL_FAILED');
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
  assert.equal((await Promise.all(calls)).map((c) => c.stdout), ['a', 'b']);
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
  await r.runExclusive(async () => {
    throw new Error('boom');
  }).catch(() => {});
  assert.is((await r.run(['json'])).stdout, 'a');
});

test('bad options and arguments are refused with ERR_INVALID_ARGUMENT', async () => {
  for (const command of [[], [''], 'ndsctl', [1]]) {
    assert.throws(() => new NdsctlRunner({ command: command as string[] }), (err: unknown) => isSluiceError(err, 'ERR_INVALID_ARGUMENT'));
  }
  assert.throws(() => new NdsctlRunner({ command: ['x'], timeoutMs: 0 }), (err: unknown) => isSluiceError(err, 'ERR_INVALID_ARGUMENT'));
  await rejectsWithCode(new NdsctlRunner({ command: ['x'], spawn: fakeSpawn([]).spawn }).run([1 as unknown as string]), 'ERR_INVALID_ARGUMENT');
});

test.run();
