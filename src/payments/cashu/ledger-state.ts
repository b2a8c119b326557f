/**
 * What the Cashu ledger's records mean (store.ts keeps them on flash): the proofs held by mint, the swaps on their way
 * in (intents), the proofs on their way out (takes), the payments applied and the quotes claimed by someone else. Pure:
 * a record applied here changes memory only; the store appends it durably first.
 */
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

export type LedgerRecord =
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
export const APPLIED_KEPT = 5000;
/** A dropped intent's `why` when its Lightning quote was minted by someone else (the payer is told; lightning.ts). */
export const CLAIMED = 'claimed: minted by someone else';
/** Claimed quotes remembered, so the page still says so after a restart. */
const CLAIMED_KEPT = 500;

/** The ledger's records applied in memory, and what they say. */
export class CashuLedger {
  protected readonly held = new Map<string, { mint: string; proof: StoredProof }>();
  protected readonly intents = new Map<string, { intent: SwapIntent; state: IntentState }>();
  /** Applied references and when they were marked applied (what the journal holds is checked against them). */
  private readonly applied = new Map<string, number>();
  /** Applied references were forgotten (APPLIED_KEPT) up to this time: the journal's older ones are not checked. */
  private forgottenBefore = 0;
  /** The ledger's own mark that it was sealed (its first record): without its seal file it is damage. */
  protected marked = false;
  private readonly claimed = new Set<string>();
  /** Open intents a silent mint stranded, and since when (intent-looks.ts): on flash, so a restart keeps them so. */
  private readonly stranded = new Map<string, number>();
  protected readonly takesById = new Map<string, Take>();

  /**
   * The journal's references this ledger knows nothing of (not applied, not an intent, not forgotten), oldest first.
   */
  protected missingOf(journal: ReadonlyMap<string, number>): string[] {
    return [...journal]
      .filter(([ref, at]) => at > this.forgottenBefore && !this.applied.has(ref) && !this.intents.has(ref))
      .sort((a, b) => a[1] - b[1])
      .map(([ref]) => ref);
  }

  /**
   * Why `r` cannot be applied to the state as it is now (apply would throw), or null. Asked as the record's turn to be
   * written comes, not when it was asked for: a record queued behind the one that ends its intent or take must not
   * reach the file, which every later start reads back through apply.
   */
  protected unappliable(r: LedgerRecord): string | null {
    if (r.t === 'landed' && !this.intents.has(r.ref)) return `no swap intent ${r.ref} to land`;
    if (r.t === 'spent' && !this.takesById.has(r.id)) return `no take ${r.id} to spend`;
    return null;
  }

  protected apply(r: LedgerRecord): void {
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

  /** The same state in fewest records (a compaction's). */
  protected records(): LedgerRecord[] {
    // The mark first: a ledger cut anywhere still says it was sealed.
    const recs: LedgerRecord[] = [{ t: 'sealed', v: 1 }];
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
    return recs;
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

  protected takenSecrets(): Set<string> {
    const s = new Set<string>();
    for (const t of this.takesById.values()) for (const p of t.proofs) s.add(p.secret);
    return s;
  }
}
