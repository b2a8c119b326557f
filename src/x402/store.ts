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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../storage/index.ts';
import { SluiceError } from '../errors.ts';

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
  request?: { x402Version: 1 | 2; paymentPayload: Record<string, unknown>; paymentRequirements: Record<string, unknown> };
}

interface FileShape {
  version: 1;
  records: PurchaseRecord[];
}

export const STORE_FILE = 'x402.json';
/** How long past its validBefore an `unconfirmed` purchase is kept for a chain lookup: 7 days. */
export const UNCONFIRMED_KEEP_SECONDS = 7n * 24n * 3600n;

export class X402Store {
  private readonly records = new Map<string, PurchaseRecord>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string, private readonly maxEntries: number) {}

  static async open(stateDir: string, maxEntries = 4096): Promise<X402Store> {
    const store = new X402Store(join(stateDir, STORE_FILE), maxEntries);
    let text: string | undefined;
    try {
      text = await readFile(store.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SluiceError('ERR_X402_STORE', `cannot read ${store.path}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (text !== undefined) {
      let parsed: FileShape;
      try {
        parsed = JSON.parse(text) as FileShape;
      } catch (err) {
        // Written by rename only, so a torn file means someone else wrote it: refuse to guess which nonces were used.
        throw new SluiceError('ERR_X402_STORE', `${store.path} is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.records)) {
        throw new SluiceError('ERR_X402_STORE', `${store.path} is not an x402 store (no records list)`);
      }
      // One record damaged fails the whole file, like a torn one: a record skipped would be a nonce forgotten, and its
      // payload accepted again (with "nonce used → ask the chain → grant", granted to whoever resends it).
      parsed.records.forEach((r: unknown, i) => {
        const rec = r as Partial<PurchaseRecord> | null;
        if (typeof rec !== 'object' || rec === null || typeof rec.key !== 'string' || rec.key === '' || !RECORD_STATES.includes(rec.state as RecordState)) {
          throw new SluiceError('ERR_X402_STORE', `${store.path}: record ${i} is damaged (no key or state): ${JSON.stringify(r)?.slice(0, 200)}`);
        }
        store.records.set(rec.key, rec as PurchaseRecord);
      });
    }
    return store;
  }

  get(key: string): PurchaseRecord | undefined {
    return this.records.get(key);
  }

  list(state?: RecordState): PurchaseRecord[] {
    return [...this.records.values()].filter((r) => state === undefined || r.state === state);
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
    for (const [k, r] of this.records) {
      const keep = r.state === 'unconfirmed' ? marginSeconds + UNCONFIRMED_KEEP_SECONDS : marginSeconds;
      if ((r.state === 'applied' || r.state === 'void' || r.state === 'unconfirmed') && BigInt(r.validBefore) + keep < nowSeconds) {
        this.records.delete(k);
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
  async put(record: PurchaseRecord): Promise<void> {
    this.records.set(record.key, record);
    await this.flush();
  }

  async remove(key: string): Promise<void> {
    if (this.records.delete(key)) await this.flush();
  }

  /** Writes the current records; writes are serialised and each waits for the one carrying its change. */
  flush(): Promise<void> {
    const next = this.writing.catch(() => undefined).then(() => {
      const body: FileShape = {
        version: 1,
        records: [...this.records.values()].map((r) => (r.state === 'settling' || r.state === 'unconfirmed' ? r : (({ request: _r, ...rest }) => rest)(r))),
      };
      return writeFileAtomic(this.path, `${JSON.stringify(body)}\n`, { mode: 0o600 });
    });
    this.writing = next;
    return next.catch((err: unknown) => {
      throw new SluiceError('ERR_X402_STORE', `cannot write ${this.path}: ${(err as Error).message}`, { cause: err });
    });
  }
}
