// tier: fast
/**
 * The sealed log's own rules (storage/sealed-log.ts), which both of its owners (the voucher book, the Cashu ledger)
 * and their damage suites rely on: a seal kept where its owner says; an `open` that writes nothing until `settle` or
 * the first change (a file its owner refuses stays as found); and a change whose seal could not be written, undone
 * and refused when the older seal is still the one on flash, kept when the newer one is there (its rename made, the
 * directory's fsync failed). The failures are injected in the file calls around a real directory.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';
import { encodeSeal, sealOf } from '../../src/storage/seal.ts';
import { syncCalls, type FileCalls } from '../../src/storage/file-calls.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';
import { SealedLog, type SealedLogFormat } from '../../src/storage/sealed-log.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-sealed-log-', test.after);
const FORMAT: SealedLogFormat = {
  kind: 'money-log',
  code: 'ERR_VOUCHER_STORE',
  writeCode: 'ERR_CASHU_STORE_WRITE',
  what: 'a test log',
};
const record = (n: number): Buffer => Buffer.from(`record ${n}`);
const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
const eio = (): Error => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });

/**
 * The calls of a flash whose seal writes fail while `failing.how` says so: `temp`, the seal's temp file cannot be made
 * (the older seal stays); `directory`, the fsync of the seal's directory after its rename fails (the newer one is
 * there).
 */
function flakyCalls(seal: string): { calls: FileCalls; failing: { how: 'temp' | 'directory' | null } } {
  const failing: { how: 'temp' | 'directory' | null } = { how: null };
  const dirFds = new Set<number>();
  const calls: FileCalls = {
    ...syncCalls,
    open: async (path, flags, mode) => {
      if (failing.how === 'temp' && basename(path).startsWith(`.${basename(seal)}.tmp-`)) throw enospc();
      const fd = await syncCalls.open(path, flags, mode);
      if (flags === 'r') dirFds.add(fd);
      return fd;
    },
    fsync: async (fd) => {
      if (failing.how === 'directory' && dirFds.has(fd)) throw eio();
      return syncCalls.fsync(fd);
    },
    close: async (fd) => {
      dirFds.delete(fd);
      return syncCalls.close(fd);
    },
  };
  return { calls, failing };
}

test('the seal where its owner keeps it; a log without it is damage, or read when its owner says so', async () => {
  const dir = tempDir();
  const path = join(dir, 'custody', 'the.log');
  const seal = join(dir, 'the.seal');
  mkdirSync(join(dir, 'custody'));
  const { log } = SealedLog.openSync(path, FORMAT, { seal });
  await log.append(record(1));
  await log.close();
  assert.equal(JSON.parse(readFileSync(seal, 'utf8')), JSON.parse(encodeSeal([sealOf(readFileSync(path))])));
  const again = SealedLog.openSync(path, FORMAT, { seal });
  assert.equal(again.records, [record(1)]);
  assert.ok(again.sealed);
  writeFileSync(seal + '.gone', readFileSync(seal));
  rmSync(seal);
  try {
    SealedLog.openSync(path, FORMAT, { seal });
    assert.unreachable('opened without its seal');
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_VOUCHER_STORE'), String(err));
  }
  const read = await SealedLog.open(path, { ...FORMAT, unsealed: 'read' }, { seal });
  assert.equal(read.records, [record(1)]);
  assert.not.ok(read.sealed);
  // Directory removed whole, its seal kept: missing, and refused.
  rmSync(join(dir, 'custody'), { recursive: true });
  writeFileSync(seal, readFileSync(seal + '.gone'));
  await SealedLog.open(path, FORMAT, { seal }).then(
    () => assert.unreachable('opened with its file gone'),
    (err: unknown) => assert.match(String((err as Error).message), /it is missing, while its seal says it held/),
  );
});

test('open writes nothing (a torn tail, a lagging seal) until settle: it cuts the one, reseals the other', async () => {
  const dir = tempDir();
  const path = join(dir, 'the.log');
  const { log } = SealedLog.openSync(path, FORMAT);
  await log.append(record(1));
  await log.close();
  const sealBytes = readFileSync(`${path}.seal`);
  // A record whose seal was not written, then a torn one: what two crashes leave.
  writeFileSync(
    path,
    Buffer.concat([readFileSync(path), encodeRecord(record(2)), encodeRecord(record(3)).subarray(0, 9)]),
  );
  const found = readFileSync(path);
  const opened = await SealedLog.open(path, FORMAT);
  assert.equal(opened.records, [record(1), record(2)]);
  assert.equal(readFileSync(path), found, 'the file as found');
  assert.equal(readFileSync(`${path}.seal`), sealBytes, 'the seal as found');
  await opened.log.settle();
  const whole = found.subarray(0, found.length - 9);
  assert.equal(readFileSync(path), whole, 'the torn tail cut');
  assert.equal(readFileSync(`${path}.seal`, 'utf8'), encodeSeal([sealOf(whole)]), 'resealed to name both records');
  await opened.log.close();
});

test('a seal that cannot be written: the change is cut back and refused; the next one goes on', async () => {
  const dir = tempDir();
  const path = join(dir, 'the.log');
  const { calls, failing } = flakyCalls(`${path}.seal`);
  const { log } = SealedLog.openSync(path, FORMAT, { calls });
  await log.append(record(1));
  const before = readFileSync(path);
  const sealBefore = readFileSync(`${path}.seal`);
  failing.how = 'temp';
  await log.append(record(2)).then(
    () => assert.unreachable('told yes'),
    (err: unknown) => {
      assert.ok(isSluiceError(err, 'ERR_CASHU_STORE_WRITE'), String(err));
      assert.is(err.details?.['errno'], 'ENOSPC');
    },
  );
  assert.equal(readFileSync(path), before, 'cut back to its last sealed record');
  assert.equal(readFileSync(`${path}.seal`), sealBefore, 'the older seal');
  failing.how = null;
  await log.append(record(3));
  await log.close();
  assert.equal(SealedLog.openSync(path, FORMAT).records, [record(1), record(3)]);
});

test("a seal renamed in whose directory's fsync failed: the change stands (either seal accepts the file)", async () => {
  const dir = tempDir();
  const path = join(dir, 'the.log');
  const { calls, failing } = flakyCalls(`${path}.seal`);
  const { log } = SealedLog.openSync(path, FORMAT, { calls });
  await log.append(record(1));
  const sealBefore = readFileSync(`${path}.seal`);
  failing.how = 'directory';
  await log.append(record(2));
  failing.how = null;
  await log.close();
  const now = readFileSync(path);
  assert.equal(readFileSync(`${path}.seal`, 'utf8'), encodeSeal([sealOf(now)]), 'the newer seal is there');
  assert.equal(SealedLog.openSync(path, FORMAT).records, [record(1), record(2)]);
  // The older seal, as a power cut may bring back: the longer file begins with what it names.
  writeFileSync(`${path}.seal`, sealBefore);
  assert.equal(SealedLog.openSync(path, FORMAT).records, [record(1), record(2)]);
});

test.run();
