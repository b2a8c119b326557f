/**
 * The local vouchers' book: `<state_dir>/vouchers.json` (batches, and each live code's keyed hash with its use) and
 * `<state_dir>/voucher.key` (the hash key, codes.ts says why apart). Both 0600, written atomically (temp, fsync,
 * rename, fsync of the directory), so a kill -9 leaves the old book or the new one. The book is a storage/json-table
 * (a row per code, the batches beside them) with its one damage policy.
 *
 * Damage fails closed: a book or key that is there but cannot be read back is ERR_VOUCHER_STORE at open (the method is
 * left out, method-state.ts; the damaged book is counted in `stats` → damaged_tables and a copy kept aside), never an
 * empty book, which would forget which codes were used. A missing book is a router that never printed one.
 *
 * A code's use is written before the session is granted (redeem), and `confirmed` once the journal holds the session
 * (the sessions' `started`/`topup`): a use the journal never got (a kill -9 between the two writes) is given back at
 * the next start (LocalVoucherMethod.reconcile), so a crash cannot eat a ticket nor let it sell twice.
 *
 * The codes of a batch revoked or expired RETAIN_MS ago are dropped at the next write (the batch keeps its figures):
 * until then a customer is told "withdrawn" or "expired"; after, the code is unknown, refused all the same. The book
 * holds MAX_CODES at most, so the file rewritten at every sale stays small.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Metric } from '../../config/index.ts';
import {
  fileDamage,
  JsonTable,
  readKeyFile,
  sealKey,
  writeKeyFile,
  type JsonTableFormat,
} from '../../storage/index.ts';
import { codeHash, newBatchId, newCode, normalizeCode } from './codes.ts';

export const VOUCHERS_FILE = 'vouchers.json';
export const VOUCHER_KEY_FILE = 'voucher.key';
/** Codes in one batch: a sheet is printed from the browser; a bigger print run is several batches. */
export const MAX_BATCH_CODES = 1000;
/** Codes in the book: bounds the file rewritten at every sale (~60 bytes a code). */
export const MAX_CODES = 10_000;
/** How long a revoked or expired batch's codes are still known (and refused by name). */
export const RETAIN_MS = 7 * 86_400_000;
const NOTE_MAX = 64;

/** What a batch sells, fixed when it is printed (a later price or step change does not change a printed ticket). */
export interface BatchTerms {
  plan: string;
  metric: Metric;
  steps: bigint;
  /** steps × the plan's step size, bytes or seconds. */
  allotment: bigint;
  /** The plan's time_limit (seconds) then, if any. */
  timeLimit?: bigint;
  /** The plan's devices then, if more than one. */
  devices?: number;
}

/**
 * What a ticket of the batch is sold for at the counter (cash, as a rule): its redeemed code's payment carries it, so
 * revenue counts it like any other payment. `amount` in the currency's smallest unit (cents for EUR, decimals 2).
 */
export interface BatchPrice {
  amount: bigint;
  /** A currency code as the counter names it ("EUR"): the payment's asset. */
  currency: string;
  decimals: number;
}

export const CURRENCY = /^[A-Za-z][A-Za-z0-9]{0,11}$/;
export const MAX_DECIMALS = 18;

export interface Batch extends BatchTerms {
  id: string;
  /** Absent: the batch was printed without a price (its payments are 0). */
  price?: BatchPrice;
  count: number;
  /** ms since the epoch. */
  created: number;
  /** The last moment a code sells (ms), or null: never expires. */
  expires: number | null;
  note: string;
  revoked: number | null;
  /** Codes of it sold (kept after its codes are dropped). */
  used: number;
}

interface CodeEntry {
  /** The code's keyed hash (the row's key). */
  h: string;
  b: string;
  /** Used at (ms); absent: unused. */
  u?: number;
  /** The device it sold to. */
  m?: string;
  /** The journal holds the session it sold. */
  c?: true;
}

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

/** A code found in the book: its hash, its batch, whether it was used. */
export interface FoundCode {
  hash: string;
  batch: Batch;
  used: boolean;
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isDigits = (v: unknown): v is string => typeof v === 'string' && /^[0-9]{1,30}$/.test(v);

/** A batch's price as the book writes it; undefined: none (books written before prices, or a batch without one). */
function parsePrice(v: unknown): BatchPrice | null | undefined {
  if (v === undefined) return undefined;
  const p = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (!isDigits(p.amount) || typeof p.currency !== 'string' || !CURRENCY.test(p.currency)) return null;
  if (!isInt(p.decimals) || p.decimals > MAX_DECIMALS) return null;
  return { amount: BigInt(p.amount), currency: p.currency, decimals: p.decimals };
}

function parseBatch(v: unknown): Batch | null {
  if (typeof v !== 'object' || v === null) return null;
  const b = v as Record<string, unknown>;
  if (typeof b.id !== 'string' || typeof b.plan !== 'string' || (b.metric !== 'bytes' && b.metric !== 'seconds'))
    return null;
  if (!isDigits(b.steps) || !isDigits(b.allotment) || !isInt(b.count) || !isInt(b.created) || !isInt(b.used))
    return null;
  if (
    (b.expires !== null && !isInt(b.expires)) ||
    (b.revoked !== null && !isInt(b.revoked)) ||
    typeof b.note !== 'string'
  )
    return null;
  if ((b.time_limit !== undefined && !isDigits(b.time_limit)) || (b.devices !== undefined && !isInt(b.devices)))
    return null;
  const price = parsePrice(b.price);
  if (price === null) return null;
  return {
    id: b.id,
    plan: b.plan,
    metric: b.metric,
    steps: BigInt(b.steps),
    allotment: BigInt(b.allotment),
    count: b.count,
    created: b.created,
    expires: b.expires as number | null,
    note: b.note,
    revoked: b.revoked as number | null,
    used: b.used,
    ...(b.time_limit !== undefined && { timeLimit: BigInt(b.time_limit as string) }),
    ...(b.devices !== undefined && { devices: b.devices as number }),
    ...(price && { price }),
  };
}

function parseCode(hash: string, v: unknown, batches: ReadonlySet<string>): CodeEntry {
  const e = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (
    !/^[0-9a-f]{32}$/.test(hash) ||
    typeof e.b !== 'string' ||
    !batches.has(e.b) ||
    (e.u !== undefined && !isInt(e.u)) ||
    (e.m !== undefined && typeof e.m !== 'string') ||
    (e.c !== undefined && e.c !== true)
  ) {
    throw new TypeError(`a malformed code entry ${hash.slice(0, 40)}`);
  }
  return {
    h: hash,
    b: e.b,
    ...(e.u !== undefined && { u: e.u as number }),
    ...(e.m !== undefined && { m: e.m as string }),
    ...(e.c === true && { c: true as const }),
  };
}

/** `{version: 1, batches: [...], codes: {"<hash>": {b, u?, m?, c?}}}`: a row per code, the batches beside them. */
const FORMAT: JsonTableFormat<CodeEntry, Batch[]> = {
  code: 'ERR_VOUCHER_STORE',
  writeCode: 'ERR_VOUCHER_STORE',
  what: 'a voucher book (version 1: batches, codes)',
  key: (e) => e.h,
  split(json) {
    const book = json as { version?: unknown; batches?: unknown; codes?: unknown };
    if (
      typeof json !== 'object' ||
      json === null ||
      book.version !== 1 ||
      !Array.isArray(book.batches) ||
      typeof book.codes !== 'object' ||
      book.codes === null ||
      Array.isArray(book.codes)
    ) {
      throw new TypeError('not a voucher book (version 1: batches, codes)');
    }
    const batches = book.batches.map((raw) => {
      const batch = parseBatch(raw);
      if (!batch) throw new TypeError(`a malformed batch: ${JSON.stringify(raw).slice(0, 80)}`);
      return batch;
    });
    const ids = new Set(batches.map((x) => x.id));
    if (ids.size !== batches.length) throw new TypeError('a batch id twice');
    // Each code's batch is checked here, where both are known: a code of no batch is damage, not a code to drop.
    return {
      rows: Object.entries(book.codes as Record<string, unknown>).map(([h, e]) => parseCode(h, e, ids)),
      extra: batches,
    };
  },
  row: (value) => value as CodeEntry,
  join: (codes, batches) => ({
    version: 1,
    batches: batches.map((b) => ({
      id: b.id,
      plan: b.plan,
      metric: b.metric,
      steps: b.steps.toString(),
      allotment: b.allotment.toString(),
      ...(b.timeLimit !== undefined && { time_limit: b.timeLimit.toString() }),
      ...(b.devices !== undefined && { devices: b.devices }),
      ...(b.price && {
        price: { amount: b.price.amount.toString(), currency: b.price.currency, decimals: b.price.decimals },
      }),
      count: b.count,
      created: b.created,
      expires: b.expires,
      note: b.note,
      revoked: b.revoked,
      used: b.used,
    })),
    codes: Object.fromEntries(codes.map(({ h, ...e }) => [h, e])),
  }),
  empty: () => [],
};

export class VoucherStore {
  private readonly batches = new Map<string, Batch>();

  private constructor(
    private readonly dir: string,
    private key: Buffer | null,
    private readonly codes: JsonTable<CodeEntry, Batch[]>,
  ) {
    for (const b of codes.extra) this.batches.set(b.id, b);
  }

  get path(): string {
    return join(this.dir, VOUCHERS_FILE);
  }

  /**
   * Reads the book and its key; ERR_VOUCHER_STORE when either is there but damaged, or the book has codes and no key.
   */
  static open(stateDir: string): VoucherStore {
    const keyPath = join(stateDir, VOUCHER_KEY_FILE);
    // Sealed beside (storage/key-file.ts): a key deleted or changed after it was made is refused, never made anew.
    const key = readKeyFile(keyPath, 'ERR_VOUCHER_STORE', (text) => /^[0-9a-f]{64}\n?$/.test(text));
    const keyText = key?.text ?? null;
    if (key !== null && !key.sealed) void sealKey(keyPath, key.text).catch(() => undefined);
    const codes = JsonTable.openSync(join(stateDir, VOUCHERS_FILE), FORMAT);
    // Codes hashed under a key that is gone cannot be found again: refusing them all is the damage to report.
    if (codes.size > 0 && keyText === null)
      throw fileDamage(
        'secret-key',
        keyPath,
        'ERR_VOUCHER_STORE',
        'a key',
        `missing while ${VOUCHERS_FILE} holds codes`,
        null,
      );
    return new VoucherStore(stateDir, keyText === null ? null : Buffer.from(keyText.trim(), 'hex'), codes);
  }

  /** The book exists (a batch was ever printed): the LAN endpoint serves the voucher form (plugin lanUse). */
  static exists(stateDir: string): boolean {
    return existsSync(join(stateDir, VOUCHERS_FILE));
  }

  /** A code typed by a customer, if it is one of this book's (sold, revoked and expired ones included). */
  find(typed: string): FoundCode | null {
    const raw = normalizeCode(typed);
    if (raw === null || this.key === null) return null;
    const hash = codeHash(this.key, raw);
    const entry = this.codes.get(hash);
    const batch = entry && this.batches.get(entry.b);
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
    if (this.codes.size + count > MAX_CODES) {
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
    while (this.batches.has(id)) id = newBatchId();
    const batch: Batch = {
      ...terms,
      id,
      count,
      created: now,
      expires,
      note,
      revoked: null,
      used: 0,
      ...(price && { price }),
    };
    const codes: string[] = [];
    const hashes: string[] = [];
    while (codes.length < count) {
      const code = newCode();
      const hash = codeHash(this.key, normalizeCode(code)!);
      if (this.codes.has(hash) || hashes.includes(hash)) continue;
      codes.push(code);
      hashes.push(hash);
    }
    this.batches.set(id, batch);
    this.codes.extra.push(batch);
    for (const h of hashes) this.codes.set({ h, b: id });
    try {
      await this.save(now);
    } catch (err) {
      this.batches.delete(id);
      this.codes.extra.splice(this.codes.extra.indexOf(batch), 1);
      for (const h of hashes) this.codes.drop(h);
      throw new SluiceError('ERR_VOUCHER_STORE', `cannot write the batch: ${toSluiceError(err).message}`, {
        cause: err,
      });
    }
    return { batch, codes };
  }

  /**
   * Marks a code used, on flash before it returns (ERR_PAYMENT_REPLAYED: used already; ERR_VOUCHER_STORE: not written).
   */
  async redeem(hash: string, mac: string, now: number): Promise<void> {
    const entry = this.codes.get(hash);
    const batch = entry && this.batches.get(entry.b);
    if (!entry || !batch) throw new SluiceError('ERR_VOUCHER_REJECTED', 'this voucher code is not valid');
    if (entry.u !== undefined) throw new SluiceError('ERR_PAYMENT_REPLAYED', 'this voucher was already used');
    entry.u = now;
    entry.m = mac;
    batch.used++;
    try {
      await this.save(now);
    } catch (err) {
      delete entry.u;
      delete entry.m;
      batch.used--;
      throw new SluiceError('ERR_VOUCHER_STORE', `cannot record the voucher's use: ${toSluiceError(err).message}`, {
        cause: err,
      });
    }
  }

  /** Gives a use back (its session was never granted). */
  async release(hash: string, now: number): Promise<void> {
    const entry = this.codes.get(hash);
    const batch = entry && this.batches.get(entry.b);
    if (!entry || entry.u === undefined || entry.c) return;
    delete entry.u;
    delete entry.m;
    if (batch) batch.used--;
    await this.save(now);
  }

  /** The journal holds these uses' sessions. */
  async confirm(hashes: readonly string[], now: number): Promise<void> {
    let changed = false;
    for (const h of hashes) {
      const entry = this.codes.get(h);
      if (entry?.u !== undefined && !entry.c) {
        entry.c = true;
        changed = true;
      }
    }
    if (changed) await this.save(now);
  }

  /** Uses written whose session the journal was not yet seen to hold: each code's hash and batch. */
  unconfirmed(): Array<{ hash: string; batch: string }> {
    return this.codes
      .list()
      .filter((e) => e.u !== undefined && !e.c)
      .map((e) => ({ hash: e.h, batch: e.b }));
  }

  /** Revokes a batch: its unused codes sell no more. Returns how many were unused. */
  async revoke(id: string, now: number): Promise<number> {
    const batch = this.batches.get(id);
    if (!batch)
      throw new SluiceError('ERR_INVALID_ARGUMENT', `batch: no batch ${JSON.stringify(id.slice(0, 16))}`, {
        details: { argument: 'batch' },
      });
    if (batch.revoked !== null) return 0;
    batch.revoked = now;
    try {
      await this.save(now);
    } catch (err) {
      batch.revoked = null;
      throw new SluiceError('ERR_VOUCHER_STORE', `cannot write the revocation: ${toSluiceError(err).message}`, {
        cause: err,
      });
    }
    return batch.count - batch.used;
  }

  /** Every batch with its figures, newest first (never a code). */
  list(now: number): BatchView[] {
    return [...this.batches.values()].reverse().map((b) => {
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
    await this.writing;
  }

  /** Revoked or expired long enough ago that its codes need not be known. */
  private gone(b: Batch, now: number): boolean {
    const ended = b.revoked ?? (b.expires !== null && now > b.expires ? b.expires : null);
    return ended !== null && now - ended > RETAIN_MS;
  }

  private writing: Promise<unknown> = Promise.resolve();

  private save(now: number): Promise<void> {
    // A code of a batch gone is dropped (refused as unknown), unless its use still waits for its check.
    for (const e of this.codes.list()) {
      if (this.gone(this.batches.get(e.b)!, now) && (e.u === undefined || e.c)) this.codes.drop(e.h);
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const write = this.codes.flush();
    this.writing = write.catch(() => undefined);
    return write;
  }
}
