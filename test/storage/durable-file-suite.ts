/**
 * One damage suite every kind of state file runs, asserting the verdict its kind declares (src/storage/verdicts.ts),
 * harm by harm: the file cut at every byte, a bit flipped in every byte, emptied, deleted, replaced by an older copy
 * of itself, a directory in its place. A file is built through its owner's own methods (three changes), the owner
 * stopped, the harm done, and the owner opened again as a restart does. Whatever the verdict, a file that opens never
 * reads as holding less than it held unless the verdict says so (`new`, `unseen`, `read-past`): a refusal is
 * `refused` (the owner's code, `details.damaged`, counted in damaged_tables) or `refuses-held` (the nonce files).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError, type ErrorCode } from '../../src/errors.ts';
import { damagedTables } from '../../src/storage/index.ts';
import { FILE_KINDS, HARMS, type FileKind, type Harm } from '../../src/storage/verdicts.ts';
import { tempDirs } from '../helpers/temp.ts';
import { testNeeding } from '../helpers/skip.ts';
import { DirSnapshot } from './dir-snapshot.ts';
import { onFullFlash } from './full-flash.ts';

export interface DurableOwner<O> {
  kind: FileKind;
  /** The file's path in the directory the owner is opened on. */
  file: string;
  /**
   * Opens the owner on `dir`; `atStart`: as the daemon's start opens it (an owner that reads synchronously then), not
   * as a reload does while the daemon serves. The harms at every byte open it as a start does; the others both ways.
   */
  open(dir: string, atStart: boolean): Promise<O>;
  close?(owner: O): Promise<void>;
  /** Change `n` made through the owner; resolves once it is durable. */
  put(owner: O, n: number): Promise<void>;
  /** What the owner holds, comparable with assert.equal (a restart that loses nothing reads back the same). */
  holds(owner: O): unknown;
  /** The code a `refused` open rejects with. */
  code: ErrorCode;
  /**
   * For `refuses-held`: asserts that a call change `n` recorded is refused (`writable`: whether the file can be written
   * again, false with a directory in its place).
   */
  refuses?(owner: O, n: number, writable: boolean): Promise<void>;
  /** Every how many bytes the cut and the flip are tried (1: every byte; a large file may take a stride). */
  stride?: number;
  /** false for a file written once (a key): a full flash then refuses no change. Default true. */
  changesWrite?: boolean;
}

export function durableFileSuite<O>(name: string, owner: DurableOwner<O>): void {
  const verdict = FILE_KINDS[owner.kind];
  const it = suite(`durable file: ${name} (${owner.kind})`);
  const tempDir = tempDirs('sluice-durable-', it.after);
  const fileName = basename(owner.file);

  /** A directory holding changes 1..3, with the bytes the file had after change 1, and what the owner held. */
  const build = async (): Promise<{ dir: string; older: Buffer; held: unknown; good: DirSnapshot }> => {
    const dir = tempDir();
    const o = await owner.open(dir, false);
    await owner.put(o, 1);
    const older = readFileSync(join(dir, owner.file));
    await owner.put(o, 2);
    await owner.put(o, 3);
    const held = await owner.holds(o);
    await owner.close?.(o);
    return { dir, older, held, good: new DirSnapshot(dir) };
  };

  /**
   * assert.is with its message made only when the check fails: the harms at every byte check a thousand times a file,
   * and a message names its harm.
   */
  const is = (actual: unknown, expected: unknown, message: () => string): void => {
    if (actual !== expected) assert.is(actual, expected, message());
  };

  /** Opens after a harm and asserts the verdict's outcome. `what` names the harm in a failure's message. */
  const expect = async (harm: Harm, dir: string, held: unknown, what: () => string, atStart = true): Promise<void> => {
    const outcome = verdict.on[harm];
    const counted = damagedTables()[fileName] ?? 0;
    let o: O;
    try {
      o = await owner.open(dir, atStart);
    } catch (err) {
      is(outcome, 'refused', () => `${what()}: refused (${String(err)}) where the verdict says ${outcome}`);
      if (!isSluiceError(err, owner.code))
        assert.ok(false, `${what()}: refused with ${owner.code}, got ${String(err)}`);
      is(err.details?.['damaged'], true, () => `${what()}: details.damaged`);
      is(damagedTables()[fileName], counted + 1, () => `${what()}: counted in damaged_tables`);
      return;
    }
    try {
      if (outcome === 'refuses-held') {
        assert.ok(owner.refuses, 'a refuses-held owner says how it refuses');
        await owner.refuses(o, 1, harm !== 'directory');
        is(damagedTables()[fileName], counted + 1, () => `${what()}: counted in damaged_tables`);
        return;
      }
      const now = await owner.holds(o);
      // A harm that changed nothing the owner reads (a cut of a trailing newline) is no harm.
      if (JSON.stringify(now) === JSON.stringify(held)) return;
      if (outcome === 'refused')
        assert.unreachable(`${what()}: opened holding ${JSON.stringify(now)}, refused expected`);
    } finally {
      await owner.close?.(o);
    }
  };

  it(`a restart reads back what was written, and a reload's open`, async () => {
    const { dir, held } = await build();
    for (const atStart of [true, false]) {
      const o = await owner.open(dir, atStart);
      assert.equal(await owner.holds(o), held);
      await owner.close?.(o);
    }
  });

  it(`cut at every byte: ${verdict.on.cut}`, async () => {
    const { dir, held, good } = await build();
    const bytes = good.files.get(owner.file)!;
    for (let at = 0; at < bytes.length; at += owner.stride ?? 1) {
      good.restore(owner.file, bytes.subarray(0, at));
      await expect(at === 0 ? 'empty' : 'cut', dir, held, () => `cut at byte ${at} of ${bytes.length}`);
    }
  });

  it(`a bit flipped in every byte: ${verdict.on.flip}`, async () => {
    const { dir, held, good } = await build();
    // One copy, each bit flipped for its write and back after it.
    const flipped = Buffer.from(good.files.get(owner.file)!);
    for (let at = 0; at < flipped.length; at += owner.stride ?? 1) {
      flipped[at] = flipped[at]! ^ (1 << (at % 8));
      good.restore(owner.file, flipped);
      flipped[at] = flipped[at]! ^ (1 << (at % 8));
      await expect('flip', dir, held, () => `bit ${at % 8} of byte ${at} flipped`);
    }
  });

  const harms: Array<[Harm, string, (dir: string, older: Buffer) => void]> = [
    ['empty', 'emptied', (dir) => writeFileSync(join(dir, owner.file), '')],
    ['deleted', 'deleted', (dir) => rmSync(join(dir, owner.file))],
    ['older', 'replaced by an older copy', (dir, older) => writeFileSync(join(dir, owner.file), older)],
    [
      'directory',
      'a directory in its place',
      (dir) => {
        rmSync(join(dir, owner.file));
        mkdirSync(join(dir, owner.file));
      },
    ],
  ];
  for (const [harm, what, spoil] of harms) {
    it(`${what}: ${verdict.on[harm]}, at a start and at a reload`, async () => {
      for (const atStart of [true, false]) {
        const { dir, older, held } = await build();
        spoil(dir, older);
        await expect(harm, dir, held, () => `${what} (${atStart ? 'a start' : 'a reload'})`, atStart);
      }
    });
  }

  testNeeding(
    it,
    ['root'],
    'a full flash (a tmpfs filled to its last byte), space back, a restart: nothing lost, nothing refused',
    async () => {
      await onFullFlash(async (mount, fill, free) => {
        const dir = join(mount, 'state');
        mkdirSync(dir);
        const o = await owner.open(dir, false);
        let reopened = false;
        try {
          await owner.put(o, 1);
          await owner.put(o, 2);
          fill();
          // Changes until one is refused: each lands in what is left of a page until a write falls short.
          let refused: unknown = null;
          let n = 3;
          for (; n < 3 + 1000 && refused === null; n++) await owner.put(o, n).catch((err: unknown) => (refused = err));
          if (owner.changesWrite !== false) assert.ok(refused, 'a change is refused while the flash is full');
          free();
          // Space back: the owner goes on (a change told yes is kept, a refused one may be refused again for a while).
          await owner.put(o, n + 1).catch(() => undefined);
          const held = structuredClone(await owner.holds(o));
          await owner.close?.(o);
          reopened = true;
          let again: O;
          try {
            again = await owner.open(dir, true);
          } catch (err) {
            assert.unreachable(`refused at the restart after a full flash: ${String(err)}`);
            return;
          }
          try {
            assert.equal(await owner.holds(again), held, 'the restart holds what was told yes, no less');
          } finally {
            await owner.close?.(again);
          }
        } finally {
          if (!reopened) await owner.close?.(o);
        }
      });
    },
  );

  it('declares a verdict for every harm', () => {
    for (const harm of HARMS) assert.ok(verdict.on[harm], harm);
  });

  it.run();
}
