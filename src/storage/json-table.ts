/**
 * A durable whole-file JSON table: rows kept in memory by key, the whole table rewritten atomically (temp, fsync,
 * rename, directory fsync: atomic-write.ts) when its owner flushes. Under every small table of state that records
 * money or replays (x402.json, upto.json, escrow.json, batch-channels.json, trials.json, the nonce files, RADIUS
 * accounting's sessions.json); each owner keeps its own file format (the format object reads and writes it) and its
 * own error code.
 *
 * One damage policy for all of them, their kind's verdict (storage/verdicts.ts, `money-table` unless the format names
 * another): a file that is there but cannot be read back (not JSON, not the owner's table, one row failing the owner's
 * shape check, an unreadable file) is never read as empty — an empty table would forget a nonce used or money owed.
 * Opening it fails closed with the owner's code (`details.damaged: true`), the damage is counted (`damagedTables()`,
 * in ubus `stats`), and a copy of its bytes is kept beside it for support (`<file>.damaged-<crc32 of the bytes>`: one
 * copy per distinct damage, so a respawn loop does not fill the flash). The file itself is left in place: the next
 * start refuses it again until it is mended or moved.
 *
 * Each table is sealed (`<file>.seal`, storage/seal.ts): before each rewrite the seal names the file's old and new
 * length and CRC, so a file that parses but is not what was last written — a flipped bit in a figure, a cut that
 * leaves JSON, an older copy put back, a file deleted or emptied — is damage too, while a crash on either side of the
 * rename is not. A missing file never sealed (or a path whose directory is not one: nothing can have been saved
 * there) is a table never written: empty. A table written before seals existed is read as it is and sealed at its next
 * write. The cost: one more small atomic write per write.
 *
 * Writes are serialized and coalesced: a flush asked while another waits to start joins it (the one write carries
 * both changes, as its snapshot is taken when it starts), so a burst of changes costs fewer flash writes, and an
 * owner that batches by time (RADIUS accounting) changes rows without flushing and flushes on its own schedule.
 */
import { readFileSync } from 'node:fs';
import { SluiceError, type ErrorCode } from '../errors.ts';
import { writeFileAtomic, type AtomicWriteFs } from './atomic-write.ts';
import { fileDamage } from './damage.ts';
import { poolCalls } from './file-calls.ts';
import { readSeal, readSealSync, sealOf, sealPath, writeSeal, type SealState } from './seal.ts';
import type { FileKind } from './verdicts.ts';

/** How an owner's file is laid out and checked. `Extra` is what the file holds beside its rows (a floor, intents). */
export interface JsonTableFormat<Row, Extra = undefined> {
  /** The owner's code for a file that cannot be read back (and, with `writeCode`, written). */
  code: ErrorCode;
  /** The code a failed write is thrown with; absent: writeFileAtomic's ERR_WRITE_FAILED as it is. */
  writeCode?: ErrorCode;
  /** What the file is, in messages ("an x402 store"). */
  what: string;
  /** Its kind's damage verdict (storage/verdicts.ts); default `money-table`. */
  kind?: FileKind;
  key(row: Row): string;
  /**
   * The parsed file's rows, unchecked, and its other fields; throws (its message says why) when it is not the table.
   */
  split(json: unknown): { rows: unknown[]; extra: Extra };
  /**
   * One row's shape check: the row, or throws why. One bad row fails the whole file: a row skipped is a row forgotten.
   */
  row(value: unknown, index: number): Row;
  /** The file's JSON value. */
  join(rows: Row[], extra: Extra): unknown;
  /** What `extra` is for a table never written. */
  empty(): Extra;
  /** Mode of a new file; default 0o600 (state files are the router's own). */
  mode?: number;
  /** End the file with a newline (the formats that always did). */
  newline?: boolean;
}

export interface JsonTableOptions {
  /** The file system writes go through (tests make a step fail). */
  fs?: AtomicWriteFs;
}

/** How `open` reads the file. */
export interface JsonTableOpen extends JsonTableOptions {
  /**
   * Opened at the daemon's start, before anything is served: read synchronously (openSync), where a thread-pool hop
   * per open, stat, read and close only costs CPU. Otherwise (a reload opens it while the daemon serves) on the pool.
   */
  atStart?: boolean;
}

export class JsonTable<Row, Extra = undefined> {
  private readonly rows = new Map<string, Row>();
  /** The owner's other fields; changed in place or replaced, written by the next flush. */
  extra: Extra;
  private writing: Promise<void> = Promise.resolve();
  /** A write queued behind the one running and not started yet: later flushes join it. */
  private queued: Promise<void> | null = null;
  private writes = 0;
  /** What the file holds as last written or read (its seal's state); null: unknown (a table laid over damage). */
  private sealed: SealState | null = null;

  private constructor(
    readonly path: string,
    private readonly format: JsonTableFormat<Row, Extra>,
    private readonly options: JsonTableOptions,
  ) {
    this.extra = format.empty();
  }

  /** Reads the table at `path` (absent: empty); a damaged file throws the owner's code (see above). */
  static async open<Row, Extra>(
    path: string,
    format: JsonTableFormat<Row, Extra>,
    { atStart, ...options }: JsonTableOpen = {},
  ): Promise<JsonTable<Row, Extra>> {
    if (atStart) return JsonTable.openSync(path, format, options);
    let text: Buffer | null;
    try {
      text = await poolCalls.readFile(path);
    } catch (err) {
      text = absentOr(err, path, format);
    }
    let states: SealState[] | null;
    try {
      states = await readSeal(sealPath(path));
    } catch (err) {
      throw damage(path, format, (err as Error).message, { bytes: text });
    }
    return new JsonTable(path, format, options).load(text, states);
  }

  /**
   * An empty table at `path`, whatever is there: its first flush replaces it. Only for an owner whose damage policy
   * runs on after a refused open (the nonce files: nonce-file.ts refuses every call the lost file may have held), once
   * `open` has counted the damage and kept the file aside.
   */
  static over<Row, Extra>(
    path: string,
    format: JsonTableFormat<Row, Extra>,
    options: JsonTableOptions = {},
  ): JsonTable<Row, Extra> {
    return new JsonTable(path, format, options);
  }

  /** `open` for an owner whose open is synchronous (the trial method's, at plugin construction). */
  static openSync<Row, Extra>(
    path: string,
    format: JsonTableFormat<Row, Extra>,
    options: JsonTableOptions = {},
  ): JsonTable<Row, Extra> {
    let text: Buffer | null;
    try {
      text = readFileSync(path);
    } catch (err) {
      text = absentOr(err, path, format);
    }
    let states: SealState[] | null;
    try {
      states = readSealSync(sealPath(path));
    } catch (err) {
      throw damage(path, format, (err as Error).message, { bytes: text });
    }
    return new JsonTable(path, format, options).load(text, states);
  }

  /** The rows of the file's bytes as read (null: no file), checked against its seal's states first. */
  private load(bytes: Buffer | null, states: SealState[] | null): this {
    const { path, format } = this;
    // The file's CRC once, for its seal, the check against it and a damaged copy's name alike.
    const found = bytes === null ? NOTHING : sealOf(bytes);
    if (states) sealed(path, format, { bytes, crc: found.crc }, states);
    this.sealed = found;
    if (bytes === null) return this;
    const text = bytes;
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw damage(path, format, `not valid JSON (${(err as Error).message})`, { bytes: text, crc: found.crc });
    }
    try {
      const { rows, extra } = format.split(json);
      rows.forEach((value, i) => {
        const row = format.row(value, i);
        this.rows.set(format.key(row), row);
      });
      this.extra = extra;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw damage(path, format, why, { bytes: text, crc: found.crc });
    }
    return this;
  }

  get(key: string): Row | undefined {
    return this.rows.get(key);
  }

  has(key: string): boolean {
    return this.rows.has(key);
  }

  /** Every row, in the order first set (a row deleted and set again goes last). */
  list(): Row[] {
    return [...this.rows.values()];
  }

  keys(): IterableIterator<string> {
    return this.rows.keys();
  }

  get size(): number {
    return this.rows.size;
  }

  /** Whole-file writes done since open (flash wear: the owner's figures, the tests). */
  get writeCount(): number {
    return this.writes;
  }

  /** Sets a row in memory only; the next flush writes it. */
  set(row: Row): void {
    this.rows.set(this.format.key(row), row);
  }

  /** Replaces every row and the extra, in memory only (an owner that keeps its rows elsewhere and saves them whole). */
  replace(rows: readonly Row[], extra: Extra): void {
    this.rows.clear();
    for (const row of rows) this.set(row);
    this.extra = extra;
  }

  /** Drops a row from memory only; whether it was there. */
  drop(key: string): boolean {
    return this.rows.delete(key);
  }

  /** Sets a row and resolves once the file holding it is durable. */
  async put(row: Row): Promise<void> {
    this.set(row);
    await this.flush();
  }

  /** Drops a row and resolves once the file without it is durable (nothing there: nothing written). */
  async delete(key: string): Promise<boolean> {
    if (!this.rows.delete(key)) return false;
    await this.flush();
    return true;
  }

  /**
   * Writes the table as it is when the write starts; resolves once it is on flash. A failed write leaves the file as
   * it was (and memory as the owner left it: an owner that must not keep a change it could not write undoes it).
   */
  flush(): Promise<void> {
    if (this.queued) return this.queued;
    const run = this.writing
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        const value = this.format.join([...this.rows.values()], this.extra);
        const text = Buffer.from(JSON.stringify(value) + (this.format.newline ? '\n' : ''), 'utf8');
        this.writes++;
        return this.write(text);
      });
    this.writing = run;
    const code = this.format.writeCode;
    const result =
      code === undefined
        ? run
        : run.catch((err: unknown) => {
            throw new SluiceError(code, `cannot write ${this.path}: ${(err as Error).message}`, {
              cause: err,
              details: { path: this.path },
            });
          });
    this.queued = result;
    return result;
  }

  /**
   * The old and the new state sealed first, then the file renamed in: a crash on either side of the rename leaves a
   * file its seal accepts. Nothing is written when the seal cannot be.
   */
  private async write(text: Buffer): Promise<void> {
    const next = sealOf(text);
    const fs = this.options.fs;
    const states = this.sealed && !sameState(this.sealed, next) ? [this.sealed, next] : [next];
    await writeSeal(sealPath(this.path), states, fs);
    await writeFileAtomic(this.path, text, { mode: this.format.mode ?? 0o600, ...(fs && { fs }) });
    this.sealed = next;
  }
}

/** The state of a file never written: a crash before its first rename leaves none, which its seal accepts. */
const NOTHING: SealState = { bytes: 0, crc: 0 };

const sameState = (a: SealState, b: SealState): boolean => a.bytes === b.bytes && a.crc === b.crc;

/** A file's bytes as read (null: no file), and their CRC-32 when it was made already. */
interface FileRead {
  bytes: Buffer | null;
  crc?: number;
}

/**
 * Checks what is at `path` against its seal: damage when it is missing, emptied, cut, flipped or an older copy of what
 * the seal says was last written.
 */
function sealed(path: string, format: FormatNames, file: FileRead, states: readonly SealState[]): void {
  const { bytes } = file;
  if (bytes === null) {
    if (states.some((s) => s.bytes === 0)) return;
    throw damage(path, format, `it is missing, while its seal says it held ${states[0]!.bytes} bytes`, file);
  }
  // matchSeal's `whole`, on the CRC already made.
  const crc = file.crc ?? sealOf(bytes).crc;
  if (states.some((s) => s.bytes === bytes.length && s.crc === crc)) return;
  const held = states.map((s) => s.bytes).join(' or ');
  throw damage(
    path,
    format,
    bytes.length === 0
      ? `it is empty, while its seal says it held ${held} bytes`
      : `it is not what it was last written as (${bytes.length} bytes where its seal says ${held}, or another CRC: ` +
          'cut, a flipped bit, or an older copy)',
    { bytes, crc },
  );
}

type FormatNames = Pick<JsonTableFormat<unknown, unknown>, 'code' | 'what' | 'kind'>;

/** A read error: absent (null) for a file never written, damage for anything else. */
function absentOr(err: unknown, path: string, format: FormatNames): null {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return null;
  throw damage(path, format, `cannot read it (${(err as Error).message})`, { bytes: null });
}

/** Counts the damage, keeps a copy of the bytes beside the file, and says so in the owner's error. */
function damage(path: string, format: FormatNames, reason: string, file: FileRead): SluiceError {
  return fileDamage(format.kind ?? 'money-table', path, format.code, format.what, reason, file.bytes, file.crc);
}
