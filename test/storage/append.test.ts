// tier: fast
/**
 * The one rule of every append (storage/append.ts): a write that falls short, a write that fails and an fsync that
 * fails each leave the file at its last whole length and reject; a whole append resolves with the new length. The
 * failures are injected around a real file (a full flash itself: durable-file-suite.ts, as root).
 */
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppendError, appendWhole, appendWholeSync, appendWholeSyncv } from '../../src/storage/append.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-append-', test.after);
const eio = (): Error => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });

/** A real file handle whose write takes at most `take` bytes once, then fails; or whose fsync fails. */
function failing(handle: FileHandle, how: 'short' | 'fsync'): FileHandle {
  let writes = 0;
  return {
    write: async (data: Uint8Array, off: number, len: number) => {
      if (how === 'short' && writes++ > 0) throw Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' });
      return handle.write(data, off, how === 'short' ? Math.min(len, 5) : len);
    },
    datasync: async () => {
      if (how === 'fsync') throw eio();
    },
    sync: () => handle.sync(),
    truncate: (n: number) => handle.truncate(n),
  } as unknown as FileHandle;
}

test('a whole append resolves with the new length', async () => {
  const file = join(tempDir(), 'log');
  writeFileSync(file, 'whole;');
  const handle = await open(file, 'a');
  assert.is(await appendWhole(handle, Buffer.from('next;'), 6, 'data'), 11);
  await handle.close();
  assert.is(readFileSync(file, 'utf8'), 'whole;next;');
});

for (const how of ['short', 'fsync'] as const) {
  const what = how === 'short' ? 'a short write, then ENOSPC' : 'a failed fsync';
  test(`${what}: cut back to the whole length, rejected`, async () => {
    const file = join(tempDir(), 'log');
    writeFileSync(file, 'whole;');
    const handle = await open(file, 'a');
    const err = await appendWhole(failing(handle, how), Buffer.from('a record that falls short;'), 6, 'data').then(
      () => assert.unreachable('resolved'),
      (e: unknown) => e,
    );
    assert.instance(err, AppendError);
    assert.is((err as AppendError).cut, true);
    assert.is((err as AppendError).errno, how === 'short' ? 'ENOSPC' : 'EIO');
    assert.is(readFileSync(file, 'utf8'), 'whole;', 'nothing of the failed append is left');
    // The next append follows the last whole record.
    await appendWhole(handle, Buffer.from('next;'), 6, 'data');
    await handle.close();
    assert.is(readFileSync(file, 'utf8'), 'whole;next;');
  });
}

test('the synchronous forms: whole appends; a failure whose cut cannot be made either says so (cut: false)', () => {
  const file = join(tempDir(), 'log');
  writeFileSync(file, 'whole;');
  // A descriptor open read-only: every write fails, and so does the truncate.
  const ro = openSync(file, 'r');
  for (const append of [
    () => appendWholeSync(ro, Buffer.from('x'), 6, 'none'),
    () => appendWholeSyncv(ro, [Buffer.from('x'), Buffer.from('y')], 6, 'none'),
  ]) {
    let err: unknown = null;
    try {
      append();
    } catch (e) {
      err = e;
    }
    assert.instance(err, AppendError);
    assert.is((err as AppendError).cut, false);
  }
  closeSync(ro);
  const fd = openSync(file, 'a');
  assert.is(appendWholeSync(fd, Buffer.from('ab;'), 6, 'data'), 9);
  assert.is(appendWholeSyncv(fd, [Buffer.from('cd'), Buffer.from(';')], 9, 'full'), 12);
  closeSync(fd);
  assert.is(readFileSync(file, 'utf8'), 'whole;ab;cd;');
});

test.run();
