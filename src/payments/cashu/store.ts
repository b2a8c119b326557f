/**
 * Custody on flash: the ecash the router holds, and every swap on its way to becoming it (what the records mean:
 * ledger-state.ts). Bearer money: `<state_dir>/cashu/ledger.log`, mode 0600 in a 0700 directory, a storage/sealed-log:
 * one record per change, fsynced and sealed before the call returns, compacted now and then by an atomic whole-file
 * rewrite. Its seal is `<state_dir>/cashu-ledger.seal`, out of the custody directory, so that removing that directory
 * whole is seen too. A torn last record past the seal (a crash mid-append, never acknowledged) is cut; anything else —
 * a cut or a flipped bit within the sealed bytes, a damaged record, an emptied or deleted ledger that held records, an
 * older copy — refuses to open (ERR_CASHU_STORE_DAMAGED, the `cashu-ledger` verdict of storage/verdicts.ts): the
 * method stays off and the file is left for the operator — never read as holding less, never copied aside.
 * Proofs never leave this file for a log, a stat or a reply: only amounts and counts do.
 *
 * API (the payout, keyset-retirement and ubus `cashu_balance`/`cashu_payout` work builds on it):
 *   const store = await CashuStore.open(stateDir)
 *   store.balances(): Map<mint, bigint>      held sat per mint (taken proofs excluded)   store.total(): bigint
 *   store.exposure(): bigint                 what counts against max_balance: held, taken and incoming
 *   store.proofsOf(mint): StoredProof[]      the held, untaken proofs of a mint (to choose what to spend)
 *   const id = await store.take(mint, proofs, purpose)   durable BEFORE the proofs leave (melt, swap): they stop
 *                                            counting as held, and store.takes() lists the take at every start
 *   await store.finishTake(id, change)       the mint took them: gone; `change` (NUT-08, a swap's outputs) is held
 *   await store.cancelTake(id)               the mint did not take them (its checkstate says UNSPENT): held again
 *   await store.addProofs(mint, proofs, why) proofs that came in otherwise (a keyset swap's new proofs)
 * The receive side (the `cashu` method): beginSwap (the intent, before /v1/swap), landSwap (the new proofs, before the
 * grant), markApplied (the session holds it), dropIntent (nothing moved, or nothing is owed); intent(ref),
 * openIntents(), isApplied(ref); markStranded (a silent mint's intent, or its end), strandedSince(ref).
 */
import { chmodSync, statSync } from 'node:fs';
import { chmod, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../../errors.ts';
import { ensureDir, ensureDirSync, fileDamage, SealedLog, type SealedLogFormat } from '../../storage/index.ts';
import type { StoredProof } from '../../cashu/index.ts';
import { APPLIED_KEPT, CashuLedger, type LedgerRecord, type SwapIntent } from './ledger-state.ts';

/** Records appended before the file is rewritten whole (each append is a flash write; a rewrite is one). */
const COMPACT_AFTER = 2000;

/** The ledger's seal (storage/seal.ts), in the state directory: removing the custody directory whole is seen too. */
export const LEDGER_SEAL = 'cashu-ledger.seal';
/**
 * The operator's decision, a file the operator makes in the state directory (docs/tollgate.md "The ledger"): the next
 * start takes the ledger as it reads, records the journal's payments it lacks as known, reseals it, and removes the
 * file. Never made by sluice.
 */
export const LEDGER_ACCEPT = 'cashu-ledger.accept-loss';

/** How many of the journal's references a refusal names. */
const NAMED = 3;

/**
 * A ledger without its seal is read (one written before seals were kept is taken as it reads and sealed then); its
 * first record says whether it was sealed, and one that was is refused without it (CashuStore.open).
 */
const FORMAT: SealedLogFormat = {
  kind: 'cashu-ledger',
  code: 'ERR_CASHU_STORE_DAMAGED',
  writeCode: 'ERR_CASHU_STORE_WRITE',
  what: 'a Cashu ledger',
  unsealed: 'read',
};

/** The ledger's damage, by its kind's verdict (storage/verdicts.ts `cashu-ledger`): counted, no copy, refused. */
function damaged(file: string, why: string): SluiceError {
  return fileDamage('cashu-ledger', file, 'ERR_CASHU_STORE_DAMAGED', 'a Cashu ledger', why, null);
}

/** Why a ledger that lacks payments the journal holds is refused. */
function missingWhy(missing: readonly string[]): string {
  const named = missing.slice(-NAMED).map((r) => r.slice(0, 16));
  return (
    `holds none of ${missing.length} Cashu payment(s) the session journal holds (the newest: ${named.join(', ')}): ` +
    `an older or partial copy; put back the ledger that holds them, or accept the loss (${LEDGER_ACCEPT})`
  );
}

/**
 * The reads of an open besides the ledger's own (SealedLog.open), each answered now or later: at the daemon's start
 * (before anything is served) synchronous, where a thread-pool hop per mkdir, stat and chmod only costs CPU; for a
 * method a reload switches on, on the pool, while purchases are served.
 */
interface OpenReads {
  ensureDir(dir: string, mode: number): void | Promise<void>;
  chmod(path: string, mode: number): void | Promise<void>;
  exists(path: string): boolean | Promise<boolean>;
}

const START_READS: OpenReads = {
  ensureDir: ensureDirSync,
  chmod: chmodSync,
  exists: (path) => statSync(path, { throwIfNoEntry: false }) !== undefined,
};

const RUN_READS: OpenReads = {
  ensureDir,
  chmod,
  exists: (path) =>
    stat(path).then(
      () => true,
      () => false,
    ),
};

const encode = (r: LedgerRecord): Buffer => Buffer.from(JSON.stringify(r), 'utf8');

export class CashuStore extends CashuLedger {
  /** Records in the file since it was last rewritten whole. */
  private appended = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private takeSeq = 0;

  private constructor(
    private readonly log: SealedLog,
    private readonly compactAfter: number,
  ) {
    super();
  }

  /**
   * `compactAfter`: records appended before a rewrite (tests make it small). `journal`: the references of the Cashu
   * payments the session journal holds, and when each was applied (SessionManager.paymentReferences): a ledger that
   * knows none of one is refused, as damage (the journal is the later witness: a payment there was landed here first).
   * `atStart`: opened at the daemon's start, before anything is served: its reads are synchronous (OpenReads).
   */
  static async open(
    stateDir: string,
    options: { compactAfter?: number; journal?: ReadonlyMap<string, number>; atStart?: boolean } = {},
  ): Promise<CashuStore> {
    const atStart = options.atStart === true;
    const reads = atStart ? START_READS : RUN_READS;
    const dir = join(stateDir, 'cashu');
    const file = join(dir, 'ledger.log');
    // Nothing is made or written before every check below passed: a refused ledger is left exactly as it was found.
    const { log, records, sealed } = await SealedLog.open(file, FORMAT, { seal: join(stateDir, LEDGER_SEAL), atStart });
    const store = new CashuStore(log, options.compactAfter ?? COMPACT_AFTER);
    try {
      for (const r of records ?? []) store.apply(JSON.parse(r.toString('utf8')) as LedgerRecord);
    } catch (err) {
      throw damaged(file, `a record cannot be read back (${(err as Error).message.slice(0, 120)})`);
    }
    store.appended = records?.length ?? 0;
    const accept = join(stateDir, LEDGER_ACCEPT);
    const accepted = await reads.exists(accept);
    const missing = store.missingOf(options.journal ?? new Map());
    if (!accepted) {
      if (!sealed && store.marked)
        throw damaged(file, `its seal ${LEDGER_SEAL} is missing, while the ledger says it was sealed`);
      if (missing.length > 0) throw damaged(file, missingWhy(missing));
    }
    await reads.ensureDir(dir, 0o700);
    await reads.chmod(dir, 0o700);
    try {
      if (accepted) {
        // The operator's decision: what the journal holds beyond this ledger is known from now on, not owed.
        if (missing.length > 0)
          await store.append({ t: 'accepted', refs: missing.slice(-APPLIED_KEPT), at: Date.now() });
        await rm(accept, { force: true });
      }
      // A ledger without its mark (new, or written before the mark was) is rewritten with it first: from then on a
      // ledger whose seal is gone is seen, however it was cut. A marked one has a torn tail cut and its seal made to
      // name what it read (records appended since the seal, or a compaction's two states).
      if (!store.marked) await store.compact();
      else await log.settle();
      await reads.chmod(file, 0o600);
    } catch (err) {
      await log.close();
      throw err;
    }
    return store;
  }

  /**
   * Appends, fsyncs, seals, then applies: a caller that gets a resolved promise has the change on flash. A change not
   * written whole (a full flash) is cut back and rejects (ERR_CASHU_STORE_WRITE, storage/sealed-log.ts): the change is
   * not made, and the next append follows the last whole record. A record that does not apply when its turn comes (an
   * append queued before it ended its intent or take) is refused unwritten (ERR_INTERNAL): on flash, every later start
   * would fail to read the ledger back.
   */
  private append(r: LedgerRecord): Promise<void> {
    const run = this.chain.then(async () => {
      const unappliable = this.unappliable(r);
      if (unappliable !== null)
        throw new SluiceError('ERR_INTERNAL', `not written to the Cashu ledger: ${unappliable}`);
      await this.log.append(encode(r));
      this.apply(r);
      // The record is on flash already: a failed rewrite must not make its caller think otherwise (tried again next
      // time).
      if (++this.appended >= this.compactAfter) await this.compact().catch(() => undefined);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The same state in fewest records, replacing the file atomically. */
  private async compact(): Promise<void> {
    const recs = this.records();
    await this.log.rewrite(recs.map(encode));
    this.appended = recs.length;
    this.marked = true;
  }

  // ---- receive side (the cashu method)

  /**
   * Marks the open intent `ref` stranded since `since` (null: its mint answers again), on flash before the call
   * returns: what the staff are told (the log, ubus stats) and the room it stops holding outlive a restart.
   */
  markStranded(ref: string, since: number | null): Promise<void> {
    return this.append({ t: 'stranded', ref, since });
  }

  /** The swap's intent, with its outputs' secrets and blinding factors: on flash before /v1/swap is sent. */
  beginSwap(intent: SwapIntent): Promise<void> {
    return this.append({ t: 'intent', intent });
  }

  /** The swap's new proofs: on flash before the session is granted. */
  landSwap(ref: string, proofs: StoredProof[]): Promise<void> {
    // Checked before the write: a record the next open could not apply would make the whole file unreadable.
    if (!this.intents.has(ref)) return Promise.reject(new SluiceError('ERR_INTERNAL', `no swap intent ${ref} to land`));
    return this.append({ t: 'landed', ref, proofs });
  }

  markApplied(ref: string): Promise<void> {
    return this.append({ t: 'applied', ref, at: Date.now() });
  }

  dropIntent(ref: string, why: string): Promise<void> {
    return this.append({ t: 'dropped', ref, why });
  }

  // ---- custody

  /** Durable before the proofs go to a mint; refused if one is not held or already taken. */
  async take(mint: string, proofs: readonly StoredProof[], purpose: string): Promise<string> {
    const taken = this.takenSecrets();
    for (const p of proofs) {
      const h = this.held.get(p.secret);
      if (!h || h.mint !== mint || taken.has(p.secret))
        throw new SluiceError('ERR_INVALID_ARGUMENT', 'a proof to take is not held, or already taken');
    }
    const id = `take-${Date.now().toString(36)}-${(this.takeSeq++).toString(36)}`;
    await this.append({
      t: 'take',
      take: { id, mint, proofs: proofs.map((p) => ({ ...p })), purpose: purpose.slice(0, 64), at: Date.now() },
    });
    return id;
  }

  finishTake(id: string, change: readonly StoredProof[] = []): Promise<void> {
    if (!this.takesById.has(id)) return Promise.reject(new SluiceError('ERR_INVALID_ARGUMENT', `no take ${id}`));
    return this.append({ t: 'spent', id, change: change.map((p) => ({ ...p })) });
  }

  cancelTake(id: string): Promise<void> {
    if (!this.takesById.has(id)) return Promise.reject(new SluiceError('ERR_INVALID_ARGUMENT', `no take ${id}`));
    return this.append({ t: 'return', id });
  }

  addProofs(mint: string, proofs: readonly StoredProof[], why: string): Promise<void> {
    return this.append({ t: 'add', mint, proofs: proofs.map((p) => ({ ...p })), why: why.slice(0, 64) });
  }

  async close(): Promise<void> {
    await this.chain;
    await this.log.close();
  }
}
