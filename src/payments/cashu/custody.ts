/**
 * The operator's side of the ecash the router holds: the custody pass and what ubus `cashu_balance`
 * and `cashu_payout` (and LuCI's TollGate page) call. The pass runs at start and every minute (every 15 s while a
 * payout or a swap is open): every melt and swap on its way out is resolved (payout.ts, retire.ts), held proofs on a
 * retired keyset are swapped off it, and a mint whose balance reached `payout_min` is paid out to `payout_address`.
 * One operation at a time (a payout asked over ubus waits for the pass, and the other way round). Every exchange is
 * bounded (http-client.ts) and ended at stop. Replies carry amounts, counts, mint URLs and quote ids: never a proof,
 * a secret, an output or an invoice.
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { TollgateConfig } from '../../config/index.ts';
import { backgroundTimers, systemClock, type Clock, type TimerHandle, type Timers } from '../../time.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { MeltClient } from '../../cashu/index.ts';
import type { MintHealth } from './mint-health.ts';
import { MintReads } from './mint-reads.ts';
import { OutgoingBook } from './outgoing.ts';
import { giveBack, resolveMelt, startPayout, type CustodyPort, type PayoutOutcome } from './payout.ts';
import { resolveSwap, retireKeysets } from './retire.ts';
import type { CashuStore } from './store.ts';
import type { KeysetEntry } from '../../cashu/index.ts';

const PASS_EVERY_MS = 60_000;
const PASS_WHILE_OPEN_MS = 15_000;
/** A payout that failed is not tried again by itself for this long (asked over ubus, it is). */
const AUTO_AFTER_FAILURE_MS = 10 * 60_000;
/** cashu_payout answers within this; the payout goes on (its state shows in cashu_balance). */
export const PAYOUT_ANSWER_MS = 10_000;
const READ_TIMEOUT_MS = 10_000;

/** What ubus reaches (the plugin's UbusFace `cashu`). */
export interface CashuCustodyFace {
  balance(): Record<string, unknown>;
  payout(mint?: string): Promise<Record<string, unknown>>;
}

export interface CashuCustodyOptions {
  store: CashuStore;
  stateDir: string;
  tollgate: TollgateConfig;
  log?: Log;
  clock?: Clock;
  timers?: Timers;
  /**
   * The cashu method's reads of its mints: one cache of keyset keys (immutable) and one MintHealth for both (its
   * keyset reads at start and before a token count too). Without it (the custody alone) the custody reads its own.
   */
  mints?: Pick<MintReads, 'keysOf' | 'health'>;
}

export class CashuCustody implements CashuCustodyFace {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly clients = new Map<string, MeltClient>();
  private readonly failedAt = new Map<string, number>();
  private readonly pass: ScheduledPass<number>;
  private readonly port: CustodyPort;
  private chain: Promise<unknown> = Promise.resolve();
  private tollgate: TollgateConfig;
  private readonly reads: Pick<MintReads, 'keysOf' | 'health'>;
  private readonly health: MintHealth;

  private constructor(
    readonly store: CashuStore,
    readonly book: OutgoingBook,
    private readonly options: CashuCustodyOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? backgroundTimers;
    this.tollgate = options.tollgate;
    this.pass = new ScheduledPass<number>({
      run: () => this.exclusive(() => this.cycle()),
      next: (open) => (open > 0 ? PASS_WHILE_OPEN_MS : PASS_EVERY_MS),
      retry: { minMs: PASS_WHILE_OPEN_MS, maxMs: 10 * PASS_EVERY_MS },
      failed: (err, ms) =>
        options.log?.warn('cashu: custody pass failed; tried again', {
          reason: toSluiceError(err).message,
          retry_in_ms: ms,
        }),
      clock: this.clock,
      timers: this.timers,
    });
    const signal = this.pass.signal;
    this.reads =
      options.mints ??
      new MintReads({
        clock: this.clock,
        signal,
        log: options.log,
      });
    this.health = this.reads.health;
    this.port = {
      store,
      book: this.book,
      log: options.log,
      now: () => this.clock.now(),
      client: (mint) => this.client(mint),
      keysets: (mint) => this.keysetsOf(mint),
      keysOf: (mint, id) => this.reads.keysOf(mint, id),
      lnurl: () => ({ timeoutMs: READ_TIMEOUT_MS, signal }),
    };
  }

  static open(options: CashuCustodyOptions): CashuCustody {
    return new CashuCustody(options.store, OutgoingBook.open(options.stateDir), options);
  }

  reconfigure(next: TollgateConfig): void {
    this.tollgate = next;
  }

  private client(mint: string): MeltClient {
    let c = this.clients.get(mint);
    if (!c) {
      c = new MeltClient(mint, {
        timeoutMs: READ_TIMEOUT_MS,
        swapTimeoutMs: 60_000,
        signal: this.pass.signal,
      });
      this.clients.set(mint, c);
    }
    return c;
  }

  private async keysetsOf(mint: string): Promise<KeysetEntry[]> {
    const answer = await this.client(mint).keysets();
    if (answer.kind !== 'ok') {
      throw this.health.failed(
        mint,
        this.clock.now(),
        new SluiceError(
          'ERR_CASHU_MINT_UNAVAILABLE',
          `the mint's keysets cannot be read (${answer.kind === 'refused' ? answer.detail : answer.message})`,
          { details: { mint } },
        ),
      );
    }
    this.health.answered(mint, this.clock.now());
    return answer.value;
  }

  /** One custody operation at a time. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** At start, before anything is sold: every take and record a crash left, to its end as far as the mints tell. */
  reconcile(): Promise<number> {
    return this.exclusive(() => this.resolveOpen());
  }

  /** One pass now (or the one in flight): resolves with how many operations are still open. */
  runPass(): Promise<number> {
    return this.pass.run();
  }

  /**
   * The custody pass as the plugin's host drives it (PluginHost.background): its first run at once when started, then
   * every minute; its stop ends the exchanges in flight.
   */
  get background(): BackgroundPass {
    return this.pass;
  }

  private async resolveOpen(): Promise<number> {
    let open = 0;
    for (const take of this.store.takes()) {
      if (this.book.byTake(take.id)) continue;
      // Taken, never recorded: the request was never sent. Held again once the mint says the proofs are unspent.
      const done = await giveBack(
        take.id,
        take.mint,
        this.port,
        async () => true,
        () => false,
      ).catch(() => false);
      if (!done) open++;
    }
    for (const record of [...this.book.open()]) {
      try {
        if (!this.store.takes().some((t) => t.id === record.take)) {
          // The take ended and the crash came before its record did: nothing is owed either way.
          await this.book.end(
            record.take,
            record.kind === 'melt' ? { state: 'paid', ended: this.clock.now() } : undefined,
          );
          continue;
        }
        if (record.kind === 'melt') {
          const outcome = await resolveMelt(record, this.port);
          if (outcome.state === 'pending') open++;
          if (outcome.state === 'failed') this.failedAt.set(record.mint, this.clock.now());
        } else if ((await resolveSwap(record, this.port)) === 'later') {
          open++;
        }
      } catch (err) {
        open++;
        this.options.log?.warn('cashu: resolving a payout or keyset swap failed; tried again', {
          mint: record.mint,
          reason: toSluiceError(err).message,
        });
      }
    }
    return open;
  }

  /** Mints with ecash held or accepted: the ones the pass and the reply look at. */
  private mints(): string[] {
    return [...new Set([...this.tollgate.mints, ...this.store.balances().keys()])];
  }

  private async cycle(): Promise<number> {
    let open = await this.resolveOpen();
    for (const mint of this.mints()) {
      // Nothing held there: nothing to retire or pay out (and no reason to ask the mint).
      if (this.store.proofsOf(mint).length === 0) continue;
      try {
        await retireKeysets(mint, this.port);
        if (this.autoPayoutDue(mint)) {
          const outcome = await startPayout(mint, this.tollgate.payoutAddress, this.port);
          if (outcome.state === 'pending') open++;
          if (outcome.state === 'failed') this.failedAt.set(mint, this.clock.now());
        }
      } catch (err) {
        this.failedAt.set(mint, this.clock.now());
        this.options.log?.warn("cashu: custody of a mint's ecash needs attention", {
          mint,
          reason: toSluiceError(err).message,
        });
      }
    }
    return open + this.book.open().length;
  }

  private autoPayoutDue(mint: string): boolean {
    if (this.tollgate.payoutAddress === '') return false;
    if ((this.store.balances().get(mint) ?? 0n) < this.tollgate.payoutMin) return false;
    if (this.book.open().some((o) => o.kind === 'melt' && o.mint === mint)) return false;
    const failed = this.failedAt.get(mint);
    return failed === undefined || this.clock.now() - failed >= AUTO_AFTER_FAILURE_MS;
  }

  /**
   * ubus cashu_balance: per mint, held sat, proof count, payouts under way, and whether it answered when last asked
   * (reachable, checked_at, last_error: mint-health.ts). Never a proof or a secret.
   */
  balance(): Record<string, unknown> {
    const balances = this.store.balances();
    const counts = new Map<string, number>();
    for (const mint of balances.keys()) counts.set(mint, this.store.proofsOf(mint).length);
    const taken = new Map<string, bigint>();
    for (const t of this.store.takes())
      taken.set(
        t.mint,
        t.proofs.reduce((s, p) => s + BigInt(p.amount), taken.get(t.mint) ?? 0n),
      );
    const mints = this.mints().map((mint) => {
      const melts = this.book.open().filter((o) => o.mint === mint && o.kind === 'melt');
      return {
        mint,
        accepted: this.tollgate.mints.includes(mint),
        balance: balances.get(mint) ?? 0n,
        proofs: counts.get(mint) ?? 0,
        pending_payouts: melts.length,
        pending_sat: melts.reduce((s, o) => s + BigInt(o.inputTotal), 0n),
        keyset_swaps: this.book.open().filter((o) => o.mint === mint && o.kind === 'swap').length,
        // From the take on flash, before a payout's or a swap's record: `balance` + taken_sat never dips mid-move.
        taken_sat: taken.get(mint) ?? 0n,
        ...this.health.view(mint),
      };
    });
    return {
      total: this.store.total(),
      max_balance: this.tollgate.maxBalance,
      payout_min: this.tollgate.payoutMin,
      payout_address: this.tollgate.payoutAddress,
      mints,
      payouts: this.book.payouts().map((p) => ({
        mint: p.mint,
        quote: p.quote,
        state: p.state,
        amount: p.amount,
        input_fee: p.inputFee,
        fee_reserve: p.feeReserve,
        lightning_fee: p.lightningFee ?? null,
        change: p.change ?? null,
        at: Math.floor(p.at / 1000),
        ended: p.ended === undefined ? null : Math.floor(p.ended / 1000),
        reason: p.reason ?? null,
      })),
    };
  }

  /**
   * ubus cashu_payout: pays out `mint` (default: the one holding most) now, whatever payout_min says. Answers within
   * PAYOUT_ANSWER_MS with the payout's state; one still running goes on (cashu_balance shows it).
   */
  async payout(mint?: string): Promise<Record<string, unknown>> {
    if (this.tollgate.payoutAddress === '') {
      throw new SluiceError(
        'ERR_CASHU_PAYOUT_NO_ADDRESS',
        'no payout address is set (tollgate.payout_address: a Lightning address, name@host)',
      );
    }
    const balances = this.store.balances();
    // Default: the mint holding most; with nothing held, the one whose payout is under way (its state read again).
    const target =
      mint ??
      [...balances].filter(([, v]) => v > 0n).sort((a, b) => (a[1] > b[1] ? -1 : a[1] < b[1] ? 1 : 0))[0]?.[0] ??
      this.book.open().find((o) => o.kind === 'melt')?.mint;
    if (target === undefined) return view({ mint: '', state: 'nothing', reason: 'no ecash is held' });
    if (!this.mints().includes(target))
      throw new SluiceError(
        'ERR_INVALID_ARGUMENT',
        `mint: ${target.slice(0, 200)} is not a mint this router holds or accepts`,
        { details: { argument: 'mint' } },
      );
    const work = this.exclusive(async () => {
      // A payout already under way (asked before, or the pass's) is read again, never started twice.
      const open = this.book.open().find((o) => o.kind === 'melt' && o.mint === target);
      if (open?.kind === 'melt') return resolveMelt(open, this.port);
      return startPayout(target, this.tollgate.payoutAddress, this.port);
    });
    void work.then(
      (o) => {
        if (o.state === 'pending') this.pass.soon(PASS_WHILE_OPEN_MS);
      },
      () => undefined,
    );
    let timer: TimerHandle | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = this.timers.setTimeout(() => resolve('late'), PAYOUT_ANSWER_MS);
    });
    try {
      const first = await Promise.race([work, late]);
      if (first === 'late')
        return view({ mint: target, state: 'pending', reason: 'the mint has not answered yet; the payout goes on' });
      return view(first);
    } finally {
      this.timers.clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.pass.stop();
    await this.chain.catch(() => undefined);
    await this.book.settled().catch(() => undefined);
  }
}

function view(o: PayoutOutcome): Record<string, unknown> {
  return {
    mint: o.mint,
    state: o.state,
    quote: o.quote ?? null,
    amount: o.amount ?? null,
    input_fee: o.inputFee ?? null,
    fee_reserve: o.feeReserve ?? null,
    lightning_fee: o.lightningFee ?? null,
    change: o.change ?? null,
    reason: o.reason ?? null,
  };
}
