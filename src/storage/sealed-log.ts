/**
 * A sealed append-only log: a state file kept as a run of records (record-log.ts framing, no header of its own), each
 * change one record appended whole, fsynced and sealed (the file's length and CRC, seal.ts: `<file>.seal`, or where its
 * owner keeps it) before its promise resolves, and the whole file rewritten atomically now and then (its owner says
 * when: a compaction). A change costs a write proportionate to it, not to the file.
 *
 * What a reopen accepts (its kind's verdict, verdicts.ts): the file must begin with its sealed bytes (`prefix`); a torn
 * last record past them is what a crash between an append and its seal leaves (never acknowledged), and is cut. A cut
 * or a flipped bit within the sealed bytes, a damaged record, a file emptied or deleted after it held records, an
 * older copy, a file without its seal (a log is sealed before its first byte is written, unless its owner reads files
 * written before seals were kept) are damage: refused with the owner's code, counted, a copy kept aside when the kind
 * allows — never read as holding less.
 *
 * An append that falls short (a full flash) is cut back to the last sealed record and fails (append.ts); so is one
 * whose seal cannot be written, so that every record on flash past a crash is one its seal covers or a torn tail —
 * unless the seal was written after all (its rename made, the directory's fsync failed): then the record stands, as
 * both the older seal and the newer accept it. A cut that fails leaves the tail unknown: the log refuses every later
 * change until a restart reads it.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { SluiceError, type ErrorCode } from '../errors.ts';
import { AppendError, appendWhole, fdAppendTarget } from './append.ts';
import { atomicWriteFs, writeFileAtomic, type AtomicWriteFs } from './atomic-write.ts';
import { fileDamage } from './damage.ts';
import { poolCalls, type FileCalls } from './file-calls.ts';
import { encodeRecord, scanRecords } from './record-log.ts';
import { matchSeal, readSeal, readSealSync, sealOf, sealPath, writeSeal, type SealState } from './seal.ts';
import type { FileKind } from './verdicts.ts';

export interface SealedLogFormat {
  kind: FileKind;
  /** The owner's code for a file that cannot be read back, and (without `writeCode`) for a change not written. */
  code: ErrorCode;
  /** The owner's code for a change that could not be written. */
  writeCode?: ErrorCode;
  /** What the file is, in messages ("a voucher book"). */
  what: string;
  /**
   * A file found without its seal: damage (`refuse`, the default: a log is sealed before it is written), or read as it
   * is (`read`: an owner whose files were written before seals were kept, and which tells those from one whose seal was
   * lost by what its records say).
   */
  unsealed?: 'refuse' | 'read';
}

export interface SealedLogOptions {
  /** Where the seal is kept: `<file>.seal` unless the owner keeps it elsewhere (out of a directory removed whole). */
  seal?: string;
  /** The calls every write is made with (the pool's; a test injects failures). */
  calls?: FileCalls;
}

export interface SealedLogOpen {
  log: SealedLog;
  /** Every record's payload, in file order (a torn tail is not among them); null: no file, never written. */
  records: Buffer[] | null;
  /** Whether a seal was found. */
  sealed: boolean;
}

const NOTHING: SealState = { bytes: 0, crc: 0 };

/** The errno code of a failure (ENOSPC, EIO…), if it or what caused it has one (an atomic write's wraps it). */
function errnoOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as Error).cause, depth++) {
    if (e instanceof AppendError) return e.errno;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/** Where a log is kept, and the calls it is written with. */
interface Where {
  path: string;
  seal: string;
  calls: FileCalls;
}

const whereOf = (path: string, options: SealedLogOptions): Where => ({
  path,
  seal: options.seal ?? sealPath(path),
  calls: options.calls ?? poolCalls,
});

const same = (a: SealState, b: SealState): boolean => a.bytes === b.bytes && a.crc === b.crc;

/** A read made now whose outcome is handed over later, as a call that returns its value or throws its error. */
const later = <T>(read: Promise<T>): Promise<() => T> =>
  read.then(
    (value) => () => value,
    (err: unknown) => () => {
      throw err;
    },
  );

export class SealedLog {
  /** Open for appending from the first append on (a log only read holds no descriptor). */
  private fd: number | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  /** Set when a failed append could not be cut back: every later change is refused with it. */
  private broken: SluiceError | null = null;
  /**
   * What the seal on flash says, as far as this process knows; null: no seal. The first append of a log never sealed
   * seals it first (a crash between that append and its seal then leaves a record past the seal, not a log without
   * one).
   */
  private onFlash: SealState[] | null = null;
  /** A torn last record is past `sealed` still: cut before anything is appended after it. */
  private torn = false;
  /** The seal's and the compaction's atomic writes, made with `calls`. */
  private readonly fs: AtomicWriteFs;

  private constructor(
    private readonly where: Where,
    private readonly format: SealedLogFormat,
    /** The file's length and CRC as last made durable: what its seal says. */
    private sealed: SealState,
  ) {
    this.fs = atomicWriteFs(where.calls);
  }

  get path(): string {
    return this.where.path;
  }

  /** The file's length: its sealed records. */
  get bytes(): number {
    return this.sealed.bytes;
  }

  /**
   * Reads the log at `path` now (synchronously: a start, before anything is served), checks it against its seal and
   * cuts a torn tail.
   */
  static openSync(path: string, format: SealedLogFormat, options: SealedLogOptions = {}): SealedLogOpen {
    const where = whereOf(path, options);
    const opened = SealedLog.check(where, format, [() => readSealSync(where.seal), () => readFileSync(path)]);
    opened.log.cutTornSync();
    return opened;
  }

  /**
   * Reads the log at `path` (on the thread pool; `atStart`, synchronously) and checks it against its seal, writing
   * nothing: a torn tail is cut, and a seal that lags behind the file is written again, by `settle` (once the owner's
   * own checks of the records passed: a file it refuses stays as it was found) or before the first change.
   */
  static async open(
    path: string,
    format: SealedLogFormat,
    options: SealedLogOptions & { atStart?: boolean } = {},
  ): Promise<SealedLogOpen> {
    const where = whereOf(path, options);
    if (options.atStart)
      return SealedLog.check(where, format, [() => readSealSync(where.seal), () => readFileSync(path)]);
    return SealedLog.check(
      where,
      format,
      await Promise.all([later(readSeal(where.seal)), later(poolCalls.readFile(path))]),
    );
  }

  private static check(
    where: Where,
    format: SealedLogFormat,
    /** The seal's states and the file's bytes, read: each returns what its read gave, or throws its error. */
    [readStates, readData]: [() => SealState[] | null, () => Buffer],
  ): SealedLogOpen {
    const { path, seal } = where;
    const damaged = (why: string, bytes: Buffer | null): SluiceError =>
      fileDamage(format.kind, path, format.code, format.what, why, bytes);
    let states: SealState[] | null;
    try {
      states = readStates();
    } catch (err) {
      throw damaged((err as Error).message, null);
    }
    let data: Buffer | null = null;
    try {
      data = readData();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw damaged(`cannot be read (${(err as Error).message})`, null);
    }
    const bytes = data ?? Buffer.alloc(0);
    let from = NOTHING;
    if (states) {
      const match = matchSeal(bytes, states, 'prefix');
      if (match === null) {
        const held = Math.min(...states.map((s) => s.bytes));
        throw damaged(
          bytes.length === 0
            ? `it is ${data ? 'empty' : 'missing'}, while its seal says it held ${held} bytes`
            : bytes.length < held
              ? `it ends at byte ${bytes.length}, before the ${held} bytes it was sealed with (cut, or an older copy)`
              : 'its sealed bytes changed (a flipped bit, another file, or an older copy)',
          data,
        );
      }
      from = match;
    } else if (bytes.length > 0 && format.unsealed !== 'read') {
      throw damaged(`its seal ${seal} is missing (a log is sealed before it is written)`, data);
    }
    const scan = scanRecords(bytes, 0);
    // Past the seal, a torn record is a crash's leftover; within it, nothing a crash did can fail its checks.
    if (scan.problem === 'corrupt' || scan.end < from.bytes)
      throw damaged(`a damaged record at byte ${scan.end}`, data);
    const log = new SealedLog(where, format, sealOf(bytes.subarray(0, scan.end)));
    log.onFlash = states;
    log.torn = scan.problem === 'torn';
    return { log, records: data === null ? null : scan.records.map((r) => r.payload), sealed: states !== null };
  }

  /**
   * Cuts a torn tail and seals the file as it reads, where either is still to do: what an owner that opened the log
   * with `open` calls once it accepts what it read.
   */
  settle(): Promise<void> {
    return this.serial(() => this.ready(true));
  }

  /**
   * Appends one record; resolves once it is on flash and sealed. Rejects with the owner's code when it was not written
   * (the file as it was).
   */
  append(payload: Uint8Array): Promise<void> {
    return this.serial(async () => {
      await this.ready(false);
      const record = encodeRecord(payload);
      const whole = this.sealed.bytes;
      const target = fdAppendTarget(this.where.calls, await this.appendFd());
      const next = sealOf(record, this.sealed);
      try {
        await appendWhole(target, record, whole, 'full');
      } catch (err) {
        throw this.refusal((err as Error).message, err, (err as AppendError).cut);
      }
      try {
        await this.writeSeal([next]);
      } catch (err) {
        // The rename made, only the directory's fsync failed: the seal names the record already, and the older one
        // it may fall back to after a power cut accepts the longer file too. The record stands.
        if (this.onFlash?.some((s) => same(s, next))) {
          this.sealed = next;
          return;
        }
        // A record its seal does not cover would read as a torn tail, cut at the next start: the change is undone now.
        let cut = true;
        try {
          await target.truncate(whole);
          await target.sync();
        } catch {
          cut = false;
        }
        throw this.refusal((err as Error).message, err, cut);
      }
      this.sealed = next;
    });
  }

  /**
   * Replaces the whole file with `payloads` (its owner's same state in fewer records), atomically: both states are
   * sealed before the rename, so a crash on either side of it leaves a file the seal accepts.
   */
  rewrite(payloads: readonly Uint8Array[]): Promise<void> {
    return this.serial(async () => {
      const bytes = Buffer.concat(payloads.map((p) => encodeRecord(p)));
      const next = sealOf(bytes);
      try {
        await this.writeSeal([this.sealed, next]);
        await writeFileAtomic(this.where.path, bytes, { mode: 0o600, fs: this.fs });
      } catch (err) {
        // The rename may be done (a directory fsync failed after it): the next append opens whichever file is there,
        // and knows which it is.
        await this.closeFd();
        const found = this.found();
        const cut = found !== null && (same(found, this.sealed) || same(found, next));
        if (cut) {
          this.torn = false;
          this.sealed = found!;
        }
        throw this.refusal((err as Error).message, err, cut);
      }
      await this.closeFd();
      this.torn = false;
      this.sealed = next;
      // The old state stays accepted until the next seal: it held the same changes.
      await this.writeSeal([next]).catch(() => undefined);
    });
  }

  /** Waits for the changes under way, then lets go of the file. */
  async close(): Promise<void> {
    await this.chain;
    await this.closeFd();
  }

  /**
   * Before a change: the torn tail cut (appending after it would hide every later record behind it), and a seal
   * written where there is none (`exact`: also where the one on flash does not name the file as it reads).
   */
  private async ready(exact: boolean): Promise<void> {
    if (this.torn) {
      const target = fdAppendTarget(this.where.calls, await this.appendFd());
      try {
        await target.truncate(this.sealed.bytes);
        await target.sync();
      } catch (err) {
        throw this.refusal(`its torn tail could not be cut (${(err as Error).message})`, err, false);
      }
      this.torn = false;
    }
    const seal = this.onFlash;
    if (seal !== null && (!exact || (seal.length === 1 && same(seal[0]!, this.sealed)))) return;
    try {
      await this.writeSeal([this.sealed]);
    } catch (err) {
      throw this.refusal((err as Error).message, err, true);
    }
  }

  /** Writes the seal; when that fails, learns what the seal on flash says now (null: none, or it cannot be read). */
  private async writeSeal(states: SealState[]): Promise<void> {
    try {
      await writeSeal(this.where.seal, states, this.fs);
      this.onFlash = states;
    } catch (err) {
      this.onFlash = await readSeal(this.where.seal).catch(() => null);
      throw err;
    }
  }

  private async appendFd(): Promise<number> {
    this.fd ??= await this.where.calls.open(this.where.path, 'a', 0o600);
    return this.fd;
  }

  private async closeFd(): Promise<void> {
    if (this.fd !== null) await this.where.calls.close(this.fd).catch(() => undefined);
    this.fd = null;
  }

  /** openSync's cut of a torn tail: never acknowledged, nothing promised is lost, and the next append follows it. */
  private cutTornSync(): void {
    if (!this.torn) return;
    const fd = openSync(this.where.path, 'r+');
    try {
      ftruncateSync(fd, this.sealed.bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.torn = false;
  }

  /** The seal of the file as it is now; null: it cannot be read. */
  private found(): SealState | null {
    try {
      return sealOf(readFileSync(this.where.path));
    } catch {
      return null;
    }
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(() => {
      if (this.broken) throw this.broken;
      return step();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private refusal(why: string, cause: unknown, cut: boolean): SluiceError {
    const code = this.format.writeCode ?? this.format.code;
    const refused = new SluiceError(code, `${this.where.path} could not be written, nothing changed: ${why}`, {
      cause,
      details: {
        path: this.where.path,
        ...(errnoOf(cause) && { errno: errnoOf(cause) }),
      },
    });
    if (!cut) this.broken = refused;
    return refused;
  }
}
