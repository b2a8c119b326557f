/**
 * What the x402 `exact` method waits on once the money step is out of its hands: a /settle without an answer (or one
 * refused as "nonce used"), decided by proof (x402-resolve.ts) and written to flash; a settled purchase the merchant
 * has not applied, granted late, exactly once; records past their window, dropped. The purchase steps
 * (x402-exact.ts) decide; this keeps asking until there is an answer: at start, every RESOLVE_INTERVAL_MS while any
 * purchase is pending, and when the customer retries the same payload.
 */
import { toSluiceError } from '../../errors.ts';
import type { Clock } from '../../time.ts';
import type { PaymentRef } from '../../sessions/index.ts';
import type { ChainReader, FacilitatorClient, PurchaseRecord, SearchWindow, X402Store } from '../../x402/index.ts';
import { grantLate } from '../late-grant.ts';
import { resolveSettle, type PendingOutcome } from '../x402-resolve.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { RESOLVE_INTERVAL_MS, type ResolveReport, type X402MethodOptions } from './options.ts';

/** A settled purchase handed to the merchant is left alone this long before the pass grants it itself. */
const HANDED_OUT_MS = 60_000;

export interface SettleResolverOptions extends Pick<X402MethodOptions, 'sessions' | 'log' | 'timers'> {
  method: string;
  store: X402Store;
  clock: Clock;
  /** The peers as configured now (a reload replaces them); chain null without x402.rpc_url. */
  peers(): { chain: ChainReader | null; facilitator: FacilitatorClient; payTo: string };
  /** Keys a purchase in flight holds: the pass leaves them alone. */
  held(key: string): boolean;
}

/** The purchase a record stands for, as the merchant is handed it. */
export function paymentOf(method: string, r: PurchaseRecord): PaymentRef {
  return {
    method,
    reference: r.key,
    amount: BigInt(r.value),
    asset: r.asset,
    at: r.at,
    steps: BigInt(r.steps),
  };
}

export class SettleResolver {
  /** Block windows found for pending records (so a later round does not search for them again). */
  private readonly windows = new Map<string, SearchWindow>();
  /** Keys being decided or granted right now: a retry of one waits for its word (pending). */
  private readonly resolving = new Set<string>();
  /** Settled keys handed to the merchant and not yet seen applied or released. */
  private readonly handedOut = new Map<string, number>();
  /**
   * The pass (scheduled-pass.ts): again every RESOLVE_INTERVAL_MS while a purchase is pending. Its stop ends the
   * facilitator and chain exchanges in flight (they take its signal): a slow peer does not hold the daemon's stop.
   */
  private readonly pass: ScheduledPass<ResolveReport>;

  constructor(private readonly options: SettleResolverOptions) {
    this.pass = new ScheduledPass({
      run: () => this.doResolve(),
      next: (r) => (r.pending > 0 ? RESOLVE_INTERVAL_MS : undefined),
      retry: { minMs: RESOLVE_INTERVAL_MS, maxMs: RESOLVE_INTERVAL_MS },
      clock: options.clock,
      ...(options.timers && { timers: options.timers }),
      failed: (err) =>
        options.log?.warn('x402 resolve pass failed; will retry', { reason: toSluiceError(err).message }),
    });
  }

  /** What the peers' exchanges take: stop() ends them. */
  get signal(): AbortSignal {
    return this.pass.signal;
  }

  isResolving(key: string): boolean {
    return this.resolving.has(key);
  }

  wasHandedOut(key: string): boolean {
    return this.handedOut.has(key);
  }

  /** A settled purchase handed to the merchant: the pass leaves it alone a while. */
  handOut(record: PurchaseRecord): PaymentRef {
    this.handedOut.set(record.key, this.options.clock.now());
    return paymentOf(this.options.method, record);
  }

  /** The merchant could not grant it: the pass may grant it at once. */
  released(key: string): void {
    this.handedOut.delete(key);
  }

  /** A pass within RESOLVE_INTERVAL_MS. */
  soon(): void {
    this.pass.soon(RESOLVE_INTERVAL_MS);
  }

  /** A pass now, joined if one runs (serialised). */
  run(): Promise<ResolveReport> {
    return this.pass.run();
  }

  /** Another chain or facilitator: the windows found were another's. */
  forgetWindows(): void {
    this.windows.clear();
  }

  stop(): Promise<void> {
    return this.pass.stop();
  }

  /**
   * Settles the question of one `settling` or `unconfirmed` record (x402-resolve.ts) and writes the answer: `settled`
   * (money reached pay_to), `void` (its nonce was spent without paying; kept so the same payload is refused with its
   * reason), `unconfirmed` (kept for a chain lookup), or removed when it failed. With `grant`, a settled purchase is
   * granted here (the pass's path).
   */
  async resolveOne(r: PurchaseRecord, options: { grant: boolean }): Promise<PendingOutcome> {
    const { store, log } = this.options;
    const peers = this.options.peers();
    const outcome = await resolveSettle(r, {
      chain: peers.chain,
      facilitator: peers.facilitator,
      payTo: peers.payTo,
      windows: this.windows,
      log,
      nowSeconds: BigInt(Math.floor(this.options.clock.now() / 1000)),
    });
    if (outcome.kind !== 'pending') this.windows.delete(r.key);
    if (outcome.kind === 'pending') return outcome;
    if (outcome.kind === 'failed') {
      await store.remove(r.key);
      log?.info('x402 pending purchase failed; no money moved', { key: r.key, reason: outcome.reason });
      return outcome;
    }
    if (outcome.kind === 'void') {
      await store.put({ ...r, state: 'void', voided: outcome.how, transaction: outcome.transaction });
      log?.warn('x402 authorization spent on chain without paying; not granted', {
        key: r.key,
        how: outcome.how,
        transaction: outcome.transaction,
      });
      return outcome;
    }
    if (outcome.kind === 'unconfirmed') {
      if (r.state !== 'unconfirmed') {
        await store.put({ ...r, state: 'unconfirmed' });
        log?.warn(
          'x402 settle cannot be confirmed; not granted until a chain lookup (x402.rpc_url) proves the transfer',
          { key: r.key, reason: outcome.reason },
        );
      }
      return outcome;
    }
    const settled: PurchaseRecord = {
      ...r,
      state: 'settled',
      ...(outcome.transaction && { transaction: outcome.transaction }),
    };
    await store.put(settled);
    if (options.grant) await this.grant(settled);
    return outcome;
  }

  private async grant(r: PurchaseRecord): Promise<boolean> {
    const grant = {
      mac: r.mac,
      metric: r.metric,
      allotment: BigInt(r.allotment),
      plan: r.plan,
      payment: paymentOf(this.options.method, r),
      ...(r.ip !== undefined && { ip: r.ip }),
    };
    const done = await grantLate(
      this.options.sessions,
      grant,
      {
        granted: 'x402 purchase granted after a late settle',
        failed: 'x402 late grant failed; will retry',
        fields: { key: r.key },
      },
      { log: this.options.log },
    );
    if (!done) return false;
    await this.options.store.put({ ...r, state: 'applied' });
    return true;
  }

  /**
   * Finishes what a crash or a silent facilitator left: `settling` records are asked about, `settled` ones not yet
   * in a session are granted, `applied` ones past their window are dropped.
   */
  private async doResolve(): Promise<ResolveReport> {
    const { store, sessions, log, clock } = this.options;
    const report: ResolveReport = { granted: 0, failed: 0, pending: 0, unconfirmed: 0 };
    for (const r of store.list()) {
      if (this.options.held(r.key)) continue;
      this.resolving.add(r.key);
      try {
        // An unconfirmed record is only worth a look with a chain to ask (a repeated settle already said nothing).
        if (r.state === 'settling' || (r.state === 'unconfirmed' && this.options.peers().chain)) {
          const outcome = await this.resolveOne(r, { grant: true });
          if (outcome.kind === 'settled') report.granted++;
          else if (outcome.kind === 'failed' || outcome.kind === 'void') report.failed++;
          else if (outcome.kind === 'unconfirmed') report.unconfirmed++;
          else report.pending++;
        } else if (r.state === 'unconfirmed') {
          report.unconfirmed++;
        } else if (r.state === 'settled') {
          const handed = this.handedOut.get(r.key);
          if (sessions.isApplied({ method: this.options.method, reference: r.key })) {
            this.handedOut.delete(r.key);
            await store.put({ ...r, state: 'applied' });
          } else if (handed === undefined || clock.now() - handed > HANDED_OUT_MS) {
            if (await this.grant(r)) report.granted++;
            else report.pending++;
          } else report.pending++;
        }
      } catch (err) {
        report.pending++;
        log?.warn('x402 resolve failed', { key: r.key, reason: toSluiceError(err).message });
      } finally {
        this.resolving.delete(r.key);
      }
    }
    const dropped = store.prune(BigInt(Math.floor(clock.now() / 1000)));
    for (const r of dropped.filter((d) => d.state === 'unconfirmed')) {
      // The last word on it: what an operator needs to look the transfer up by hand.
      log?.warn('x402 unconfirmed purchase dropped after 7 days; never granted', {
        key: r.key,
        mac: r.mac,
        value: r.value,
        asset: r.asset,
        network: r.network,
        pay_to: r.payTo ?? this.options.peers().payTo,
      });
    }
    if (dropped.length > 0) await store.flush().catch(() => undefined);
    return report;
  }
}
