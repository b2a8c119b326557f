/**
 * Ecash on its way out: a payout's melt and a keyset retirement's swap, each written here before its
 * request goes to the mint, with what finishing it needs after a crash: the melt's quote and its NUT-08 blank outputs,
 * the swap's outputs (secrets and blinding factors), and the store's take that holds the proofs. Plus the last
 * payouts' outcomes, for ubus `cashu_balance` and LuCI.
 *
 * `<state_dir>/cashu/outgoing.json`, 0600 in the custody directory, rewritten whole and atomically (a payout or a
 * retirement is a few writes a day). The order across the two files: the store's take first (the proofs stop
 * counting as held), then the record here, then the request. So after a crash a take without a record was never
 * sent (given back once the mint says the proofs are unspent), and a record whose take is gone was finished.
 * Sealed (`outgoing.json.seal`, storage/seal.ts). A file that cannot be read back, or is not what its seal says was
 * last written, is refused (ERR_CASHU_STORE_DAMAGED, the `cashu-outgoing` verdict) and left as it is, without a copy:
 * it may hold money's keys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError } from '../../errors.ts';
import {
  fileDamage,
  matchSeal,
  readSealSync,
  sealOf,
  sealPath,
  writeFileAtomic,
  writeSeal,
  type SealState,
} from '../../storage/index.ts';
import type { SwapOutput } from '../../cashu/index.ts';

interface Common {
  /** The store's take holding the inputs. */
  take: string;
  mint: string;
  inputTotal: number;
  inputFee: number;
  at: number;
}
export interface MeltOut extends Common {
  kind: 'melt';
  quote: string;
  amount: number;
  feeReserve: number;
  blanks: SwapOutput[];
}
export interface SwapOut extends Common {
  kind: 'swap';
  outputs: SwapOutput[];
}
export type Outgoing = MeltOut | SwapOut;

export type PayoutState = 'paid' | 'pending' | 'failed';

/** A payout as ubus shows it: amounts, never a proof, a secret or the invoice. */
export interface PayoutRecord {
  mint: string;
  quote: string;
  state: PayoutState;
  /** Sat the invoice paid. */
  amount: number;
  inputFee: number;
  feeReserve: number;
  /** Sat of the reserve the Lightning payment used (paid only). */
  lightningFee?: number;
  /** Sat that came back (NUT-08). */
  change?: number;
  at: number;
  ended?: number;
  reason?: string;
}

const HISTORY_KEPT = 20;

interface FileShape {
  version: 1;
  open: Outgoing[];
  payouts: PayoutRecord[];
}

/** The state of a book never written. */
const NOTHING: SealState = { bytes: 0, crc: 0 };

/** The book's damage, by its kind's verdict (storage/verdicts.ts `cashu-outgoing`): counted, no copy, refused. */
function damaged(file: string, why: string): SluiceError {
  return fileDamage('cashu-outgoing', file, 'ERR_CASHU_STORE_DAMAGED', 'a book of ecash on its way out', why, null);
}

export class OutgoingBook {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private data: FileShape,
    /** The file's length and CRC as last written or read. */
    private sealed: SealState,
  ) {}

  /** Opens `<state_dir>/cashu/outgoing.json` (the store made the directory, 0700). */
  static open(stateDir: string): OutgoingBook {
    const file = join(stateDir, 'cashu', 'outgoing.json');
    let bytes: Buffer | null = null;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw damaged(file, `cannot be read (${(err as Error).message})`);
    }
    let states: SealState[] | null;
    try {
      states = readSealSync(sealPath(file));
    } catch (err) {
      throw damaged(file, (err as Error).message);
    }
    if (states && !(bytes === null ? states.some((s) => s.bytes === 0) : matchSeal(bytes, states, 'whole')))
      throw damaged(file, `is ${bytes === null ? 'missing' : 'not'} what its seal says was last written`);
    const sealed = bytes === null ? NOTHING : sealOf(bytes);
    if (bytes === null) return new OutgoingBook(file, { version: 1, open: [], payouts: [] }, sealed);
    try {
      const data = JSON.parse(bytes.toString('utf8')) as FileShape;
      if (data.version !== 1 || !Array.isArray(data.open) || !Array.isArray(data.payouts))
        throw new Error('not the format');
      for (const o of data.open)
        if ((o.kind !== 'melt' && o.kind !== 'swap') || typeof o.take !== 'string' || typeof o.mint !== 'string')
          throw new Error('a record is not one');
      return new OutgoingBook(file, data, sealed);
    } catch (err) {
      throw damaged(file, (err as Error).message);
    }
  }

  open(): readonly Outgoing[] {
    return this.data.open;
  }

  byTake(take: string): Outgoing | undefined {
    return this.data.open.find((o) => o.take === take);
  }

  payouts(): readonly PayoutRecord[] {
    return this.data.payouts;
  }

  /** On flash before the request is sent. A melt's payout shows as pending from here. */
  add(o: Outgoing): Promise<void> {
    return this.write(() => {
      this.data.open.push(o);
      if (o.kind === 'melt')
        this.upsert({
          mint: o.mint,
          quote: o.quote,
          state: 'pending',
          amount: o.amount,
          inputFee: o.inputFee,
          feeReserve: o.feeReserve,
          at: o.at,
        });
    });
  }

  /** The request's end (the store already knows it): the record goes; a melt's payout gets its outcome. */
  end(take: string, payout?: Partial<PayoutRecord> & { state: PayoutState }): Promise<void> {
    return this.write(() => {
      const o = this.byTake(take);
      this.data.open = this.data.open.filter((x) => x.take !== take);
      if (o?.kind === 'melt' && payout) {
        const known = this.data.payouts.find((p) => p.quote === o.quote);
        this.upsert({
          ...(known ?? {
            mint: o.mint,
            quote: o.quote,
            amount: o.amount,
            inputFee: o.inputFee,
            feeReserve: o.feeReserve,
            at: o.at,
          }),
          ...payout,
        });
      }
    });
  }

  /** A payout's state without ending it (still pending, with why). */
  note(quote: string, reason: string): Promise<void> {
    const known = this.data.payouts.find((p) => p.quote === quote);
    if (!known || known.reason === reason) return Promise.resolve();
    return this.write(() => {
      const p = this.data.payouts.find((x) => x.quote === quote);
      if (p) p.reason = reason.slice(0, 200);
    });
  }

  private upsert(p: PayoutRecord): void {
    this.data.payouts = [p, ...this.data.payouts.filter((x) => x.quote !== p.quote)].slice(0, HISTORY_KEPT);
  }

  /**
   * Changes and writes, one at a time: a caller whose promise resolved has the change on flash; a write that fails
   * leaves the book as the file is (the change is made on a copy, kept once written).
   */
  private write(change: () => void): Promise<void> {
    const run = this.chain.then(async () => {
      const before = this.data;
      this.data = structuredClone(before);
      try {
        change();
        const bytes = Buffer.from(`${JSON.stringify(this.data)}\n`, 'utf8');
        // Old and new sealed before the rename: a crash on either side of it leaves a file the seal accepts.
        const next = sealOf(bytes);
        await writeSeal(sealPath(this.file), [this.sealed, next]);
        await writeFileAtomic(this.file, bytes, { mode: 0o600 });
        this.sealed = next;
      } catch (err) {
        this.data = before;
        throw err;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  async settled(): Promise<void> {
    await this.chain;
  }
}
