/**
 * The local vouchers' book: `<state_dir>/vouchers.log` (batches, and each live code's keyed hash with its use: the
 * records of book.ts) and `<state_dir>/voucher.key` (the hash key, codes.ts says why apart). Both 0600. The book is a
 * storage/sealed-log: a sale appends one record, fsynced and sealed (`vouchers.log.seal`) before it returns, so the
 * flash written per sale does not grow with the book; the whole book is rewritten atomically only now and then (a
 * compaction: when the log has grown past twice the book, and when a gone batch's codes are dropped).
 *
 * Damage fails closed (the `money-log` verdict, storage/verdicts.ts): a book or key that is there but cannot be read
 * back is ERR_VOUCHER_STORE at open (the method is left out, method-state.ts; the damage is counted in `stats` →
 * damaged_tables and a copy kept aside), never an empty book, which would forget which codes were used. A missing
 * book is a router that never printed one. A book written before the log (`vouchers.json`) is read as it is and
 * written as a log at its first change.
 *
 * A code's use is written before the session is granted (redeem), and `confirmed` once the journal holds the session
 * (the sessions' `started`/`topup`): a use the journal never got (a kill -9 between the two writes) is given back at
 * the next start (LocalVoucherMethod.reconcile), so a crash cannot eat a ticket nor let it sell twice. Each change is
 * checked against the book as it stands when its turn to be written comes, and applied once it is on flash.
 *
 * The codes of a batch revoked or expired RETAIN_MS ago are dropped at the next write (the batch keeps its figures):
 * until then a customer is told "withdrawn" or "expired"; after, the code is unknown, refused all the same. The book
 * holds MAX_CODES at most.
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Metric } from '../../config/index.ts';
import { fileDamage, JsonTable, readKeyFile, SealedLog, sealKey, sealPath, writeKeyFile } from '../../storage/index.ts';
import {
  applyRecord,
  bookRecords,
  decodeRecord,
  encodeRecord,
  LEGACY_FORMAT,
  unappliable,
  type Batch,
  type BatchPrice,
  type BatchTerms,
  type BookRecord,
  type BookState,
  type CodeEntry,
} from './book.ts';
import { codeHash, newBatchId, newCode, normalizeCode } from './codes.ts';

export const VOUCHERS_FILE = 'vouchers.log';
/** The book as versions before the log kept it (a whole-file JSON table): read, then replaced at the first change. */
export const LEGACY_VOUCHERS_FILE = 'vouchers.json';
export const VOUCHER_KEY_FILE = 'voucher.key';
/** Codes in one batch: a sheet is printed from the browser; a bigger print run is several batches. */
export const MAX_BATCH_CODES = 1000;
/** Codes in the book: bounds the book's RAM and its compaction (~50 bytes a code). */
export const MAX_CODES = 10_000;
/** How long a revoked or expired batch's codes are still known (and refused by name). */
export const RETAIN_MS = 7 * 86_400_000;
/** The log is compacted once it passes twice the book it holds and this much. */
const COMPACT_SLACK = 64 * 1024;
const NOTE_MAX = 64;

export interface BatchView {
  id: string;
  price: BatchPrice | null;
  plan: string;
  steps: bigint;
  metric: Metric;
  allotment: bigint;
  count: number;
  used: number;
  unused: number;
  expired: number;
  revoked: boolean;
  created: number;
  expires: number | null;
  note: string;
}
export interface FoundCode {
  hash: string;
  batch: Batch;
  used: boolean;
}

export class VoucherStore {
  private readonly book: BookState = { batches: new Map(), codes: new Map() };
  /** Changes queued: each checked against the book as the ones before it left it. */
  private chain: Promise<unknown> = Promise.resolve();
  /** The log's length right after its last compaction (at open: its batch records'), which its growth is told by. */
  private base = 0;
  /** The book is still the legacy vouchers.json: its first change writes the log whole first. */
  private legacy: boolean;
  /** Bytes the log may pass twice the book by before it is compacted (tests make it small). */
  private readonly compactSlack: number;

  private constructor(
    private readonly dir: string,
    private key: Buffer | null,
    private readonly log: SealedLog,
    how: { legacy: boolean; compactSlack: number },
  ) {
    this.legacy = how.legacy;
    this.compactSlack = how.compactSlack;
  }

  get path(): string {
    return join(this.dir, VOUCHERS_FILE);
  }

  /**
   * Reads the book and its key; ERR_VOUCHER_STORE when either is there but damaged, or the book has codes and no key.
   */
  static open(stateDir: string, options: { compactSlack?: number } = {}): VoucherStore {
    const keyPath = join(stateDir, VOUCHER_KEY_FILE);
    // Sealed beside (storage/key-file.ts): a key deleted or changed after it was made is refused, never made anew.
    const key = readKeyFile(keyPath, 'ERR_VOUCHER_STORE', (text) => /^[0-9a-f]{64}\n?$/.test(text));
    const keyText = key?.text ?? null;
    if (key !== null && !key.sealed) void sealKey(keyPath, key.text).catch(() => undefined);
    const path = join(stateDir, VOUCHERS_FILE);
    const { log, records } = SealedLog.openSync(path, {
      kind: 'money-log',
      code: 'ERR_VOUCHER_STORE',
      what: 'a voucher book (a log of batches and uses)',
    });
    const legacyPath = join(stateDir, LEGACY_VOUCHERS_FILE);
    const legacy = records === null && existsSync(legacyPath);
    const store = new VoucherStore(stateDir, keyText === null ? null : Buffer.from(keyText.trim(), 'hex'), log, {
      legacy,
      compactSlack: options.compactSlack ?? COMPACT_SLACK,
    });
    if (legacy) {
      const table = JsonTable.openSync(legacyPath, LEGACY_FORMAT);
      for (const b of table.extra) store.book.batches.set(b.id, b);
      for (const e of table.list()) store.book.codes.set(e.h, e);
    } else {
      if (records !== null) VoucherStore.removeLegacy(stateDir);
      for (const [i, bytes] of (records ?? []).entries()) {
        let r: BookRecord;
        try {
          r = decodeRecord(bytes);
          const why = unappliable(store.book, r);
          if (why !== null) throw new TypeError(why);
        } catch (err) {
          throw fileDamage(
            'money-log',
            path,
            'ERR_VOUCHER_STORE',
            'a voucher book',
            `record ${i + 1}: ${(err as Error).message}`,
            null,
          );
        }
        applyRecord(store.book, r);
        if (r.t === 'batch') store.base += bytes.length;
      }
    }
    // Codes hashed under a key that is gone cannot be found again: refusing them all is the damage to report.
    if (store.book.codes.size > 0 && keyText === null)
      throw fileDamage(
        'secret-key',
        keyPath,
        'ERR_VOUCHER_STORE',
        'a key',
        `missing while ${VOUCHERS_FILE} holds codes`,
        null,
      );
    return store;
  }

  /** The book exists (a batch was ever printed): the LAN endpoint serves the voucher form (plugin lanUse). */
  static exists(stateDir: string): boolean {
    return existsSync(join(stateDir, VOUCHERS_FILE)) || existsSync(join(stateDir, LEGACY_VOUCHERS_FILE));
  }

  /** The legacy book and its seal, once the log holds what they held. */
  private static removeLegacy(stateDir: string): void {
    const legacyPath = join(stateDir, LEGACY_VOUCHERS_FILE);
    for (const p of [legacyPath, sealPath(legacyPath)]) {
      try {
        unlinkSync(p);
      } catch {
        // Not there (the usual case), or left for the next start.
      }
    }
  }

  /** A code typed by a customer, if it is one of this book's (sold, revoked and expired ones included). */
  find(typed: string): FoundCode | null {
    const raw = normalizeCode(typed);
    if (raw === null || this.key === null) return null;
    const hash = codeHash(this.key, raw);
    const entry = this.book.codes.get(hash);
    const batch = entry && this.book.batches.get(entry.b);
    return entry && batch ? { hash, batch, used: entry.u !== undefined } : null;
  }

  /**
   * Prints a batch of `count` codes of `terms`: its codes are returned once and only their hashes are kept. `expires`
   * and `now` in ms; `expires` null: never.
   */
  async create(
    terms: BatchTerms,
    printing: { count: number; expires: number | null; note: string; now: number; price?: BatchPrice },
  ): Promise<{ batch: Batch; codes: string[] }> {
    const { count, expires, note, now, price } = printing;
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_BATCH_CODES) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', `count: 1 to ${MAX_BATCH_CODES} codes a batch`, {
        details: { argument: 'count' },
      });
    }
    if (note.length > NOTE_MAX)
      throw new SluiceError('ERR_INVALID_ARGUMENT', `note: at most ${NOTE_MAX} characters`, {
        details: { argument: 'note' },
      });
    let codes: string[] = [];
    let made: Batch | undefined;
    await this.write(now, 'cannot write the batch', async () => {
      if (this.book.codes.size + count > MAX_CODES) {
        throw new SluiceError(
          'ERR_INVALID_ARGUMENT',
          `count: the book holds at most ${MAX_CODES} codes; a revoked or expired batch's leave ` +
            `it ${RETAIN_MS / 86_400_000} days on`,
          { details: { argument: 'count' } },
        );
      }
      if (this.key === null) {
        const key = randomBytes(32);
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        await writeKeyFile(join(this.dir, VOUCHER_KEY_FILE), `${key.toString('hex')}\n`);
        this.key = key;
      }
      let id = newBatchId();
      while (this.book.batches.has(id)) id = newBatchId();
      made = { ...terms, id, count, created: now, expires, note, revoked: null, used: 0, ...(price && { price }) };
      codes = [];
      const entries: CodeEntry[] = [];
      const hashes = new Set<string>();
      while (codes.length < count) {
        const code = newCode();
        const hash = codeHash(this.key, normalizeCode(code)!);
        if (this.book.codes.has(hash) || hashes.has(hash)) continue;
        codes.push(code);
        hashes.add(hash);
        entries.push({ h: hash, b: id });
      }
      return { t: 'batch', batch: made, codes: entries };
    });
    return { batch: this.book.batches.get(made!.id)!, codes };
  }

  /**
   * Marks a code used, on flash before it returns (ERR_PAYMENT_REPLAYED: used already; ERR_VOUCHER_STORE: not written).
   */
  async redeem(hash: string, mac: string, now: number): Promise<void> {
    const sold = (): BookRecord => {
      const entry = this.book.codes.get(hash);
      const batch = entry && this.book.batches.get(entry.b);
      if (!entry || !batch) throw new SluiceError('ERR_VOUCHER_REJECTED', 'this voucher code is not valid');
      if (entry.u !== undefined) throw new SluiceError('ERR_PAYMENT_REPLAYED', 'this voucher was already used');
      return { t: 'sold', h: hash, u: now, m: mac };
    };
    // Refused at once when it is plain already; checked again when its turn to be written comes.
    sold();
    await this.write(now, "cannot record the voucher's use", sold);
  }

  /** Gives a use back (its session was never granted). */
  async release(hash: string, now: number): Promise<void> {
    await this.write(now, 'cannot give the use back', () => {
      const entry = this.book.codes.get(hash);
      return !entry || entry.u === undefined || entry.c ? null : { t: 'released', h: hash };
    });
  }

  /** The journal holds these uses' sessions. */
  async confirm(hashes: readonly string[], now: number): Promise<void> {
    await this.write(now, 'cannot confirm the uses', () => {
      const pending = [...new Set(hashes)].filter((h) => {
        const entry = this.book.codes.get(h);
        return entry?.u !== undefined && !entry.c;
      });
      return pending.length > 0 ? { t: 'confirmed', h: pending } : null;
    });
  }

  /** Uses written whose session the journal was not yet seen to hold: each code's hash and batch. */
  unconfirmed(): Array<{ hash: string; batch: string }> {
    return [...this.book.codes.values()]
      .filter((e) => e.u !== undefined && !e.c)
      .map((e) => ({ hash: e.h, batch: e.b }));
  }

  /** Revokes a batch: its unused codes sell no more. Returns how many were unused. */
  async revoke(id: string, now: number): Promise<number> {
    let unused = 0;
    await this.write(now, 'cannot write the revocation', () => {
      const batch = this.book.batches.get(id);
      if (!batch)
        throw new SluiceError('ERR_INVALID_ARGUMENT', `batch: no batch ${JSON.stringify(id.slice(0, 16))}`, {
          details: { argument: 'batch' },
        });
      if (batch.revoked !== null) return null;
      unused = batch.count - batch.used;
      return { t: 'revoked', id, at: now };
    });
    return unused;
  }

  /** Every batch with its figures, newest first (never a code). */
  list(now: number): BatchView[] {
    return [...this.book.batches.values()].reverse().map((b) => {
      const left = b.count - b.used;
      const expired = b.revoked === null && b.expires !== null && now > b.expires;
      return {
        id: b.id,
        price: b.price ?? null,
        plan: b.plan,
        steps: b.steps,
        metric: b.metric,
        allotment: b.allotment,
        count: b.count,
        used: b.used,
        unused: b.revoked === null && !expired ? left : 0,
        expired: expired ? left : 0,
        revoked: b.revoked !== null,
        created: b.created,
        expires: b.expires,
        note: b.note,
      };
    });
  }

  /** Waits for the writes under way (stop). */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Waits for the writes under way, then lets go of the book's file. */
  async close(): Promise<void> {
    await this.chain;
    await this.log.close();
  }

  /** Revoked or expired long enough ago that its codes need not be known. */
  private gone(b: Batch, now: number): boolean {
    const ended = b.revoked ?? (b.expires !== null && now > b.expires ? b.expires : null);
    return ended !== null && now - ended > RETAIN_MS;
  }

  /**
   * Writes the change `next` makes (checked when its turn comes; null: nothing to write) and applies it once it is on
   * flash; then compacts the book when it is due. A refusal `next` throws is the caller's as it is; a failed write is
   * ERR_VOUCHER_STORE (`what` says what was not written), the book as it was.
   */
  private write(now: number, what: string, next: () => BookRecord | null | Promise<BookRecord | null>): Promise<void> {
    const run = this.chain.then(async () => {
      const r = await next();
      if (r === null) return;
      try {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        if (this.legacy) await this.compact(now);
        await this.log.append(encodeRecord(r));
      } catch (err) {
        throw new SluiceError('ERR_VOUCHER_STORE', `${what}: ${toSluiceError(err).message}`, { cause: err });
      }
      applyRecord(this.book, r);
      // The change is on flash: a compaction that fails must not tell its caller otherwise (tried again next time).
      if (this.log.bytes > 2 * this.base + this.compactSlack || this.droppable(now))
        await this.compact(now).catch(() => undefined);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** A code of a batch gone is dropped (refused as unknown), unless its use still waits for its check. */
  private keeps(now: number): (e: CodeEntry) => boolean {
    return (e) => !this.gone(this.book.batches.get(e.b)!, now) || (e.u !== undefined && !e.c);
  }

  /** Whether a gone batch still has codes to drop. */
  private droppable(now: number): boolean {
    if (![...this.book.batches.values()].some((b) => this.gone(b, now))) return false;
    const keep = this.keeps(now);
    for (const e of this.book.codes.values()) if (!keep(e)) return true;
    return false;
  }

  /** Rewrites the book whole, without the codes of batches gone; a legacy book is replaced by the log then. */
  private async compact(now: number): Promise<void> {
    const keep = this.keeps(now);
    const records = bookRecords(this.book, keep).map(encodeRecord);
    await this.log.rewrite(records);
    for (const e of [...this.book.codes.values()]) if (!keep(e)) this.book.codes.delete(e.h);
    this.base = this.log.bytes;
    if (this.legacy) {
      VoucherStore.removeLegacy(this.dir);
      this.legacy = false;
    }
  }
}
