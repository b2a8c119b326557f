/**
 * The `upto` method's durable state: one small JSON file in main.state_dir (`upto.json`), replaced atomically (temp,
 * fsync, rename, directory fsync), writes serialized, each awaited before acting. A record per accepted authorization:
 *  - `open`: accepted (verified) and on flash BEFORE the session is granted; holds the payload to settle later;
 *  - `settling`: the metered amount to settle, on flash BEFORE /settle is asked (a crash or a lost answer leaves
 *    it, and the same amount is asked again: Permit2's nonce lets the chain move it once);
 *  - `settled`: the money moved (`transaction`), or nothing was due (amount 0: no transaction at all);
 *  - `released`: the session was never granted; nothing will be settled;
 *  - `failed`: the facilitator refused the first ask to settle (its reason kept); nothing moved;
 *  - `unconfirmed`: it refused a REPEATED ask (after a lost answer or a crash): an earlier ask may have moved the
 *    money — once, Permit2's nonce sees to that — so sluice cannot say "nothing moved"; the operator checks the chain.
 * Finished records drop the payload and stay until their deadline has passed (a replayed payload is refused with
 * its state), so the file is bounded by the purchase rate × the authorization window.
 */
import { join } from 'node:path';
import { JsonTable, type JsonTableFormat } from '../storage/index.ts';

export type UptoState = 'open' | 'settling' | 'settled' | 'released' | 'failed' | 'unconfirmed';
const UPTO_STATES: readonly UptoState[] = ['open', 'settling', 'settled', 'released', 'failed', 'unconfirmed'];

export interface UptoRecord {
  /** `0xpayer:nonce`: the payment reference. */
  reference: string;
  state: UptoState;
  network: string;
  asset: string;
  payTo: string;
  /** The signed maximum (the ceiling), decimal. */
  maxAmount: string;
  /** Unix seconds, decimal: after it the authorization cannot be settled. */
  deadline: string;
  pricePerStep: string;
  stepSize: string;
  mac: string;
  /** ms since the epoch of the purchase. */
  at: number;
  /** `settling`/`settled`: the metered amount (≤ maxAmount). */
  amount?: string;
  transaction?: string;
  /** `settling`: how many times /settle was (or was about to be) asked, written before each ask. */
  asked?: number;
  /** `failed` / `unconfirmed`: the facilitator's reason. */
  reason?: string;
  /**
   * Settled while its session ran (its deadline came first: payments/upto/x402-upto-ends.ts): the usage, bytes or
   * seconds, this authorization pays for, decimal — its share of the session from then on, whatever its ceiling would
   * buy.
   */
  covered?: string;
  /**
   * Settled while its session ran for less than its ceiling buys: the session loses what nobody pays for any more
   * (`by` units), and had `from` as its allotment before. On flash before the session is shrunk, dropped once it is:
   * a start that finds it shrinks the session if its allotment is still `from`.
   */
  shrink?: { from: string; by: string };
  /** While open or settling: what /settle is sent (paymentRequirements.amount is set to the metered amount then). */
  request?: { x402Version: 2; paymentPayload: Record<string, unknown>; paymentRequirements: Record<string, unknown> };
}

/**
 * `{"version": 1, "kind": "upto", "records": [...]}`. One record damaged fails the whole file, like a torn one
 * (storage/json-table.ts): a record skipped would be an authorization forgotten (accepted again, or never settled).
 * Records neither open nor settling are written without their payload.
 */
const FORMAT: JsonTableFormat<UptoRecord> = {
  code: 'ERR_UPTO_STORE',
  writeCode: 'ERR_UPTO_STORE',
  what: 'an upto table',
  newline: true,
  key: (r) => r.reference,
  split(json) {
    const file = json as { kind?: unknown; records?: unknown } | null;
    if (typeof file !== 'object' || file === null || file.kind !== 'upto' || !Array.isArray(file.records))
      throw new TypeError('not an upto table');
    return { rows: file.records, extra: undefined };
  },
  row(r, i) {
    const rec = r as Partial<UptoRecord> | null;
    if (
      typeof rec !== 'object' ||
      rec === null ||
      typeof rec.reference !== 'string' ||
      rec.reference === '' ||
      !UPTO_STATES.includes(rec.state as UptoState)
    ) {
      throw new TypeError(`record ${i} is damaged (no reference or state): ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return rec as UptoRecord;
  },
  join: (records) => ({
    version: 1,
    kind: 'upto',
    records: records.map((r) =>
      r.state === 'open' || r.state === 'settling' ? r : (({ request: _r, ...rest }) => rest)(r),
    ),
  }),
  empty: () => undefined,
};

export const UPTO_STORE_FILE = 'upto.json';

export class UptoStore {
  private constructor(private readonly records: JsonTable<UptoRecord>) {}

  get path(): string {
    return this.records.path;
  }

  /**
   * Reads `<stateDir>/upto.json` (absent: empty); a damaged file is refused with ERR_UPTO_STORE
   * (storage/json-table.ts).
   */
  /** `atStart`: opened at the daemon's start (storage/json-table.ts JsonTableOpen). */
  static async open(stateDir: string, { atStart = false }: { atStart?: boolean } = {}): Promise<UptoStore> {
    return new UptoStore(await JsonTable.open(join(stateDir, UPTO_STORE_FILE), FORMAT, { atStart }));
  }

  get(reference: string): UptoRecord | undefined {
    return this.records.get(reference);
  }

  list(state?: UptoState): UptoRecord[] {
    return this.records.list().filter((r) => state === undefined || r.state === state);
  }

  /** Sets (or replaces) a record and resolves once the file holding it is durable. */
  put(record: UptoRecord): Promise<void> {
    return this.records.put(record);
  }

  /** Drops finished records whose authorization can no longer be settled (deadline + margin in the past). */
  prune(nowSeconds: bigint, marginSeconds = 60n): boolean {
    let changed = false;
    for (const r of this.records.list()) {
      if (
        (r.state === 'settled' || r.state === 'released' || r.state === 'failed' || r.state === 'unconfirmed') &&
        BigInt(r.deadline) + marginSeconds < nowSeconds
      ) {
        this.records.drop(r.reference);
        changed = true;
      }
    }
    return changed;
  }

  flush(): Promise<void> {
    return this.records.flush();
  }
}
