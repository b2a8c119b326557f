/**
 * The voucher book's state and its records, pure: batches, and each live code's keyed hash with its use. The book is
 * kept as a log of changes (store.ts, `vouchers.log`), one JSON record each:
 *   {t:'batch', batch, codes}   a batch printed, or a batch as it stands (a compaction): its codes' hashes, a code
 *                               used as {h, u, m, c?}
 *   {t:'sold', h, u, m}         a code's use (ms, the device)
 *   {t:'released', h}           a use given back (its session was never granted)
 *   {t:'confirmed', h: [...]}   the journal holds these uses' sessions
 *   {t:'revoked', id, at}       a batch revoked
 * A record that does not apply where it stands (a code sold twice, a code of no batch) is damage: the book that holds
 * it is refused, never read without it. Books written before the log (`vouchers.json`, a whole-file JSON table) are
 * read by LEGACY_FORMAT and written as a log at their next change.
 */
import type { Metric } from '../../config/index.ts';
import type { JsonTableFormat } from '../../storage/index.ts';

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

export interface CodeEntry {
  /** The code's keyed hash. */
  h: string;
  b: string;
  /** Used at (ms); absent: unused. */
  u?: number;
  /** The device it sold to. */
  m?: string;
  /** The journal holds the session it sold. */
  c?: true;
}

/** The book in memory: what its records, applied in order, come to. */
export interface BookState {
  batches: Map<string, Batch>;
  codes: Map<string, CodeEntry>;
}

export type BookRecord =
  | { t: 'batch'; batch: Batch; codes: CodeEntry[] }
  | { t: 'sold'; h: string; u: number; m: string }
  | { t: 'released'; h: string }
  | { t: 'confirmed'; h: string[] }
  | { t: 'revoked'; id: string; at: number };

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isDigits = (v: unknown): v is string => typeof v === 'string' && /^[0-9]{1,30}$/.test(v);
const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);

/** A batch's price as the book writes it; undefined: none (books written before prices, or a batch without one). */
function parsePrice(v: unknown): BatchPrice | null | undefined {
  if (v === undefined) return undefined;
  const p = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (!isDigits(p.amount) || typeof p.currency !== 'string' || !CURRENCY.test(p.currency)) return null;
  if (!isInt(p.decimals) || p.decimals > MAX_DECIMALS) return null;
  return { amount: BigInt(p.amount), currency: p.currency, decimals: p.decimals };
}

function parseBatch(v: unknown): Batch {
  const fail = (): never => {
    throw new TypeError(`a malformed batch: ${JSON.stringify(v)?.slice(0, 80)}`);
  };
  if (typeof v !== 'object' || v === null) return fail();
  const b = v as Record<string, unknown>;
  if (typeof b.id !== 'string' || typeof b.plan !== 'string' || (b.metric !== 'bytes' && b.metric !== 'seconds'))
    return fail();
  if (!isDigits(b.steps) || !isDigits(b.allotment) || !isInt(b.count) || !isInt(b.created) || !isInt(b.used))
    return fail();
  if (
    (b.expires !== null && !isInt(b.expires)) ||
    (b.revoked !== null && !isInt(b.revoked)) ||
    typeof b.note !== 'string'
  )
    return fail();
  if ((b.time_limit !== undefined && !isDigits(b.time_limit)) || (b.devices !== undefined && !isInt(b.devices)))
    return fail();
  const price = parsePrice(b.price);
  if (price === null) return fail();
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

/** A batch as the book writes it (figures as decimal strings). */
function batchJson(b: Batch): Record<string, unknown> {
  return {
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
  };
}

/** A code's entry as written (the row of LEGACY_FORMAT, a code of a `batch` record); throws why it is not one. */
function parseCode(hash: unknown, v: unknown, batch: string): CodeEntry {
  const e = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (
    !isHash(hash) ||
    (e.u !== undefined && !isInt(e.u)) ||
    (e.m !== undefined && typeof e.m !== 'string') ||
    (e.c !== undefined && e.c !== true)
  ) {
    throw new TypeError(`a malformed code entry ${String(hash).slice(0, 40)}`);
  }
  return {
    h: hash,
    b: batch,
    ...(e.u !== undefined && { u: e.u as number }),
    ...(e.m !== undefined && { m: e.m as string }),
    ...(e.c === true && { c: true as const }),
  };
}

/** One record's bytes. */
export function encodeRecord(r: BookRecord): Buffer {
  const json =
    r.t === 'batch'
      ? {
          t: 'batch',
          batch: batchJson(r.batch),
          codes: r.codes.map(({ h, u, m, c }) =>
            u === undefined ? h : { h, u, ...(m !== undefined && { m }), ...(c && { c }) },
          ),
        }
      : r;
  return Buffer.from(JSON.stringify(json), 'utf8');
}

/** A record read back; throws why it is not one. */
export function decodeRecord(bytes: Uint8Array): BookRecord {
  const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  switch (v?.t) {
    case 'batch': {
      const batch = parseBatch(v.batch);
      if (!Array.isArray(v.codes)) throw new TypeError('a batch record without its codes');
      const codes = v.codes.map((c: unknown) =>
        typeof c === 'string' ? parseCode(c, {}, batch.id) : parseCode((c as { h?: unknown })?.h, c, batch.id),
      );
      return { t: 'batch', batch, codes };
    }
    case 'sold':
      if (isHash(v.h) && isInt(v.u) && typeof v.m === 'string') return { t: 'sold', h: v.h, u: v.u, m: v.m };
      break;
    case 'released':
      if (isHash(v.h)) return { t: 'released', h: v.h };
      break;
    case 'confirmed':
      if (Array.isArray(v.h) && v.h.every(isHash)) return { t: 'confirmed', h: v.h };
      break;
    case 'revoked':
      if (typeof v.id === 'string' && isInt(v.at)) return { t: 'revoked', id: v.id, at: v.at };
      break;
  }
  throw new TypeError(`not a voucher book record: ${JSON.stringify(v)?.slice(0, 80)}`);
}

/** Why `r` does not apply to `book` as it stands, or null. */
export function unappliable(book: BookState, r: BookRecord): string | null {
  const used = (h: string): CodeEntry | undefined => {
    const e = book.codes.get(h);
    return e?.u !== undefined ? e : undefined;
  };
  switch (r.t) {
    case 'batch':
      if (book.batches.has(r.batch.id)) return `a batch ${r.batch.id} twice`;
      if (new Set(r.codes.map((c) => c.h)).size !== r.codes.length || r.codes.some((c) => book.codes.has(c.h)))
        return 'a code twice';
      return null;
    case 'sold':
      return !book.codes.has(r.h) ? 'a use of no code' : used(r.h) ? 'a code sold twice' : null;
    case 'released':
      return used(r.h) === undefined || used(r.h)!.c ? 'a release of no pending use' : null;
    case 'confirmed':
      return r.h.some((h) => used(h) === undefined || used(h)!.c) ? 'a confirmation of no pending use' : null;
    case 'revoked':
      return book.batches.get(r.id)?.revoked !== null ? 'a revocation of no live batch' : null;
  }
}

/** Applies `r` (unappliable said null). */
export function applyRecord(book: BookState, r: BookRecord): void {
  switch (r.t) {
    case 'batch':
      book.batches.set(r.batch.id, { ...r.batch });
      for (const c of r.codes) book.codes.set(c.h, { ...c });
      return;
    case 'sold': {
      const e = book.codes.get(r.h)!;
      e.u = r.u;
      e.m = r.m;
      const batch = book.batches.get(e.b);
      if (batch) batch.used++;
      return;
    }
    case 'released': {
      const e = book.codes.get(r.h)!;
      delete e.u;
      delete e.m;
      const batch = book.batches.get(e.b);
      if (batch) batch.used--;
      return;
    }
    case 'confirmed':
      for (const h of r.h) book.codes.get(h)!.c = true;
      return;
    case 'revoked':
      book.batches.get(r.id)!.revoked = r.at;
      return;
  }
}

/** The book in fewest records: a `batch` record per batch, with the codes it still holds. */
export function bookRecords(book: BookState, keep: (e: CodeEntry) => boolean = () => true): BookRecord[] {
  const codes = new Map<string, CodeEntry[]>();
  for (const b of book.batches.keys()) codes.set(b, []);
  for (const e of book.codes.values()) if (keep(e)) codes.get(e.b)!.push(e);
  return [...book.batches.values()].map((batch) => ({ t: 'batch', batch, codes: codes.get(batch.id)! }));
}

/**
 * `vouchers.json` as versions before the log wrote it: `{version: 1, batches: [...], codes: {"<hash>": {b, u?, m?,
 * c?}}}`, a storage/json-table (sealed beside, `money-table` damage policy).
 */
export const LEGACY_FORMAT: JsonTableFormat<CodeEntry, Batch[]> = {
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
    const batches = book.batches.map(parseBatch);
    const ids = new Set(batches.map((x) => x.id));
    if (ids.size !== batches.length) throw new TypeError('a batch id twice');
    // Each code's batch is checked here, where both are known: a code of no batch is damage, not a code to drop.
    return {
      rows: Object.entries(book.codes as Record<string, unknown>).map(([h, e]) => {
        const b = (e as { b?: unknown } | null)?.b;
        if (typeof b !== 'string' || !ids.has(b)) throw new TypeError(`a malformed code entry ${h.slice(0, 40)}`);
        return parseCode(h, e, b);
      }),
      extra: batches,
    };
  },
  row: (value) => value as CodeEntry,
  join: (codes, batches) => ({
    version: 1,
    batches: batches.map(batchJson),
    codes: Object.fromEntries(codes.map(({ h, ...e }) => [h, e])),
  }),
  empty: () => [],
};
