/**
 * One damage suite every kind of state file runs, asserting the verdict its kind declares (src/storage/verdicts.ts),
 * harm by harm: the file cut at every byte, a bit flipped in every byte, emptied, deleted, replaced by an older copy
 * of itself, a directory in its place. A file is built through its owner's own methods (three changes), the owner
 * stopped, the harm done, and the owner opened again as a restart does. Whatever the verdict, a file that opens never
 * reads as holding less than it held unless the verdict says so (`new`, `unseen`, `read-past`): a refusal is
 * `refused` (the owner's code, `details.damaged`, counted in damaged_tables) or `refuses-held` (the nonce files).
 */
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError, type ErrorCode } from '../../src/errors.ts';
import { damagedTables } from '../../src/storage/index.ts';
import { FILE_KINDS, HARMS, type FileKind, type Harm } from '../../src/storage/verdicts.ts';
import { tempDirs } from '../helpers/temp.ts';
import { testNeeding } from '../helpers/skip.ts';
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

type Snapshot = Map<string, Buffer>;

function snapshot(dir: string, into: Snapshot = new Map(), under = ''): Snapshot {
  for (const name of readdirSync(join(dir, under))) {
    const rel = join(under, name);
    if (statSync(join(dir, rel)).isDirectory()) snapshot(dir, into, rel);
    else into.set(rel, readFileSync(join(dir, rel)));
  }
  return into;
}

/**
 * Puts `dir` back to the snapshot exactly as emptying it and writing every file anew would (each snapshot file with
 * its bytes and mode 0o600, each directory holding one with mkdir's default mode, nothing else), touching only what
 * differs: the owner's last open changed a file or two of it, and the harms run once per byte of the file, so
 * rewriting the whole directory each time was most of these suites' time (unlink, rmdir, mkdir, create).
 */
/** A file's mode and bytes through one open (restore reads every kept file after every harm). */
function modeAndBytes(path: string): { mode: number; bytes: Buffer } {
  const fd = openSync(path, 'r');
  try {
    const { mode, size } = fstatSync(fd);
    const bytes = Buffer.allocUnsafe(size);
    let got = 0;
    for (let n = -1; got < size && n !== 0; got += n) n = readSync(fd, bytes, got, size - got, got);
    return { mode: mode & 0o7777, bytes: bytes.subarray(0, got) };
  } finally {
    closeSync(fd);
  }
}

/** The modes a new file and a new directory get (process.umask() reads it by setting it twice: once, here). */
const UMASK = process.umask();
const FILE_MODE = 0o600 & ~UMASK;
const DIR_MODE = 0o777 & ~UMASK;

function restore(dir: string, snap: Snapshot, harmed?: string): void {
  const fileMode = FILE_MODE;
  const dirMode = DIR_MODE;
  const dirs = new Set<string>();
  for (const rel of snap.keys()) for (let d = dirname(rel); d !== '.'; d = dirname(d)) dirs.add(d);
  const kept = new Set<string>();
  const present = new Set<string>(['.']);
  const walk = (under: string): void => {
    for (const entry of readdirSync(join(dir, under), { withFileTypes: true })) {
      const rel = join(under, entry.name);
      const path = join(dir, rel);
      const want = snap.get(rel);
      if (entry.isDirectory() && dirs.has(rel)) {
        if ((statSync(path).mode & 0o7777) !== dirMode) chmodSync(path, dirMode);
        present.add(rel);
        walk(rel);
      } else if (entry.isFile() && want && rel !== harmed) {
        const now = modeAndBytes(path);
        if (now.mode !== fileMode) unlinkSync(path);
        else {
          if (!now.bytes.equals(want)) writeFileSync(path, want);
          kept.add(rel);
        }
      } else if (entry.isDirectory()) rmSync(path, { recursive: true, force: true });
      // A file (or a link): one unlink, not rm's walk of what might be a tree.
      else unlinkSync(path);
    }
  };
  walk('');
  const parentOf = (rel: string): void => {
    if (present.has(dirname(rel))) return;
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    for (let d = dirname(rel); d !== '.'; d = dirname(d)) present.add(d);
  };
  // The harmed file is left for the caller to write (new, mode 0o600), so that it is not written twice.
  if (harmed) parentOf(harmed);
  for (const [rel, bytes] of snap) {
    if (kept.has(rel) || rel === harmed) continue;
    parentOf(rel);
    writeFileSync(join(dir, rel), bytes, { mode: 0o600 });
  }
}

export function durableFileSuite<O>(name: string, owner: DurableOwner<O>): void {
  const verdict = FILE_KINDS[owner.kind];
  const it = suite(`durable file: ${name} (${owner.kind})`);
  const tempDir = tempDirs('sluice-durable-', it.after);

  /** A directory holding changes 1..3, with the bytes the file had after change 1, and what the owner held. */
  const build = async (): Promise<{ dir: string; older: Buffer; held: unknown; good: Snapshot }> => {
    const dir = tempDir();
    const o = await owner.open(dir, false);
    await owner.put(o, 1);
    const older = readFileSync(join(dir, owner.file));
    await owner.put(o, 2);
    await owner.put(o, 3);
    const held = await owner.holds(o);
    await owner.close?.(o);
    return { dir, older, held, good: snapshot(dir) };
  };

  /** Opens after a harm and asserts the verdict's outcome. `lossless`: the harm left the same content. */
  const expect = async (harm: Harm, dir: string, held: unknown, what: string, atStart = true): Promise<void> => {
    const outcome = verdict.on[harm];
    const counted = damagedTables()[basename(owner.file)] ?? 0;
    let o: O;
    try {
      o = await owner.open(dir, atStart);
    } catch (err) {
      assert.is(outcome, 'refused', `${what}: refused (${String(err)}) where the verdict says ${outcome}`);
      assert.ok(isSluiceError(err, owner.code), `${what}: refused with ${owner.code}, got ${String(err)}`);
      assert.is(err.details?.['damaged'], true, `${what}: details.damaged`);
      assert.is(damagedTables()[basename(owner.file)], counted + 1, `${what}: counted in damaged_tables`);
      return;
    }
    try {
      if (outcome === 'refuses-held') {
        assert.ok(owner.refuses, 'a refuses-held owner says how it refuses');
        await owner.refuses(o, 1, harm !== 'directory');
        assert.is(damagedTables()[basename(owner.file)], counted + 1, `${what}: counted in damaged_tables`);
        return;
      }
      const now = await owner.holds(o);
      // A harm that changed nothing the owner reads (a cut of a trailing newline) is no harm.
      if (JSON.stringify(now) === JSON.stringify(held)) return;
      if (outcome === 'refused') assert.unreachable(`${what}: opened holding ${JSON.stringify(now)}, refused expected`);
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
    const bytes = good.get(owner.file)!;
    for (let at = 0; at < bytes.length; at += owner.stride ?? 1) {
      restore(dir, good, owner.file);
      writeFileSync(join(dir, owner.file), bytes.subarray(0, at), { mode: 0o600 });
      await expect(at === 0 ? 'empty' : 'cut', dir, held, `cut at byte ${at} of ${bytes.length}`);
    }
  });

  it(`a bit flipped in every byte: ${verdict.on.flip}`, async () => {
    const { dir, held, good } = await build();
    const bytes = good.get(owner.file)!;
    for (let at = 0; at < bytes.length; at += owner.stride ?? 1) {
      restore(dir, good, owner.file);
      const flipped = Buffer.from(bytes);
      flipped[at] = flipped[at]! ^ (1 << (at % 8));
      writeFileSync(join(dir, owner.file), flipped, { mode: 0o600 });
      await expect('flip', dir, held, `bit ${at % 8} of byte ${at} flipped`);
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
        await expect(harm, dir, held, `${what} (${atStart ? 'a start' : 'a reload'})`, atStart);
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
