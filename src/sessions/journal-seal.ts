/**
 * The journal's seal: a generation counter — the journal generation and how many bytes of its journal were on flash
 * — written after each group commit, so that state files older than what the daemon last wrote (a journal cut short
 * below a record it acknowledged, an older copy of the journal or of the snapshot put back) are told from a crash's
 * leftovers. A crash cannot take back what an fdatasync made durable; only a torn record past the seal is a crash's.
 *
 * Where it is kept (docs/operations.md "State files"), and what each copy sees:
 *   - `<state_dir>/sessions.seal`, beside the journal: survives a reboot; a file put back alone (a hand copy, a
 *     file-system repair that cuts a file) is seen. A whole state_dir restored from an older backup brings back its
 *     older seal and is not seen by it.
 *   - a copy outside state_dir (`main.state_dir`'s own file in RAM, /var/run/sluice/: OpenWrt's /var is tmpfs): also
 *     sees a whole state_dir put back, for as long as the router has not rebooted. It costs no flash write.
 * The seal lags behind the journal (written after the commit's reply, never before, and at most every
 * SEAL_SPACING_MS, at once at a stop): a lagging seal only accepts more, never refuses a good journal; what it does not
 * see is a cut or an older copy within the appends of its last SEAL_SPACING_MS. A seal that cannot be read is ignored
 * with a warning (the journal's own checks still stand); the files at a first start (nothing there) ignore any seal
 * left from an earlier state_dir.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { atomicWriteFs, ensureDir, ensureDirSync, poolCalls, syncCalls, writeFileAtomic } from '../storage/index.ts';
import type { FileCalls } from '../storage/index.ts';

export const JOURNAL_SEAL = 'sessions.seal';
/** The least time between two seal writes: one small flash write per 10 s of commits at most. */
export const SEAL_SPACING_MS = 10_000;

/** How far the state files reached: the journal generation, and the bytes of its journal on flash. */
export interface JournalMark {
  gen: number;
  bytes: number;
}

/** The RAM copy's path for a state_dir: one per state_dir, so two daemons on two directories never share one. */
export function ramSealPath(stateDir: string, runDir = '/var/run/sluice'): string {
  return `${runDir}/journal-${createHash('sha256').update(stateDir).digest('hex').slice(0, 16)}.seal`;
}

/** Whether `a` reaches further than `b`. */
const beyond = (a: JournalMark, b: JournalMark): boolean => a.gen > b.gen || (a.gen === b.gen && a.bytes > b.bytes);

function decode(text: string): JournalMark {
  const v = JSON.parse(text) as { gen?: unknown; bytes?: unknown };
  if (!Number.isSafeInteger(v?.gen) || !Number.isSafeInteger(v?.bytes) || (v.gen as number) < 0)
    throw new TypeError('not a journal seal');
  return { gen: v.gen as number, bytes: v.bytes as number };
}

/**
 * The furthest mark of the seals at `paths` (none there: null), and why any that is there could not be read.
 * Synchronous, as readStart is: read once at the store's load, before anything is served.
 */
export function readJournalSeals(paths: readonly string[]): { mark: JournalMark | null; unreadable: string[] } {
  let mark: JournalMark | null = null;
  const unreadable: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') unreadable.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    try {
      const m = decode(text);
      if (!mark || beyond(m, mark)) mark = m;
    } catch (err) {
      unreadable.push(`${path}: ${(err as Error).message}`);
    }
  }
  return { mark, unreadable };
}

/** Why files that reach `files` are older than the seal `sealed`, or null (they reach it, or further). */
export function olderThanSeal(files: JournalMark, sealed: JournalMark): string | null {
  if (!beyond(sealed, files)) return null;
  return sealed.gen > files.gen
    ? `the state files are of journal generation ${files.gen}, while their seal says generation ${sealed.gen} was ` +
        'written (an older copy was put back)'
    : `sessions.${files.gen}.journal holds ${files.bytes} bytes, while its seal says ${sealed.bytes} were on flash ` +
        '(cut short, or an older copy put back)'; // a crash only tears a record past the seal
}

/** Every seal is this long (padded with spaces), so a seal is rewritten in place without its length changing. */
export const SEAL_BYTES = 64;

function sealText(mark: JournalMark): string {
  const json = JSON.stringify(mark);
  return `${json.padEnd(SEAL_BYTES - 1)}\n`;
}

/**
 * A seal of SEAL_BYTES is overwritten in place and fdatasynced: one data block, no new inode, rename or directory
 * fsync (an atomic replace was ~64 KiB at the block device on ext4, four times this: docs/performance.md). The bytes
 * lie in one sector and one page; should a power cut tear them anyway, the seal reads as unreadable, which is ignored
 * with a warning like any lag. A missing seal, or one of another length (an older one), is replaced atomically.
 */
async function writeSealFile(calls: FileCalls, path: string, text: string): Promise<void> {
  const data = Buffer.from(text);
  let fd: number | undefined;
  try {
    fd = await calls.open(path, 'r+');
    if ((await calls.size(fd)) === data.length && data.length === SEAL_BYTES) {
      // At offset 0: the descriptor was just opened.
      const wrote = await calls.write(fd, data, 0, data.length);
      if (wrote !== data.length) throw new Error(`a seal write took ${wrote} of ${data.length} bytes`);
      await calls.fdatasync(fd);
      return;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  } finally {
    if (fd !== undefined) await calls.close(fd).catch(() => undefined);
  }
  await writeFileAtomic(path, text, { mode: 0o600, fs: atomicWriteFs(calls) });
}

/**
 * Writes the latest mark to every seal path, one write at a time, the newest winning, at most one write every
 * `spacingMs` (a seal per commit would double the journal's flash writes): a mark set meanwhile waits, and a stop
 * (settled) writes it at once. Failures are left: the seal lags, which only accepts more.
 */
export class JournalSealWriter {
  private wanted: JournalMark | null = null;
  private running: Promise<void> | null = null;
  private readonly made = new Set<string>();
  private lastWrite = -Infinity;
  private hurry = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly paths: readonly string[],
    private readonly spacingMs = 0,
  ) {}

  /**
   * Writes `mark` at once with synchronous calls: the store's start, before anything is served (where each call's hop
   * through the thread pool only costs CPU) and before any other write of the seal. Failures are left, as the loop's.
   */
  async writeAtStart(mark: JournalMark): Promise<void> {
    await this.writeMark(mark, syncCalls);
  }

  set(mark: JournalMark): void {
    this.wanted = mark;
    this.running ??= this.loop().finally(() => {
      this.running = null;
    });
  }

  /** Writes the latest mark now (no spacing) and resolves once every mark set so far was written (or failed). */
  async settled(): Promise<void> {
    this.hurry = true;
    this.wake?.();
    try {
      while (this.running) await this.running;
    } finally {
      this.hurry = false;
    }
  }

  private async loop(): Promise<void> {
    while (this.wanted) {
      const wait = this.lastWrite + this.spacingMs - Date.now();
      if (wait > 0 && !this.hurry) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          timer.unref?.();
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
      const mark = this.wanted;
      if (!mark) break;
      this.wanted = null;
      await this.writeMark(mark, poolCalls);
    }
  }

  private async writeMark(mark: JournalMark, calls: FileCalls): Promise<void> {
    const text = sealText(mark);
    for (const path of this.paths) {
      try {
        if (!this.made.has(path)) {
          if (calls === syncCalls) ensureDirSync(dirname(path));
          else await ensureDir(dirname(path));
        }
        this.made.add(path);
        await writeSealFile(calls, path, text);
      } catch {
        // Left as it was: an older seal accepts more, never less.
      }
    }
    this.lastWrite = Date.now();
  }
}
