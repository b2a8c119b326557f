/**
 * One behaviour suite for every durable whole-file JSON table (storage/json-table.ts), run against each owner through
 * the owner's own methods, in the manner of the session store suite (test/sessions/store-suite.ts) and MQTT.js's
 * abstract_store: a row put is read back and survives a restart, a delete is durable, a failed write leaves the file
 * as it was, and a damaged file (torn, or not the owner's table) is refused — never read as empty —, counted, and kept
 * aside for support. A restart is modelled as the daemon does it: the owner opened again on the same directory.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError, type ErrorCode } from '../../src/errors.ts';
import { damagedTables } from '../../src/storage/index.ts';
import { tempDirs } from '../helpers/temp.ts';
import { durableFileSuite } from './durable-file-suite.ts';

export interface TableOwner<O> {
  /** The table's file name in the directory the owner is opened on. */
  file: string;
  /** `atStart`: opened as the daemon's start opens it (DurableOwner.open); absent, as a reload does. */
  open(dir: string, atStart?: boolean): Promise<O>;
  close?(owner: O): Promise<void>;
  /** Stores row `n` through the owner's methods; resolves once it is durable, rejects when it could not be written. */
  put(owner: O, n: number): Promise<void>;
  /**
   * Row `n` as the owner reads it back (undefined: not there); asked last where it may change the owner (a nonce
   * claimed).
   */
  get(owner: O, n: number): unknown;
  /** Deletes row `n` through the owner, durably (absent: the owner never deletes one row on its own). */
  delete?(owner: O, n: number): Promise<void>;
  /**
   * How the owner fails closed on a damaged file: its open rejects with `code`; or (the nonce files, whose owner runs
   * on and refuses every call the file may have held) `refuses` asserts that a call the file held is refused.
   */
  damaged: { code: ErrorCode } | { refuses(owner: O, n: number, writable?: boolean): Promise<void> };
}

export function jsonTableSuite<O>(name: string, owner: TableOwner<O>): void {
  const refuses = 'refuses' in owner.damaged ? owner.damaged.refuses : null;
  durableFileSuite<O>(name, {
    kind: refuses ? 'nonce-file' : 'money-table',
    file: owner.file,
    open: (dir, atStart) => owner.open(dir, atStart),
    ...(owner.close && { close: owner.close }),
    put: (o, n) => owner.put(o, n),
    holds: async (o) => Promise.all([1, 2, 3].map((n) => owner.get(o, n))),
    code: 'code' in owner.damaged ? owner.damaged.code : 'ERR_INTERNAL',
    ...(refuses && { refuses }),
  });

  const it = suite(`json table: ${name}`);
  const tempDir = tempDirs('sluice-table-', it.after);
  const opened: O[] = [];
  const open = async (dir: string): Promise<O> => {
    const o = await owner.open(dir);
    opened.push(o);
    return o;
  };
  it.after.each(async () => {
    for (const o of opened.splice(0)) await owner.close?.(o);
  });

  it('a directory without the file opens empty', async () => {
    const o = await open(tempDir());
    assert.is(await owner.get(o, 1), undefined);
  });

  it('a row put is read back, and after a restart', async () => {
    const dir = tempDir();
    const o = await open(dir);
    await owner.put(o, 1);
    await owner.put(o, 2);
    const one = await owner.get(o, 1);
    const two = await owner.get(o, 2);
    assert.ok(one !== undefined && two !== undefined);
    const again = await open(dir);
    assert.equal(await owner.get(again, 1), one);
    assert.equal(await owner.get(again, 2), two);
  });

  if (owner.delete) {
    const remove = owner.delete;
    it('a delete is durable', async () => {
      const dir = tempDir();
      const o = await open(dir);
      await owner.put(o, 1);
      await owner.put(o, 2);
      await remove(o, 1);
      assert.is(await owner.get(o, 1), undefined);
      const again = await open(dir);
      assert.is(await owner.get(again, 1), undefined);
      assert.ok((await owner.get(again, 2)) !== undefined);
    });
  }

  it('a failed write rejects and leaves the previous content', async () => {
    const dir = tempDir();
    const o = await open(dir);
    await owner.put(o, 1);
    const before = readFileSync(join(dir, owner.file));
    // Root ignores modes: the directory is moved away and a file put in its place, so every write fails (ENOTDIR).
    renameSync(dir, `${dir}.away`);
    writeFileSync(dir, 'not a directory');
    let failed = false;
    try {
      await owner.put(o, 2);
    } catch {
      failed = true;
    } finally {
      rmSync(dir);
      renameSync(`${dir}.away`, dir);
    }
    assert.ok(failed, 'the put that could not be written is refused');
    assert.equal(readFileSync(join(dir, owner.file)), before);
    const again = await open(dir);
    assert.ok((await owner.get(again, 1)) !== undefined);
    assert.is(await owner.get(again, 2), undefined);
  });

  for (const [kind, spoil] of [
    ['torn (cut in half)', (file: string) => truncateSync(file, Math.floor(readFileSync(file).length / 2))],
    ['not the table (JSON of another shape)', (file: string) => writeFileSync(file, '{"x":"y"}')],
  ] as const) {
    it(`a damaged file, ${kind}, is refused and counted, never read as empty, and kept aside`, async () => {
      const dir = tempDir();
      const o = await open(dir);
      await owner.put(o, 1);
      await owner.close?.(o);
      opened.splice(opened.indexOf(o), 1);
      const file = join(dir, owner.file);
      spoil(file);
      const damagedBytes = readFileSync(file);
      const counted = damagedTables()[owner.file] ?? 0;
      if ('code' in owner.damaged) {
        const code = owner.damaged.code;
        await owner.open(dir).then(
          () => assert.unreachable('a damaged file opened'),
          (err: unknown) => {
            assert.ok(isSluiceError(err, code), `refused with ${code}, got ${String(err)}`);
            assert.is(err.details?.['damaged'], true);
          },
        );
      } else {
        await owner.damaged.refuses(await open(dir), 1);
      }
      assert.is(damagedTables()[owner.file], counted + 1, 'counted');
      const copies = readdirSync(dir).filter((f) => f.startsWith(`${owner.file}.damaged-`));
      assert.is(copies.length, 1, `one copy kept aside: ${readdirSync(dir).join(' ')}`);
      assert.equal(readFileSync(join(dir, copies[0]!)), damagedBytes);
      if ('code' in owner.damaged) {
        assert.equal(readFileSync(file), damagedBytes, 'the file itself is left as it is');
        // A second start refuses it again (and keeps no second copy of the same damage).
        await owner.open(dir).then(
          () => assert.unreachable('opened on the second start'),
          () => undefined,
        );
        assert.is(readdirSync(dir).filter((f) => f.startsWith(`${owner.file}.damaged-`)).length, 1);
      }
    });
  }

  it.run();
}

/** A copy of `fixture` (a file an earlier version wrote) as `name` in a new directory under `parent`. */
export function withOldFile(parent: string, fixture: string, name: string): string {
  const dir = join(parent, `old-${name}`);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), readFileSync(fixture));
  return dir;
}
