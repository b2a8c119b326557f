// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fsp from 'node:fs/promises';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { isSluiceError } from '../../src/errors.ts';
import { parseUci } from '../../src/config/uci.ts';
import { writeUci } from '../../src/config/write.ts';
import { writeFileAtomic } from '../../src/storage/index.ts';
import { STALE_TEMP_MS, type AtomicWriteFs } from '../../src/storage/atomic-write.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-atomic-', test.after);

/** Real fs, with one step made to fail. */
function failing(step: 'write' | 'sync' | 'rename' | 'dirsync'): AtomicWriteFs & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    stat: (p) => fsp.stat(p),
    unlink: (p) => {
      calls.push(`unlink ${p}`);
      return fsp.unlink(p);
    },
    rename: async (a, b) => {
      calls.push('rename');
      if (step === 'rename') throw Object.assign(new Error('EXDEV simulated'), { code: 'EXDEV' });
      return fsp.rename(a, b);
    },
    open: async (p, flags, mode) => {
      const h = await fsp.open(p, flags, mode);
      const isDir = flags === 'r';
      return {
        writeFile: async (data) => {
          if (step !== 'write') return h.writeFile(data);
          // A short write, then the disk is full.
          await h.writeFile(data.slice(0, 3));
          throw Object.assign(new Error('ENOSPC simulated'), { code: 'ENOSPC' });
        },
        sync: async () => {
          if ((step === 'sync' && !isDir) || (step === 'dirsync' && isDir)) throw new Error('EIO simulated');
          return h.sync();
        },
        close: () => h.close(),
      };
    },
  };
}

test('writes the content, leaves no temp file, keeps an existing mode', async () => {
  const dir = tempDir();
  const path = join(dir, 'sluice');
  await writeFileAtomic(path, 'first\n');
  assert.is(readFileSync(path, 'utf8'), 'first\n');
  assert.is(statSync(path).mode & 0o777, 0o600, 'new files default to 0600');
  await fsp.chmod(path, 0o644);
  await writeFileAtomic(path, new TextEncoder().encode('second\n'));
  assert.is(readFileSync(path, 'utf8'), 'second\n');
  assert.is(statSync(path).mode & 0o777, 0o644);
  assert.equal(readdirSync(dir), ['sluice']);
});

for (const step of ['write', 'sync', 'rename'] as const) {
  test(`a failing ${step} leaves the old file intact and no temp file`, async () => {
    const dir = tempDir();
    const path = join(dir, 'sluice');
    writeFileSync(path, 'old content\n');
    const fs = failing(step);
    try {
      await writeFileAtomic(path, 'new content\n', { fs });
      assert.unreachable('should fail');
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_WRITE_FAILED'), String(err));
      assert.equal((err as { details?: unknown }).details, { path });
    }
    assert.is(readFileSync(path, 'utf8'), 'old content\n');
    assert.equal(readdirSync(dir), ['sluice']);
  });
}

test('the first write of a file removes the temp files a crash left of it, and only those', async () => {
  const dir = tempDir();
  const gone = spawnSync('true').pid!;
  const live = process.ppid;
  const names = {
    crashed: `.state.json.tmp-${gone}-0a1b2c3d`,
    ours: `.state.json.tmp-${process.pid}-0a1b2c3d`,
    liveWriter: `.state.json.tmp-${live}-0a1b2c3d`,
    oldLiveWriter: `.state.json.tmp-${live}-0b1b2c3d`,
    otherFile: `.other.json.tmp-${gone}-0a1b2c3d`,
    notATemp: `.state.json.tmp-${gone}-notes`,
  };
  for (const name of Object.values(names)) writeFileSync(join(dir, name), 'half a write');
  const old = (Date.now() - STALE_TEMP_MS - 60_000) / 1000;
  utimesSync(join(dir, names.oldLiveWriter), old, old);
  await writeFileAtomic(join(dir, 'state.json'), '{}');
  assert.equal(
    readdirSync(dir).sort(),
    ['state.json', names.ours, names.liveWriter, names.otherFile, names.notATemp].sort(),
  );
});

test('a failing directory fsync is reported (the new content is already in place)', async () => {
  const dir = tempDir();
  const path = join(dir, 'sluice');
  try {
    await writeFileAtomic(path, 'x', { fs: failing('dirsync') });
    assert.unreachable('should fail');
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_WRITE_FAILED'));
  }
  assert.is(readFileSync(path, 'utf8'), 'x');
  assert.equal(readdirSync(dir), ['sluice']);
});

test('a missing directory is a clean ERR_WRITE_FAILED', async () => {
  const dir = tempDir();
  try {
    await writeFileAtomic(join(dir, 'nope', 'file'), 'x');
    assert.unreachable('should fail');
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_WRITE_FAILED'));
  }
});

test('writeUci writes what parseUci reads back', async () => {
  const dir = tempDir();
  const path = join(dir, 'sluice');
  const pkg = parseUci(`config sluice 'main'\n\toption state_dir '/tmp/it'\\''s'\n\tlist ndsctl a\n`);
  await writeUci(path, pkg);
  const back = parseUci(readFileSync(path, 'utf8'));
  assert.equal(
    [...back.sections[0]!.options],
    [
      ['state_dir', "/tmp/it's"],
      ['ndsctl', ['a']],
    ],
  );
});

test.run();
