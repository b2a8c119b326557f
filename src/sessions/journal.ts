/**
 * The flash store: an append-only journal plus a snapshot, in `main.state_dir`.
 *
 *   sessions.snapshot          header {gen, headed, body} + every kept session + every kept payment key (atomic)
 *   sessions.<gen>.journal     a header {gen} (number 0), then the records appended since that snapshot, numbered
 *                              1, 2, … (journal-codec.ts, in storage/json-log.ts lines)
 *
 * The first start writes journal 0 with its header and then a snapshot of generation 0, so that from then on a journal
 * that is missing, empty or without its header is a loss (ERR_STATE_LOST), never mistaken for a first start; a header
 * damaged in place (its line there, followed by record 1) is damage like a record's, reported and read on; replay
 * skips a record whose number it has passed (a duplicated line is applied once).
 * Appends are grouped into one write + fdatasync (group commit): those of one turn of the event loop (the first of a
 * burst waits for the turn's end, not for a timer) and those that arrive while a write is in flight, so a burst of
 * purchases costs one or a few fsyncs, not one each. Compaction (past `compactBytes` or `compactRecords`) writes the
 * snapshot of generation gen+1 (temp + fsync + rename + fsync dir), then switches to an empty journal gen+1 and
 * deletes journal gen. A crash at any step leaves either the old snapshot with its journal, or the new snapshot
 * (whose journal may not exist yet): recovery reads the snapshot's gen and its journal, and deletes the rest.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError } from '../errors.ts';
import { afterNextPoll } from '../time.ts';
import { appendWhole, countDamaged, ensureDirSync, fdAppendTarget, poolCalls, syncCalls } from '../storage/index.ts';
import type { FileCalls } from '../storage/index.ts';
import { encodeLine } from './journal-codec.ts';
import { lockStateDir } from './state-lock.ts';
import { JOURNAL_SEAL, JournalSealWriter, olderThanSeal, readJournalSeals, SEAL_SPACING_MS } from './journal-seal.ts';
import { SNAPSHOT, journalName, readStart } from './journal-start.ts';
import type { StartRead } from './journal-start.ts';
import { keepCopy, openJournalFile, replaceSnapshot, unlinkIfThere, writeSnapshotTemp } from './journal-files.ts';
import { DEFAULT_RETENTION, applyRecord, copyState, emptyState, pruneState } from './store.ts';
import type { LoadResult, RetentionPolicy, SessionStore, StoreRecord, StoreState } from './store.ts';

export type CrashPoint = 'snapshot-temp-written' | 'snapshot-renamed' | 'journal-switched';

export interface JournalOptions {
  dir: string;
  retention?: Partial<RetentionPolicy>;
  /** Compact once the journal passes this many bytes (default 1 MiB). */
  compactBytes?: number;
  /** …or this many records (default 10 000). */
  compactRecords?: number;
  now?: () => number;
  /** Problems worked around at run time (a failed compaction that left the journal intact). */
  onWarning?: (err: SluiceError) => void;
  /**
   * Start even though the state files show sessions that cannot be read back (`sluice daemon --reset-state`): with
   * the sessions that could be read, the damaged files kept as `.corrupt` copies. Without it such a start fails with
   * ERR_STATE_LOST and changes nothing.
   */
  resetState?: boolean;
  /**
   * A copy of the journal's seal kept outside `dir` (journal-seal.ts: the daemon keeps it in RAM, /var/run/sluice), so
   * that a whole state_dir put back from an older copy is seen too.
   */
  sealCopy?: string;
  /** Tests only: called at each compaction step, to kill the process there. */
  crashPoint?: (step: CrashPoint) => void | Promise<void>;
}

export interface JournalStats {
  gen: number;
  journalBytes: number;
  journalRecords: number;
  writes: number;
  fsyncs: number;
  compactions: number;
  /** Set while appends are refused after a failed write (ENOSPC, EIO): the code, and when it began (ms). */
  failing: { code: string; message: string; since: number } | null;
  /** Failed writes since start, and recoveries (a fresh snapshot + journal written once space returned). */
  writeFailures: number;
  recoveries: number;
  /**
   * What the start's read found damaged and read past (each also an ERR_JOURNAL_CORRUPT warning in the log): regions
   * of the snapshot and journal that failed their check, their bytes no recovered record accounts for, and journal
   * headers damaged in place (a journal read on, not refused as lost).
   */
  damageAtStart: { regions: number; lostBytes: number; headers: number };
}

/** How often a failed journal tries to recover (a fresh snapshot + journal), at most. */
export const RECOVER_INTERVAL_MS = 2000;

/** An errno at start (state_dir missing, a file, read-only, under /proc) as a stable code rather than ERR_INTERNAL. */
function stateDirError(dir: string, err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'EIO';
  return new SluiceError(
    'ERR_STATE_DIR',
    `main.state_dir ${dir} is not usable (${code}): ${err instanceof Error ? err.message : String(err)}`,
    {
      cause: err,
      details: { dir, errno: code },
    },
  );
}

interface Pending {
  records: StoreRecord[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class JournalStore implements SessionStore {
  private readonly dir: string;
  private readonly retention: RetentionPolicy;
  private readonly compactBytes: number;
  private readonly compactRecords: number;
  private readonly now: () => number;
  private state: StoreState = emptyState();
  private gen = 0;
  /** The last sequence number written to the current journal (its header is 0). */
  private seq = 0;
  /** The current journal, open for appending. */
  private fd: number | null = null;
  private phase: 'new' | 'open' | 'closing' | 'closed' = 'new';
  private failed: SluiceError | null = null;
  private failedSince = 0;
  private lastRecoverAttempt = 0;
  private unlock: (() => Promise<void>) | null = null;
  private pending: Pending[] = [];
  private compactWaiters: Array<{ now: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private running: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly counters = {
    journalBytes: 0,
    journalRecords: 0,
    writes: 0,
    fsyncs: 0,
    compactions: 0,
    writeFailures: 0,
    recoveries: 0,
  };
  private readonly damage = { regions: 0, lostBytes: 0, headers: 0 };
  /** The current journal's length on flash (its header and every record written), which the seal says. */
  private fileBytes = 0;
  private readonly sealPaths: string[];
  private readonly seal: JournalSealWriter;

  constructor(private readonly options: JournalOptions) {
    this.dir = options.dir;
    this.retention = { ...DEFAULT_RETENTION, ...options.retention };
    this.compactBytes = options.compactBytes ?? 1024 * 1024;
    this.compactRecords = options.compactRecords ?? 10_000;
    this.now = options.now ?? Date.now;
    this.sealPaths = [join(this.dir, JOURNAL_SEAL), ...(options.sealCopy ? [options.sealCopy] : [])];
    this.seal = new JournalSealWriter(this.sealPaths, SEAL_SPACING_MS);
  }

  stats(): JournalStats {
    const failing = this.failed
      ? { code: this.failed.code, message: this.failed.message, since: this.failedSince }
      : null;
    return { gen: this.gen, ...this.counters, failing, damageAtStart: { ...this.damage } };
  }

  async load(): Promise<LoadResult> {
    if (this.phase !== 'new') throw new SluiceError('ERR_STORE_CLOSED', 'journal store can only be loaded once');
    try {
      // Synchronous, as the lock and the reads after it: the store loads once, at the start, before anything is served.
      ensureDirSync(this.dir);
      // One daemon per state_dir, before anything is read: a second one must not replay or rewrite a live journal.
      this.unlock = lockStateDir(this.dir);
    } catch (err) {
      throw stateDirError(this.dir, err);
    }
    try {
      return await this.loadLocked();
    } catch (err) {
      await this.unlock?.().catch(() => undefined);
      this.unlock = null;
      throw stateDirError(this.dir, err);
    }
  }

  /** Reads the files, tells what they lost, and refuses or makes the start's changes (changeAtStart). */
  private async loadLocked(): Promise<LoadResult> {
    const read = readStart(this.dir);
    const { warnings, damaged, journals } = read;
    // State files older than their seal (cut below what was acknowledged, an older copy put back) are a loss like a
    // missing journal; a first start (nothing there) ignores a seal left from an earlier state_dir.
    const seals = readJournalSeals(this.sealPaths);
    for (const why of seals.unreadable)
      warnings.push(new SluiceError('ERR_JOURNAL_CORRUPT', `the journal's seal cannot be read, ignored (${why})`));
    const sealed = read.firstStart ? null : seals.mark;
    // The journal's length as found (a flipped bit keeps it; a cut or an older copy does not).
    // Read synchronously, as readStart reads: the store loads once, at the start, before anything is served.
    let found = 0;
    try {
      found = statSync(join(this.dir, journalName(read.snapshotGen))).size;
    } catch {
      // Missing or unreadable: nothing found.
    }
    const older = sealed ? olderThanSeal({ gen: read.snapshotGen, bytes: found }, sealed) : null;
    if (older) damaged.add(sealed!.gen > read.snapshotGen ? SNAPSHOT : journalName(read.snapshotGen));
    const lost = read.lost ?? older;
    // An "unfinished last record" that begins within the sealed bytes was acknowledged: damage (a flipped newline),
    // reported and kept as a copy, never a crash's leftover.
    for (const t of read.torn) {
      if (sealed?.gen !== read.gen || t.name !== journalName(read.gen) || t.length >= sealed.bytes) continue;
      damaged.add(t.name);
      warnings.push(
        new SluiceError('ERR_JOURNAL_CORRUPT', `${t.name}: its last record is damaged within the sealed bytes`),
      );
    }
    let needsRewrite = read.needsRewrite;
    this.state = read.state;
    this.gen = read.gen;
    this.seq = read.seq;
    this.counters.journalBytes = read.journalBytes;
    this.counters.journalRecords = read.journalRecords;
    Object.assign(this.damage, read.damage);
    for (const name of damaged) countDamaged(name);
    if (lost && !this.options.resetState) {
      throw new SluiceError(
        'ERR_STATE_LOST',
        `${lost} in ${this.dir}; nothing was changed. Keep a copy of the directory, then start once with ` +
          `\`sluice daemon --reset-state\` to accept the loss`,
        {
          details: { dir: this.dir, damaged: true, files: [...damaged], unknownSessions: read.unknownSessions },
        },
      );
    }
    if (lost) {
      // Everything that could hold the lost sessions is evidence, the older journals included.
      if (read.snapshotFound) damaged.add(SNAPSHOT);
      for (const gen of journals) damaged.add(journalName(gen));
      needsRewrite = true;
      warnings.push(
        new SluiceError(
          'ERR_STATE_RESET',
          `--reset-state: starting with the ${this.state.sessions.size} session(s) that could be read (${lost})`,
        ),
      );
    }

    await this.changeAtStart(syncCalls, read, needsRewrite);
    return { ...copyState(this.state), warnings };
  }

  /**
   * What a start changes, in this order, once it read the files and found them fit to start from: the damaged files'
   * copies, a torn tail cut, the journal opened, the stale ones deleted, a first snapshot, the compaction of damage,
   * the seal. `calls`: synchronous ones, as the reads before them are; the store loads once, at the daemon's start
   * before anything is served, where each call's hop through the thread pool only cost CPU (a start that compacted
   * made ~30). The compaction's steps and their order are the ones it makes while serving.
   */
  private async changeAtStart(calls: FileCalls, read: StartRead, needsRewrite: boolean): Promise<void> {
    const { warnings, damaged } = read;
    // Evidence first: never delete or overwrite what a post-mortem needs.
    for (const name of damaged) {
      const copy = await keepCopy(calls, this.dir, name);
      if (copy)
        warnings.push(
          new SluiceError('ERR_JOURNAL_CORRUPT', `kept a copy of the damaged ${name} as ${copy}`, {
            details: { file: name, copy },
          }),
        );
    }
    // A temp snapshot is a compaction that died before its rename: the old snapshot and journal are still whole.
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    await unlinkIfThere(calls, tmp);
    for (const t of read.torn) await calls.truncate(join(this.dir, t.name), t.length);
    // The current journal has its header before an older one goes: a crash between never looks like a lost journal.
    this.fd = await this.openJournal(calls, this.gen, this.now());
    for (const gen of read.stale) await unlinkIfThere(calls, join(this.dir, journalName(gen)));
    if (read.firstStart) {
      // The snapshot marks the state_dir as started: from now on a missing or emptied journal is a loss, not a first
      // start.
      const header = encodeLine({ t: 'snap', v: 1, gen: this.gen, at: this.now(), headed: true, body: 0 });
      await replaceSnapshot(calls, this.dir, await writeSnapshotTemp(calls, this.dir, [header]));
    }
    this.phase = 'open';
    // Damage is rewritten away at once so that new appends do not sit behind it.
    if (needsRewrite) {
      await this.compactNow(this.now(), calls).catch((err: unknown) => {
        warnings.push(
          err instanceof SluiceError ? err : new SluiceError('ERR_JOURNAL_COMPACT', String(err), { cause: err }),
        );
      });
    }
    // Once, after the start's changes, at once as they were made.
    await this.seal.writeAtStart({ gen: this.gen, bytes: this.fileBytes });
  }

  /**
   * Opens journal `gen` for appending; an empty one (new, or a compaction cut short before it was started) first gets
   * its header, on flash before the directory entry is made durable.
   */
  private async openJournal(calls: FileCalls, gen: number, now: number): Promise<number> {
    const { fd, size, fresh } = await openJournalFile(calls, this.dir, gen, now);
    if (fresh) {
      this.seq = 0;
      this.counters.journalRecords = 0;
    }
    this.fileBytes = size;
    return fd;
  }

  append(records: readonly StoreRecord[]): Promise<void> {
    if (this.phase !== 'open') return Promise.reject(new SluiceError('ERR_STORE_CLOSED', 'journal store is not open'));
    if (this.failed && !this.recoverDue()) return Promise.reject(this.failed);
    if (records.length === 0) return Promise.resolve();
    // Copy now: the caller may mutate its objects after this call returns. Encoded when written, numbered in file
    // order.
    const copies = structuredClone(records as StoreRecord[]);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ records: copies, resolve, reject });
      this.kick();
    });
  }

  compact(now: number): Promise<void> {
    if (this.failed && !this.recoverDue()) return Promise.reject(this.failed);
    if (this.phase !== 'open') return Promise.reject(new SluiceError('ERR_STORE_CLOSED', 'journal store is not open'));
    return new Promise<void>((resolve, reject) => {
      this.compactWaiters.push({ now, resolve, reject });
      this.kick();
    });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (this.phase === 'open') this.phase = 'closing';
      while (this.running) await this.running;
      if (this.fd !== null) await poolCalls.close(this.fd).catch(() => undefined);
      this.fd = null;
      await this.seal.settled();
      await this.unlock?.().catch(() => undefined);
      this.unlock = null;
      this.phase = 'closed';
    })();
    return this.closing;
  }

  private kick(): void {
    if (this.running) return;
    // The purchases of one moment share one write and one fdatasync, and then reach the gate together, where they
    // share one nft run; alone, the first would go first and the rest would wait a whole fdatasync for the next write.
    const turnEnd = new Promise<void>((resolve) => afterNextPoll(resolve));
    this.running = turnEnd
      .then(() => this.drain())
      .finally(() => {
        this.running = null;
        if (this.pending.length > 0 || this.compactWaiters.length > 0) this.kick();
      });
  }

  /** Whether a failed journal should try to recover now (rate-limited: a full disk is not hammered per request). */
  private recoverDue(): boolean {
    const now = Date.now();
    if (now - this.lastRecoverAttempt < RECOVER_INTERVAL_MS) return false;
    this.lastRecoverAttempt = now;
    return true;
  }

  /**
   * After a failed write the journal file's tail is unknown, so it is never appended to again: recovery writes what
   * is known durable (this.state: every acknowledged record) as a fresh snapshot of the next generation and switches
   * to an empty journal — the same steps as a compaction. Until that succeeds, appends are refused.
   */
  private async recover(): Promise<void> {
    const failed = this.failed;
    if (!failed) return;
    this.failed = null;
    try {
      await this.compactServing(this.now());
      this.counters.recoveries++;
      this.options.onWarning?.(
        new SluiceError(
          'ERR_JOURNAL_RECOVERED',
          `journal writable again after ${Math.round((Date.now() - this.failedSince) / 1000)} s (${failed.message})`,
        ),
      );
    } catch (err) {
      this.failed =
        failed.code === 'ERR_JOURNAL_WRITE'
          ? new SluiceError(
              'ERR_JOURNAL_WRITE',
              `${failed.message}; recovery failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            )
          : failed;
    }
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 || this.compactWaiters.length > 0) {
      if (this.failed) {
        await this.recover();
        if (this.failed) {
          for (const p of this.pending.splice(0)) p.reject(this.failed);
          for (const w of this.compactWaiters.splice(0)) w.reject(this.failed);
          continue;
        }
      }
      if (this.pending.length > 0) await this.flush(this.pending.splice(0));
      if (this.failed) {
        for (const w of this.compactWaiters.splice(0)) w.reject(this.failed);
        continue;
      }
      const waiters = this.compactWaiters.splice(0);
      const auto = this.counters.journalBytes > this.compactBytes || this.counters.journalRecords > this.compactRecords;
      if (waiters.length === 0 && !auto) continue;
      try {
        await this.compactServing(waiters.length > 0 ? Math.max(...waiters.map((w) => w.now)) : this.now());
        for (const w of waiters) w.resolve();
      } catch (err) {
        const wrapped =
          err instanceof SluiceError
            ? err
            : new SluiceError('ERR_JOURNAL_COMPACT', `journal compaction failed: ${String(err)}`, { cause: err });
        for (const w of waiters) w.reject(wrapped);
        if (waiters.length === 0) this.options.onWarning?.(wrapped);
      }
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    const fd = this.fd;
    try {
      if (fd === null) throw new Error('journal file is not open');
      // Numbered here, in the order written: a number is never reused in this journal, also after a failed write
      // (which ends this journal: recovery starts a new one).
      const buf = Buffer.from(
        batch.map((p) => p.records.map((r) => encodeLine(r, ++this.seq)).join('')).join(''),
        'utf8',
      );
      // Whole or not at all (storage/append.ts): a failed write or fdatasync cuts the file back to its last whole line,
      // so a batch refused here is not read back at the next start either.
      this.counters.writes++;
      await appendWhole(fdAppendTarget(poolCalls, fd), buf, this.fileBytes, 'data');
      this.counters.fsyncs++;
      this.counters.journalBytes += buf.length;
      this.fileBytes += buf.length;
    } catch (err) {
      // After a failed write or fsync the file's content is unknown (the kernel may have dropped dirty pages):
      // refuse further appends rather than answer "yes" on top of it.
      this.failed = new SluiceError(
        'ERR_JOURNAL_WRITE',
        `journal write failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      this.failedSince = Date.now();
      this.lastRecoverAttempt = this.failedSince;
      this.counters.writeFailures++;
      for (const p of batch) p.reject(this.failed);
      for (const p of this.pending.splice(0)) p.reject(this.failed);
      return;
    }
    for (const p of batch) {
      for (const record of p.records) applyRecord(this.state, record);
      this.counters.journalRecords += p.records.length;
    }
    // After the fdatasync, never before: the seal lags the journal (a lagging seal accepts more, never less).
    this.seal.set({ gen: this.gen, bytes: this.fileBytes });
    for (const p of batch) p.resolve();
  }

  /** A compaction while serving: its calls on the thread pool, the seal set after it. */
  private async compactServing(now: number): Promise<void> {
    await this.compactNow(now, poolCalls);
    this.seal.set({ gen: this.gen, bytes: this.fileBytes });
  }

  /**
   * Writes the state as the snapshot of the next generation and switches to its empty journal. `calls`: on the thread
   * pool while serving; synchronous at the start (loadLocked). Its caller sets the seal.
   */
  private async compactNow(now: number, calls: FileCalls): Promise<void> {
    pruneState(this.state, now, this.retention);
    const next = this.gen + 1;
    const lines: string[] = [];
    for (const session of this.state.sessions.values()) lines.push(encodeLine({ t: 'open', session, keys: [] }));
    for (const [key, at] of this.state.refs) lines.push(encodeLine({ t: 'ref', key, at }));
    const since = this.state.sales.since;
    for (const sales of this.state.sales.chunks()) lines.push(encodeLine({ t: 'sales', since, sales }));
    const body = lines.reduce((n, line) => n + Buffer.byteLength(line), 0);
    lines.unshift(encodeLine({ t: 'snap', v: 1, gen: next, at: now, headed: true, body }));
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    try {
      await writeSnapshotTemp(calls, this.dir, lines);
      await this.options.crashPoint?.('snapshot-temp-written');
    } catch (err) {
      // Nothing was replaced: the current snapshot + journal are intact, keep appending to them.
      await unlinkIfThere(calls, tmp).catch(() => undefined);
      throw new SluiceError('ERR_JOURNAL_COMPACT', `cannot write the snapshot: ${String(err)}`, { cause: err });
    }
    try {
      await replaceSnapshot(calls, this.dir, tmp);
      await this.options.crashPoint?.('snapshot-renamed');
      const previous = this.fd;
      this.fd = await this.openJournal(calls, next, now);
      if (previous !== null) await calls.close(previous);
      await this.options.crashPoint?.('journal-switched');
      await unlinkIfThere(calls, join(this.dir, journalName(this.gen)));
      this.gen = next;
      this.counters.journalBytes = 0;
      this.counters.journalRecords = 0;
      this.seq = 0;
      this.counters.compactions++;
    } catch (err) {
      // The new snapshot may be in place without its journal being ours: stop rather than append to the wrong file.
      // (Recovery later writes a newer generation from memory, which supersedes whatever this left.)
      this.failed = new SluiceError('ERR_JOURNAL_WRITE', `journal switch failed: ${String(err)}`, { cause: err });
      this.failedSince = Date.now();
      this.lastRecoverAttempt = this.failedSince;
      this.counters.writeFailures++;
      throw this.failed;
    }
  }
}
