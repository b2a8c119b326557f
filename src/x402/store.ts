/**
 * The x402 method's own durable state, one small JSON file in main.state_dir written by atomic rename:
 *  - the replay cache: every authorization (`from:nonce`) sluice sent to /settle, kept until its validBefore has
 *    passed (then the chain refuses it anyway, and so does the local window check), so it is bounded by the purchase
 *    rate × max_timeout_seconds, and capped at `maxEntries`;
 *  - the purchases between "sent to /settle" and "session granted": `settling` is written (fsync'd) BEFORE /settle,
 *    `settled` once the money moved, `applied` once the session has it. A crash or a settle timeout leaves a
 *    `settling` or `settled` record that the resolver finishes, so money taken always becomes access, once;
 *  - the purchases that never will be: `void` (the buyer canceled the authorization on chain, or spent its nonce on
 *    another transfer), kept like `applied` until the window closes so the same payload is refused with its reason;
 *    `unconfirmed` (the nonce is used but nothing proves the money reached pay_to: no rpc_url to look, or no log
 *    found), kept until a chain lookup decides it, for 7 days past its window at most (docs/x402.md).
 * Two writes per purchase; settled/applied/void records drop the payload to stay small.
 */
import { join } from 'node:path';
import { JsonTable, type JsonTableFormat } from '../storage/index.ts';

export type RecordState = 'settling' | 'settled' | 'applied' | 'unconfirmed' | 'void';
const RECORD_STATES: readonly RecordState[] = ['settling', 'settled', 'applied', 'unconfirmed', 'void'];

export interface PurchaseRecord {
  /** `0xfrom:0xnonce`, lower case: the payment reference too. */
  key: string;
  state: RecordState;
  /** Unix seconds (decimal string): after this the authorization can no longer move money. */
  validBefore: string;
  /** ms since the epoch when /settle was first attempted. */
  at: number;
  network: string;
  asset: string;
  value: string;
  /** The payee the authorization pays (lower case; absent in records written before it was kept: x402.pay_to then). */
  payTo?: string;
  mac: string;
  ip?: string;
  plan: string;
  metric: 'seconds' | 'bytes';
  steps: string;
  allotment: string;
  transaction?: string;
  /** `void` only: how the nonce was spent without paying (the transaction is in `transaction`). */
  voided?: 'canceled' | 'spent-elsewhere';
  /** The facilitator request (settling and unconfirmed): re-sent to /settle when resolving. */
  request?: {
    x402Version: 1 | 2;
    paymentPayload: Record<string, unknown>;
    paymentRequirements: Record<string, unknown>;
  };
}

/**
 * `{"version": 1, "records": [...]}`. One record damaged fails the whole file, like a torn one (storage/json-table.ts):
 * a record skipped would be a nonce forgotten, and its payload accepted again (with "nonce used → ask the chain →
 * grant", granted to whoever resends it). Settled, applied and void records are written without their payload.
 */
const FORMAT: JsonTableFormat<PurchaseRecord> = {
  code: 'ERR_X402_STORE',
  writeCode: 'ERR_X402_STORE',
  what: 'an x402 store',
  newline: true,
  key: (r) => r.key,
  split(json) {
    const records = (json as { records?: unknown } | null)?.records;
    if (!Array.isArray(records)) throw new TypeError('no records list');
    return { rows: records, extra: undefined };
  },
  row(r, i) {
    const rec = r as Partial<PurchaseRecord> | null;
    if (
      typeof rec !== 'object' ||
      rec === null ||
      typeof rec.key !== 'string' ||
      rec.key === '' ||
      !RECORD_STATES.includes(rec.state as RecordState)
    ) {
      throw new TypeError(`record ${i} is damaged (no key or state): ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return rec as PurchaseRecord;
  },
  join: (records) => ({
    version: 1,
    records: records.map((r) =>
      r.state === 'settling' || r.state === 'unconfirmed' ? r : (({ request: _r, ...rest }) => rest)(r),
    ),
  }),
  empty: () => undefined,
};

export const STORE_FILE = 'x402.json';
/** How long past its validBefore an `unconfirmed` purchase is kept for a chain lookup: 7 days. */
export const UNCONFIRMED_KEEP_SECONDS = 7n * 24n * 3600n;

export class X402Store {
  private constructor(
    private readonly records: JsonTable<PurchaseRecord>,
    private readonly maxEntries: number,
  ) {}

  /**
   * Reads `<stateDir>/x402.json` (absent: empty); a damaged file is refused with ERR_X402_STORE
   * (storage/json-table.ts).
   */
  /** `atStart`: opened at the daemon's start (storage/json-table.ts JsonTableOpen). */
  static async open(
    stateDir: string,
    maxEntries = 4096,
    { atStart = false }: { atStart?: boolean } = {},
  ): Promise<X402Store> {
    return new X402Store(await JsonTable.open(join(stateDir, STORE_FILE), FORMAT, { atStart }), maxEntries);
  }

  get(key: string): PurchaseRecord | undefined {
    return this.records.get(key);
  }

  list(state?: RecordState): PurchaseRecord[] {
    return this.records.list().filter((r) => state === undefined || r.state === state);
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Drops the records nothing needs any more, and returns them: applied and void ones once their authorization can no
   * longer be used (validBefore + margin in the past: the chain refuses it, so does the local window check), and
   * unconfirmed ones UNCONFIRMED_KEEP_SECONDS after that (an operator had that long to set rpc_url or look the
   * transfer up; kept for ever they would fill the store to `maxEntries`, and every purchase after is ERR_X402_BUSY).
   */
  prune(nowSeconds: bigint, marginSeconds = 60n): PurchaseRecord[] {
    const dropped: PurchaseRecord[] = [];
    for (const r of this.records.list()) {
      const keep = r.state === 'unconfirmed' ? marginSeconds + UNCONFIRMED_KEEP_SECONDS : marginSeconds;
      if (
        (r.state === 'applied' || r.state === 'void' || r.state === 'unconfirmed') &&
        BigInt(r.validBefore) + keep < nowSeconds
      ) {
        this.records.drop(r.key);
        dropped.push(r);
      }
    }
    return dropped;
  }

  hasRoom(nowSeconds: bigint): boolean {
    if (this.records.size < this.maxEntries) return true;
    this.prune(nowSeconds);
    return this.records.size < this.maxEntries;
  }

  /** Sets (or replaces) a record and waits until the file holding it is durable. */
  put(record: PurchaseRecord): Promise<void> {
    return this.records.put(record);
  }

  async remove(key: string): Promise<void> {
    await this.records.delete(key);
  }

  /** Writes the current records; writes are serialised and each waits for the one carrying its change. */
  flush(): Promise<void> {
    return this.records.flush();
  }
}
