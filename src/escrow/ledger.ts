/**
 * What the router keeps per escrow session: the buyer and maxUnits (to verify receipts) and the highest receipt the
 * buyer signed (what sluice may claim at consume/close). One small JSON file, `<state_dir>/escrow.json`, rewritten
 * atomically only when something changes (a purchase, a higher receipt): a lower or equal receipt writes nothing.
 */
import { join } from 'node:path';
import type { Address, Hex } from 'viem';
import { JsonTable, type JsonTableFormat } from '../storage/index.ts';
import { SluiceError } from '../errors.ts';
import { keepHighest, parseReceipt, verifyReceipt, type EscrowDomain, type UsageReceipt } from './receipt.ts';

/** Closed sessions kept in escrow.json (oldest dropped first); open ones are always kept. */
export const KEEP_CLOSED = 256;

export interface EscrowEntry {
  sessionId: Hex;
  mac: string;
  buyer: Address;
  maxUnits: bigint;
  receipt?: UsageReceipt;
  /**
   * The escrow contract and network the session was sold on (a reload may change escrow.address/network: receipts,
   * consumes and the close of sessions sold before still go to theirs). Absent in entries written before: the config's.
   */
  escrow?: string;
  network?: string;
  chainId?: number;
  /** Units the chain has recorded through /session/consume (the seller's claim so far). */
  consumedUnits?: bigint;
  /** When the sluice session ended (ms): the escrow session is closed `close_grace` later, retried until done. */
  endedAt?: number;
  /** The close on chain: what the seller got and the buyer got back. */
  closed?: EscrowClose;
  /**
   * A purchase not yet granted: written before /session/create (so a crash during the call leaves what to grant) and
   * cleared once a session holds the escrow session id. While set, the deposit may have landed: it is asked about by id
   * and granted if found, dropped once the authorization's validBefore has passed unused (then nothing can land).
   */
  pending?: PendingGrant;
}

export interface PendingGrant {
  plan: string;
  metric: 'bytes' | 'seconds';
  allotment: string;
  steps: string;
  amount: string;
  asset: string;
  /** When the purchase was made (ms). */
  at: number;
  ip?: string;
  /** The authorization's validBefore (unix seconds). */
  validBefore: string;
}

/** A close as the chain settled it: `units` the seller was paid for (the receipt recorded on chain). */
export interface EscrowClose {
  transaction: string;
  sellerAmount: string;
  buyerRefund: string;
  units?: string;
}

interface EntryJson {
  sessionId: string;
  mac: string;
  buyer: string;
  maxUnits: string;
  receipt?: { cumulativeUnits: string; nonce: string; signature: string };
  endedAt?: number;
  closed?: EscrowClose;
  consumedUnits?: string;
  pending?: PendingGrant;
  escrow?: string;
  network?: string;
  chainId?: number;
}

/**
 * A bare list of entries, figures as decimal strings. Throws on anything that is not what join writes (a torn or
 * foreign file).
 */
const FORMAT: JsonTableFormat<EscrowEntry> = {
  code: 'ERR_ESCROW_LEDGER',
  what: 'an escrow ledger',
  key: (e) => e.sessionId,
  split(json) {
    if (!Array.isArray(json)) throw new TypeError('not a list of entries');
    return { rows: json, extra: undefined };
  },
  row(value) {
    const e = value as EntryJson;
    if (
      typeof e !== 'object' ||
      e === null ||
      typeof e.sessionId !== 'string' ||
      typeof e.mac !== 'string' ||
      typeof e.buyer !== 'string'
    ) {
      throw new TypeError('an entry without sessionId, mac or buyer');
    }
    const sessionId = e.sessionId.toLowerCase() as Hex;
    return {
      sessionId,
      mac: e.mac,
      buyer: e.buyer as Address,
      maxUnits: BigInt(e.maxUnits),
      ...(e.endedAt !== undefined && { endedAt: e.endedAt }),
      ...(e.closed && { closed: e.closed }),
      ...(e.consumedUnits !== undefined && { consumedUnits: BigInt(e.consumedUnits) }),
      ...(e.pending && { pending: e.pending }),
      ...(e.escrow !== undefined && { escrow: e.escrow }),
      ...(e.network !== undefined && { network: e.network }),
      ...(e.chainId !== undefined && { chainId: e.chainId }),
      ...(e.receipt && {
        receipt: {
          sessionId,
          cumulativeUnits: BigInt(e.receipt.cumulativeUnits),
          nonce: BigInt(e.receipt.nonce),
          signature: e.receipt.signature as Hex,
        },
      }),
    };
  },
  join: (entries) =>
    entries.map((e): EntryJson => ({
      sessionId: e.sessionId,
      mac: e.mac,
      buyer: e.buyer,
      maxUnits: e.maxUnits.toString(),
      ...(e.endedAt !== undefined && { endedAt: e.endedAt }),
      ...(e.closed && { closed: e.closed }),
      ...(e.consumedUnits !== undefined && { consumedUnits: e.consumedUnits.toString() }),
      ...(e.pending && { pending: e.pending }),
      ...(e.escrow !== undefined && { escrow: e.escrow }),
      ...(e.network !== undefined && { network: e.network }),
      ...(e.chainId !== undefined && { chainId: e.chainId }),
      ...(e.receipt && {
        receipt: {
          cumulativeUnits: e.receipt.cumulativeUnits.toString(),
          nonce: e.receipt.nonce.toString(),
          signature: e.receipt.signature,
        },
      }),
    })),
  empty: () => undefined,
};

export class EscrowLedger {
  private constructor(private readonly entries: JsonTable<EscrowEntry>) {}

  /**
   * Reads `<state_dir>/escrow.json` (absent: empty). A file that cannot be read back (not JSON, not a list of entries,
   * a figure that is not a number) throws ERR_ESCROW_LEDGER and is left as it is (storage/json-table.ts): it holds what
   * the router owes and may claim, so nothing here guesses or rewrites it (the daemon runs without escrow sessions
   * until it is mended).
   */
  /** `atStart`: opened at the daemon's start (storage/json-table.ts JsonTableOpen). */
  static async open(stateDir: string, { atStart = false }: { atStart?: boolean } = {}): Promise<EscrowLedger> {
    return new EscrowLedger(await JsonTable.open(join(stateDir, 'escrow.json'), FORMAT, { atStart }));
  }

  get(sessionId: string): EscrowEntry | undefined {
    return this.entries.get(sessionId.toLowerCase());
  }

  /**
   * Recorded before the deposit can move (the create call), with what to grant (`pending`), so a receipt can be
   * checked and a crash during the call resolved whatever happens next. An entry already there keeps its state.
   */
  async record(entry: Omit<EscrowEntry, 'receipt'>): Promise<void> {
    if (this.entries.has(entry.sessionId)) return;
    await this.entries.put({ ...entry });
  }

  /**
   * The sluice session ended (its end on flash) or the deposit will never be granted: the escrow session is now due to
   * be closed (durable before anything is sent). A purchase still pending is pending no more: it is refunded.
   */
  async ended(sessionId: string, at: number): Promise<boolean> {
    const e = this.get(sessionId);
    if (!e || e.endedAt !== undefined || e.closed) return false;
    e.endedAt = at;
    delete e.pending;
    await this.flush();
    return true;
  }

  /** Entries neither ended nor closed: what the start reconciles against the sessions journal. */
  unsettled(): EscrowEntry[] {
    return this.entries.list().filter((e) => e.endedAt === undefined && !e.closed);
  }

  async closed(sessionId: string, close: EscrowClose): Promise<void> {
    const e = this.get(sessionId);
    if (!e || e.closed) return;
    e.closed = close;
    // Flash and RAM are small: only the most recent closed sessions are kept (for the operator to look up).
    const closed = this.entries.list().filter((x) => x.closed);
    for (const old of closed.slice(0, Math.max(0, closed.length - KEEP_CLOSED))) this.entries.drop(old.sessionId);
    await this.flush();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Live sessions holding a receipt the chain has not recorded yet. */
  dueToConsume(): EscrowEntry[] {
    return this.entries
      .list()
      .filter(
        (e) =>
          e.endedAt === undefined &&
          !e.closed &&
          e.receipt !== undefined &&
          e.receipt.cumulativeUnits > (e.consumedUnits ?? 0n),
      );
  }

  async consumed(sessionId: string, units: bigint): Promise<void> {
    const e = this.get(sessionId);
    if (!e || (e.consumedUnits ?? 0n) >= units) return;
    e.consumedUnits = units;
    await this.flush();
  }

  /** Ended, not yet closed, and past `graceMs`. */
  dueToClose(now: number, graceMs: number): EscrowEntry[] {
    return this.entries.list().filter((e) => e.endedAt !== undefined && !e.closed && e.endedAt + graceMs <= now);
  }

  /** Purchases not granted yet, waiting to learn whether their deposit landed. */
  pendingGrants(): EscrowEntry[] {
    return this.entries.list().filter((e) => e.pending !== undefined && e.endedAt === undefined && !e.closed);
  }

  /** Durable before the purchase is answered "pending": a restart keeps asking. */
  async setPending(sessionId: string, pending: PendingGrant | undefined): Promise<void> {
    const e = this.get(sessionId);
    if (!e || (pending === undefined && e.pending === undefined)) return;
    if (pending) e.pending = pending;
    else delete e.pending;
    await this.flush();
  }

  /** When the first ended session not yet due (`now`) becomes due to close (ms), or undefined. */
  nextCloseDue(now: number, graceMs: number): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.list()) {
      const due = e.endedAt === undefined || e.closed ? undefined : e.endedAt + graceMs;
      if (due !== undefined && due > now && (next === undefined || due < next)) next = due;
    }
    return next;
  }

  async forget(sessionId: string): Promise<void> {
    await this.entries.delete(sessionId.toLowerCase());
  }

  /**
   * Verifies a receipt for `sessionId` (signer = its buyer, ≤ maxUnits) and keeps it when it is higher than the last.
   * Throws ERR_RECEIPT_SESSION for a session this router did not sell, ERR_RECEIPT_* for a bad receipt.
   */
  async accept(
    domain: EscrowDomain,
    sessionId: string,
    input: Record<string, unknown>,
  ): Promise<{ entry: EscrowEntry; advanced: boolean }> {
    const entry = this.get(sessionId);
    if (!entry) throw new SluiceError('ERR_RECEIPT_SESSION', `no escrow session ${sessionId} on this router`);
    if (entry.closed) throw new SluiceError('ERR_RECEIPT_SESSION', `escrow session ${sessionId} is closed`);
    const r = parseReceipt(input);
    await verifyReceipt(domain, r, { sessionId: entry.sessionId, buyer: entry.buyer, maxUnits: entry.maxUnits });
    const { receipt, advanced } = keepHighest(entry.receipt, r);
    if (advanced) {
      entry.receipt = receipt;
      await this.flush();
    }
    return { entry, advanced };
  }

  /** Serialised: each write carries everything known when it starts. */
  private flush(): Promise<void> {
    return this.entries.flush();
  }
}
