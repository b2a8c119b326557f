/**
 * Custody: the ecash the router holds, and every swap on its way to becoming it. Bearer money on
 * flash: `<state_dir>/cashu/ledger.log`, mode 0600 in a 0700 directory, one CRC-framed record per change
 * (storage/record-log.ts), each fsynced and sealed (`<state_dir>/cashu-ledger.seal`: its length and CRC,
 * storage/seal.ts) before the call returns, compacted now and then by an atomic whole-file rewrite. A torn last record
 * past the seal (a crash mid-append, never acknowledged) is cut; anything else — a cut or a flipped bit within the
 * sealed bytes, a damaged record, an emptied or deleted ledger that held records, an older copy — refuses to open
 * (ERR_CASHU_STORE_DAMAGED, the `cashu-ledger` verdict of storage/verdicts.ts): the method stays off and the file is
 * left for the operator — never read as holding less.
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
import { open, readFile, chmod, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../../errors.ts';
import {
  appendWhole,
  type AppendError,
  ensureDir,
  fileDamage,
  FRAME_BYTES,
  matchSeal,
  readSeal,
  scanRecords,
  sealOf,
  sealRecord,
  writeFileAtomic,
  writeSeal,
  type SealState,
} from '../../storage/index.ts';
import type { StoredProof, SwapOutput } from '../../cashu/index.ts';

/** What a swap is for, and all it needs to finish or be undone after a crash. */
export interface SwapIntent {
  ref: string;
  mint: string;
  mac: string;
  ip?: string;
  at: number;
  /** The quote granted: plan, metric, steps, allotment (bigint as decimal strings), price (sat). */
  quote: {
    plan: string;
    metric: 'seconds' | 'bytes';
    steps: string;
    allotment: string;
    price: string;
    stepSize: string;
  };
  inputs: StoredProof[];
  outputs: SwapOutput[];
  /** A Lightning quote's NUT-20 secret key (hex): its mint signs the ecash only for a request signed with it. */
  lock?: string;
  /** A Lightning quote's expiry at the mint (unix seconds): past it, a quote the mint no longer knows is dropped. */
  expiry?: number;
}

export type IntentState = 'open' | 'landed';
export interface Take {
  id: string;
  mint: string;
  proofs: StoredProof[];
  purpose: string;
  at: number;
}

type Rec =
  | { t: 'intent'; intent: SwapIntent }
  | { t: 'landed'; ref: string; proofs: StoredProof[] }
  | { t: 'applied'; ref: string; at?: number }
  | { t: 'sealed'; v: 1 }
  | { t: 'forgot'; before: number }
  | { t: 'accepted'; refs: string[]; at: number }
  | { t: 'dropped'; ref: string; why: string }
  | { t: 'stranded'; ref: string; since: number | null }
  | { t: 'add'; mint: string; proofs: StoredProof[]; why: string }
  | { t: 'take'; take: Take }
  | { t: 'spent'; id: string; change: StoredProof[] }
  | { t: 'return'; id: string };

/** Applied references remembered (the sessions' journal keeps them too; this bounds the file). */
const APPLIED_KEPT = 5000;
/** A dropped intent's `why` when its Lightning quote was minted by someone else (the payer is told; lightning.ts). */
export const CLAIMED = 'claimed: minted by someone else';
/** Claimed quotes remembered, so the page still says so after a restart. */
const CLAIMED_KEPT = 500;
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

export class CashuStore {
  private readonly held = new Map<string, { mint: string; proof: StoredProof }>();
  private readonly intents = new Map<string, { intent: SwapIntent; state: IntentState }>();
  /** Applied references and when they were marked applied (what the journal holds is checked against them). */
  private readonly applied = new Map<string, number>();
  /** Applied references were forgotten (APPLIED_KEPT) up to this time: the journal's older ones are not checked. */
  private forgottenBefore = 0;
  /** The ledger's own mark that it was sealed (its first record): without its seal file it is damage. */
  private marked = false;
  private readonly claimed = new Set<string>();
  /** Open intents a silent mint stranded, and since when (intent-looks.ts): on flash, so a restart keeps them so. */
  private readonly stranded = new Map<string, number>();
  private readonly takesById = new Map<string, Take>();
  private appended = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private takeSeq = 0;
  /** Set when a failed append could not be cut back: every later append is refused with it. */
  private broken: SluiceError | null = null;

  /** Open for appending once the ledger read back passed every check (CashuStore.open). */
  private handle!: FileHandle;

  private constructor(
    private readonly file: string,
    private readonly seal: string,
    private readonly compactAfter: number,
    /** The file's length and CRC as last made durable: what its seal says once written. */
    private sealed: SealState,
  ) {}

  /**
   * `compactAfter`: records appended before a rewrite (tests make it small). `journal`: the references of the Cashu
   * payments the session journal holds, and when each was applied (SessionManager.paymentReferences): a ledger that
   * knows none of one is refused, as damage (the journal is the later witness: a payment there was landed here first).
   */
  static async open(
    stateDir: string,
    options: { compactAfter?: number; journal?: ReadonlyMap<string, number> } = {},
  ): Promise<CashuStore> {
    const dir = join(stateDir, 'cashu');
    await ensureDir(dir, 0o700);
    await chmod(dir, 0o700);
    const file = join(dir, 'ledger.log');
    const seal = join(stateDir, LEDGER_SEAL);
    const accept = join(stateDir, LEDGER_ACCEPT);
    const accepted = await stat(accept).then(
      () => true,
      () => false,
    );
    let states: SealState[] | null;
    try {
      states = await readSeal(seal);
    } catch (err) {
      throw damaged(file, (err as Error).message);
    }
    let data: Buffer | null = null;
    try {
      data = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw damaged(file, `cannot be read (${(err as Error).message})`);
    }
    const bytes = data ?? Buffer.alloc(0);
    if (states) {
      const held = Math.min(...states.map((s) => s.bytes));
      if (held > 0 && bytes.length === 0)
        throw damaged(file, `is ${data ? 'empty' : 'missing'}, while its seal says it held ${held} bytes`);
      if (!matchSeal(bytes, states, 'prefix')) {
        throw damaged(
          file,
          bytes.length < held
            ? `ends at byte ${bytes.length}, before the ${held} bytes it was sealed with (cut short, or an older copy)`
            : 'its sealed bytes changed (a flipped bit, another file, or an older copy)',
        );
      }
    }
    // Past the seal (appended since, its seal not yet written when the daemon stopped) a torn last record is a crash's
    // leftover; within it, no crash can have cut anything, and the seal matched.
    const scan = scanRecords(bytes, 0);
    if (scan.problem === 'corrupt') throw damaged(file, `a damaged record at byte ${scan.end}`);
    const store = new CashuStore(
      file,
      seal,
      options.compactAfter ?? COMPACT_AFTER,
      sealOf(bytes.subarray(0, scan.end)),
    );
    try {
      for (const r of scan.records) store.apply(JSON.parse(r.payload.toString('utf8')) as Rec);
    } catch (err) {
      throw damaged(file, `a record cannot be read back (${(err as Error).message.slice(0, 120)})`);
    }
    store.appended = scan.records.length;
    const missing = store.missingOf(options.journal ?? new Map());
    if (!accepted) {
      // Checked before anything is written: a refused ledger is left exactly as it was found.
      if (!states && store.marked)
        throw damaged(file, `its seal ${LEDGER_SEAL} is missing, while the ledger says it was sealed`);
      if (missing.length > 0) throw damaged(file, missingWhy(missing));
    }
    store.handle = await open(file, 'a', 0o600);
    try {
      await store.handle.chmod(0o600);
      if (scan.problem === 'torn') {
        // A crash mid-append: that record was never acknowledged, so nothing promised is lost by cutting it.
        await store.handle.truncate(scan.end);
        await store.handle.sync();
      }
      if (accepted) {
        // The operator's decision: what the journal holds beyond this ledger is known from now on, not owed.
        if (missing.length > 0)
          await store.append({ t: 'accepted', refs: missing.slice(-APPLIED_KEPT), at: Date.now() });
        await rm(accept, { force: true });
      }
      // A ledger without its mark (new, or written before the mark was) is rewritten with it first: from then on a
      // ledger whose seal is gone is seen, however it was cut.
      if (!store.marked) await store.compact();
      else if (states?.length !== 1 || states[0]!.bytes !== store.sealed.bytes || states[0]!.crc !== store.sealed.crc)
        await writeSeal(seal, [store.sealed]);
    } catch (err) {
      await store.handle.close();
      throw err;
    }
    return store;
  }

  /**
   * The journal's references this ledger knows nothing of (not applied, not an intent, not forgotten), oldest first.
   */
  private missingOf(journal: ReadonlyMap<string, number>): string[] {
    return [...journal]
      .filter(([ref, at]) => at > this.forgottenBefore && !this.applied.has(ref) && !this.intents.has(ref))
      .sort((a, b) => a[1] - b[1])
      .map(([ref]) => ref);
  }

  private apply(r: Rec): void {
    switch (r.t) {
      case 'intent':
        this.intents.set(r.intent.ref, { intent: r.intent, state: 'open' });
        break;
      case 'landed': {
        const i = this.intents.get(r.ref);
        if (!i) throw new Error(`landed without an intent`);
        i.state = 'landed';
        this.stranded.delete(r.ref);
        for (const p of r.proofs) this.held.set(p.secret, { mint: i.intent.mint, proof: p });
        break;
      }
      case 'applied':
        this.intents.delete(r.ref);
        this.stranded.delete(r.ref);
        // Written before applied records kept their time: as of now, so forgetting one never checks older ones.
        this.remember(r.ref, r.at ?? Date.now());
        break;
      case 'sealed':
        this.marked = true;
        break;
      case 'forgot':
        this.forgottenBefore = Math.max(this.forgottenBefore, r.before);
        break;
      case 'accepted':
        for (const ref of r.refs) this.remember(ref, r.at);
        break;
      case 'dropped':
        this.intents.delete(r.ref);
        this.stranded.delete(r.ref);
        if (r.why === CLAIMED) {
          this.claimed.add(r.ref);
          if (this.claimed.size > CLAIMED_KEPT) this.claimed.delete(this.claimed.values().next().value!);
        }
        break;
      case 'stranded':
        // Only an open intent is stranded: a mark that arrives after its intent ended (written while it ended) is moot.
        if (r.since === null) this.stranded.delete(r.ref);
        else if (this.intents.get(r.ref)?.state === 'open') this.stranded.set(r.ref, r.since);
        break;
      case 'add':
        for (const p of r.proofs) this.held.set(p.secret, { mint: r.mint, proof: p });
        break;
      case 'take':
        this.takesById.set(r.take.id, r.take);
        break;
      case 'spent': {
        const take = this.takesById.get(r.id);
        if (!take) throw new Error('spent without a take');
        for (const p of take.proofs) this.held.delete(p.secret);
        this.takesById.delete(r.id);
        for (const p of r.change) this.held.set(p.secret, { mint: take.mint, proof: p });
        break;
      }
      case 'return':
        this.takesById.delete(r.id);
        break;
      default:
        throw new Error(`unknown record ${(r as { t?: unknown }).t}`);
    }
  }

  private remember(ref: string, at: number): void {
    this.applied.set(ref, at);
    if (this.applied.size <= APPLIED_KEPT) return;
    const [oldest, when] = this.applied.entries().next().value!;
    this.applied.delete(oldest);
    this.forgottenBefore = Math.max(this.forgottenBefore, when);
  }

  /**
   * Appends, fsyncs, then applies: a caller that gets a resolved promise has the change on flash. A write or fsync
   * that falls short (a full flash) cuts the file back to its sealed length and rejects (ERR_CASHU_STORE_WRITE,
   * storage/append.ts): the change is not made, and the next append follows the last whole record.
   */
  private append(r: Rec): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.broken) throw this.broken;
      const payload = Buffer.from(JSON.stringify(r), 'utf8');
      const head = sealRecord(Buffer.alloc(FRAME_BYTES), payload);
      const record = Buffer.concat([head, payload]);
      try {
        await appendWhole(this.handle, record, this.sealed.bytes, 'full');
      } catch (err) {
        const e = err as AppendError;
        const refused = new SluiceError(
          'ERR_CASHU_STORE_WRITE',
          `the Cashu ledger could not be written, nothing changed: ${e.message}`,
          { cause: err, details: { errno: e.errno } },
        );
        // A tail that could not be cut is unknown: nothing more is appended after it until a restart reads it.
        if (!e.cut) this.broken = refused;
        throw refused;
      }
      this.apply(r);
      this.sealed = sealOf(record, this.sealed);
      // A seal that could not be written leaves the older one, which the longer file still begins with: the record
      // stands; only the check of what was appended since waits for the next seal.
      await writeSeal(this.seal, [this.sealed]).catch(() => undefined);
      // The record is on flash already: a failed rewrite must not make its caller think otherwise (tried again next
      // time).
      if (++this.appended >= this.compactAfter) await this.compact().catch(() => undefined);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The same state in fewest records, replacing the file atomically. */
  private async compact(): Promise<void> {
    // The mark first: a ledger cut anywhere still says it was sealed.
    const recs: Rec[] = [{ t: 'sealed', v: 1 }];
    if (this.forgottenBefore > 0) recs.push({ t: 'forgot', before: this.forgottenBefore });
    for (const [ref, at] of this.applied) recs.push({ t: 'applied', ref, at });
    for (const ref of this.claimed) recs.push({ t: 'dropped', ref, why: CLAIMED });
    for (const { intent, state } of this.intents.values()) {
      recs.push({ t: 'intent', intent });
      // The landed proofs are in the held set below (if still held): the record only keeps the state.
      if (state === 'landed') recs.push({ t: 'landed', ref: intent.ref, proofs: [] });
    }
    for (const [ref, since] of this.stranded) recs.push({ t: 'stranded', ref, since });
    const byMint = new Map<string, StoredProof[]>();
    for (const { mint, proof } of this.held.values()) byMint.set(mint, [...(byMint.get(mint) ?? []), proof]);
    for (const [mint, proofs] of byMint) recs.push({ t: 'add', mint, proofs, why: 'compacted' });
    for (const take of this.takesById.values()) recs.push({ t: 'take', take });
    const bytes = Buffer.concat(
      recs.map((r) => {
        const payload = Buffer.from(JSON.stringify(r), 'utf8');
        return Buffer.concat([sealRecord(Buffer.alloc(FRAME_BYTES), payload), payload]);
      }),
    );
    // Both states are sealed before the rename: a crash on either side of it leaves a file the seal accepts.
    const next = sealOf(bytes);
    await writeSeal(this.seal, [this.sealed, next]);
    await writeFileAtomic(this.file, bytes, { mode: 0o600 });
    await this.handle.close();
    this.handle = await open(this.file, 'a', 0o600);
    this.appended = recs.length;
    this.sealed = next;
    this.marked = true;
    await writeSeal(this.seal, [next]).catch(() => undefined);
  }

  // ---- receive side (the cashu method)

  intent(ref: string): { intent: SwapIntent; state: IntentState } | undefined {
    return this.intents.get(ref);
  }

  openIntents(): Array<{ intent: SwapIntent; state: IntentState }> {
    return [...this.intents.values()];
  }

  /** Whether `ref` is applied here (or was, before it was forgotten: APPLIED_KEPT). */
  isApplied(ref: string): boolean {
    return this.applied.has(ref);
  }

  /** A Lightning quote dropped because someone else minted it (the last CLAIMED_KEPT). */
  wasClaimed(ref: string): boolean {
    return this.claimed.has(ref);
  }

  claimedCount(): number {
    return this.claimed.size;
  }

  /** When the open intent `ref` was stranded by a silent mint, or null (it is not). */
  strandedSince(ref: string): number | null {
    return this.stranded.get(ref) ?? null;
  }

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

  /** Sat the open (not yet landed) swaps and invoices will bring; `counts`: only those it says hold room. */
  incoming(counts: (intent: SwapIntent) => boolean = () => true): bigint {
    let sum = 0n;
    for (const { intent, state } of this.intents.values())
      if (state === 'open' && counts(intent)) for (const o of intent.outputs) sum += BigInt(o.amount);
    return sum;
  }

  /**
   * What counts against max_balance, the one rule (balance-room.ts): the proofs held, those taken (a payout or
   * a keyset swap on its way out: a melt that fails or is found unpaid gives them back, so they leave the count only
   * once the mint has them) and what open swaps and invoices will bring (`counts`: those that hold room: an invoice
   * past its hold, or an intent its mint stranded, does not: invoice-slots.ts, intent-looks.ts).
   */
  exposure(counts?: (intent: SwapIntent) => boolean): bigint {
    // `held` keeps taken proofs until their take ends.
    let sum = this.incoming(counts);
    for (const { proof } of this.held.values()) sum += BigInt(proof.amount);
    return sum;
  }

  // ---- custody

  /** Held sat per mint; proofs taken (leaving) are not counted. */
  balances(): Map<string, bigint> {
    const taken = this.takenSecrets();
    const out = new Map<string, bigint>();
    for (const [secret, { mint, proof }] of this.held)
      if (!taken.has(secret)) out.set(mint, (out.get(mint) ?? 0n) + BigInt(proof.amount));
    return out;
  }

  total(): bigint {
    let sum = 0n;
    for (const v of this.balances().values()) sum += v;
    return sum;
  }

  proofsOf(mint: string): StoredProof[] {
    const taken = this.takenSecrets();
    return [...this.held.entries()]
      .filter(([s, h]) => h.mint === mint && !taken.has(s))
      .map(([, h]) => ({ ...h.proof }));
  }

  takes(): Take[] {
    return [...this.takesById.values()];
  }

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

  private takenSecrets(): Set<string> {
    const s = new Set<string>();
    for (const t of this.takesById.values()) for (const p of t.proofs) s.add(p.secret);
    return s;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle.close().catch(() => undefined);
  }
}
