/**
 * A sealed append-only log: a state file kept as a run of records (record-log.ts framing, no header of its own), each
 * change one record appended whole, fsynced and sealed (`<file>.seal`, seal.ts: the file's length and CRC) before its
 * promise resolves, and the whole file rewritten atomically now and then (its owner says when: a compaction). A change
 * costs a write proportionate to it, not to the file.
 *
 * What a reopen accepts (its kind's verdict, verdicts.ts): the file must begin with its sealed bytes (`prefix`); a torn
 * last record past them is what a crash between an append and its seal leaves (never acknowledged), and is cut. A cut
 * or a flipped bit within the sealed bytes, a damaged record, a file emptied or deleted after it held records, an
 * older copy, a file without its seal (a log is sealed before its first byte is written) are damage: refused with the
 * owner's code, counted, a copy kept aside when the kind allows — never read as holding less.
 *
 * An append that falls short (a full flash) is cut back to the last sealed record and fails (append.ts); so is one
 * whose seal cannot be written, so that every record on flash past a crash is one its seal covers or a torn tail. A
 * cut that fails leaves the tail unknown: the log refuses every later change until a restart reads it.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { SluiceError, type ErrorCode } from '../errors.ts';
import { AppendError, appendWhole, fdAppendTarget } from './append.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { fileDamage } from './damage.ts';
import { poolCalls } from './file-calls.ts';
import { encodeRecord, scanRecords } from './record-log.ts';
import { matchSeal, readSealSync, sealOf, sealPath, writeSeal, type SealState } from './seal.ts';
import type { FileKind } from './verdicts.ts';

export interface SealedLogFormat {
  kind: FileKind;
  /** The owner's code for a file that cannot be read back, and for a change that could not be written. */
  code: ErrorCode;
  /** What the file is, in messages ("a voucher book"). */
  what: string;
}

export interface SealedLogOpen {
  log: SealedLog;
  /** Every record's payload, in file order (a torn tail cut is not among them); null: no file, never written. */
  records: Buffer[] | null;
}

const NOTHING: SealState = { bytes: 0, crc: 0 };

/** The errno code of a failure (ENOSPC, EIO…), if it has one. */
const errnoOf = (err: unknown): string | undefined =>
  err instanceof AppendError
    ? err.errno
    : /^E[A-Z]+$/.test(String((err as NodeJS.ErrnoException)?.code))
      ? (err as NodeJS.ErrnoException).code
      : undefined;

const same = (a: SealState, b: SealState): boolean => a.bytes === b.bytes && a.crc === b.crc;

export class SealedLog {
  /** Open for appending from the first append on (a log only read holds no descriptor). */
  private fd: number | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  /** Set when a failed append could not be cut back: every later change is refused with it. */
  private broken: SluiceError | null = null;
  /** Whether a seal is on flash: the first append of a log never sealed seals it empty first (a crash between that
   * append and its seal then leaves a record past the seal, not a log without one). */
  private hasSeal = false;

  private constructor(
    readonly path: string,
    private readonly format: SealedLogFormat,
    /** The file's length and CRC as last made durable: what its seal says. */
    private sealed: SealState,
  ) {}

  /** The file's length: its sealed records. */
  get bytes(): number {
    return this.sealed.bytes;
  }

  /** Reads the log at `path` (synchronously: a start, before anything is served) and checks it against its seal. */
  static openSync(path: string, format: SealedLogFormat): SealedLogOpen {
    const damaged = (why: string, bytes: Buffer | null): SluiceError =>
      fileDamage(format.kind, path, format.code, format.what, why, bytes);
    let states: SealState[] | null;
    try {
      states = readSealSync(sealPath(path));
    } catch (err) {
      throw damaged((err as Error).message, null);
    }
    let data: Buffer | null = null;
    try {
      data = readFileSync(path);
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
    } else if (bytes.length > 0) {
      throw damaged(`its seal ${sealPath(path)} is missing (a log is sealed before it is written)`, data);
    }
    const scan = scanRecords(bytes, 0);
    // Past the seal, a torn record is a crash's leftover; within it, nothing a crash did can fail its checks.
    if (scan.problem === 'corrupt' || scan.end < from.bytes)
      throw damaged(`a damaged record at byte ${scan.end}`, data);
    const log = new SealedLog(path, format, sealOf(bytes.subarray(0, scan.end)));
    log.hasSeal = states !== null;
    if (scan.problem === 'torn') {
      // Never acknowledged: nothing promised is lost by cutting it, and the next append follows the last whole record.
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, scan.end);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    return { log, records: data === null ? null : scan.records.map((r) => r.payload) };
  }

  /**
   * Appends one record; resolves once it is on flash and sealed. Rejects with the owner's code when it was not written
   * (the file as it was).
   */
  append(payload: Uint8Array): Promise<void> {
    return this.serial(async () => {
      const record = encodeRecord(payload);
      const whole = this.sealed.bytes;
      if (!this.hasSeal) {
        try {
          await writeSeal(sealPath(this.path), [this.sealed]);
        } catch (err) {
          throw this.refusal((err as Error).message, err, true);
        }
        this.hasSeal = true;
      }
      this.fd ??= await poolCalls.open(this.path, 'a', 0o600);
      const target = fdAppendTarget(poolCalls, this.fd);
      const next = sealOf(record, this.sealed);
      try {
        await appendWhole(target, record, whole, 'full');
      } catch (err) {
        throw this.refusal((err as Error).message, err, (err as AppendError).cut);
      }
      try {
        await writeSeal(sealPath(this.path), [next]);
      } catch (err) {
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
        await writeSeal(sealPath(this.path), [this.sealed, next]);
        this.hasSeal = true;
        await writeFileAtomic(this.path, bytes, { mode: 0o600 });
      } catch (err) {
        // The rename may be done (a directory fsync failed after it): the next append opens whichever file is there,
        // and knows which it is.
        if (this.fd !== null) await poolCalls.close(this.fd).catch(() => undefined);
        this.fd = null;
        const found = this.found();
        const cut = found !== null && (same(found, this.sealed) || same(found, next));
        if (cut) this.sealed = found!;
        throw this.refusal((err as Error).message, err, cut);
      }
      if (this.fd !== null) await poolCalls.close(this.fd).catch(() => undefined);
      this.fd = null;
      this.sealed = next;
      // The old state stays accepted until the next seal: it held the same changes.
      await writeSeal(sealPath(this.path), [next]).catch(() => undefined);
    });
  }

  /** Waits for the changes under way, then lets go of the file. */
  async close(): Promise<void> {
    await this.chain;
    if (this.fd !== null) await poolCalls.close(this.fd).catch(() => undefined);
    this.fd = null;
  }

  /** The seal of the file as it is now; null: it cannot be read. */
  private found(): SealState | null {
    try {
      return sealOf(readFileSync(this.path));
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
    const refused = new SluiceError(this.format.code, `${this.path} could not be written, nothing changed: ${why}`, {
      cause,
      details: {
        path: this.path,
        ...(errnoOf(cause) && { errno: errnoOf(cause) }),
      },
    });
    if (!cut) this.broken = refused;
    return refused;
  }
}
