/**
 * What an `upto` authorization waits on at its session's end (or at its deadline, settled early): the metered amount
 * on flash (`settling`) before its one /settle, the facilitator's answer written back, a settle without an answer
 * asked again (counted on flash first, so a refusal of a repeat is known as one) until it has one. The method
 * (x402-upto.ts) decides what a purchase may be; this moves its money once the session has used it.
 */
import { toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { Clock, Timers } from '../../time.ts';
import { meteredSteps } from '../../escrow/index.ts';
import type { FacilitatorClient, UptoRecord, UptoStore } from '../../x402/index.ts';
import { ScheduledPass } from '../scheduled-pass.ts';

/**
 * An authorization settled while its session runs (its deadline comes before the session's end): `allotment` is the
 * session's now; `shrink` takes from the session what the authorization's ceiling bought and nobody pays for any more.
 */
export interface EarlySettle {
  allotment: bigint;
  shrink(by: bigint): Promise<void>;
}

/** What a settle did: the amount settled (0n: nothing due, no transaction), or still pending, or refused. */
export type UptoSettleResult =
  | { status: 'settled'; amount: bigint; transaction: string | null }
  | { status: 'pending'; amount: bigint; message: string }
  | { status: 'failed'; amount: bigint; reason: string }
  | { status: 'none' };

export interface UptoSettlerOptions {
  store: UptoStore;
  /** The facilitator as configured now (a reload replaces it). */
  client(): FacilitatorClient;
  /** A settle without an answer is asked again after this. */
  retryMs: number;
  /** The method closed: no more asks are armed. */
  closed(): boolean;
  log?: Log | undefined;
  clock: Clock;
  timers?: Timers | undefined;
}

export class UptoSettler {
  /** Settles in flight: a second ask waits for the first (the chain would refuse the second anyway: one nonce). */
  private readonly sending = new Map<string, Promise<UptoSettleResult>>();
  private readonly retryMs: number;
  /** The settles without an answer asked again, retryMs after one is left so (scheduled-pass.ts). */
  readonly retries: ScheduledPass<void>;

  constructor(private readonly options: UptoSettlerOptions) {
    this.retryMs = options.retryMs;
    this.retries = new ScheduledPass({
      run: () => this.retryPending(),
      retry: { minMs: options.retryMs, maxMs: options.retryMs },
      halted: () => options.closed(),
      failed: (err) =>
        options.log?.warn('upto: asking again for settles failed', { reason: toSluiceError(err).message }),
      clock: options.clock,
      ...(options.timers && { timers: options.timers }),
    });
  }

  /**
   * The session paid by `reference` ended having used `used` (bytes or seconds): settles the metered steps × price
   * (at most the ceiling), once. The amount goes on flash before /settle; zero settles nothing. A second call, or one
   * for an authorization already settling, charges nothing new (it asks again for a pending one).
   * `early`: the session still runs (the authorization's deadline comes first): the record keeps the usage it covers
   * (whole steps, at most the ceiling's), its share from then on, and what its ceiling bought beyond that leaves the
   * session (`early.shrink`, marked on flash first) before /settle.
   */
  async settle(reference: string, used: bigint, early?: EarlySettle): Promise<UptoSettleResult> {
    const r = this.options.store.get(reference);
    if (!r) return { status: 'none' };
    if (r.state === 'settling') return this.send(await this.askedAgain(r));
    if (r.state !== 'open') return { status: 'none' };
    const max = BigInt(r.maxAmount);
    const pricePerStep = BigInt(r.pricePerStep);
    const stepSize = BigInt(r.stepSize);
    const maxSteps = pricePerStep === 0n ? 0n : max / pricePerStep;
    const steps = meteredSteps(used, stepSize, maxSteps);
    let amount = steps * pricePerStep;
    if (amount > max) amount = max;
    let intent: UptoRecord =
      amount === 0n
        ? { ...r, state: 'settled', amount: '0' }
        : { ...r, state: 'settling', amount: amount.toString(), asked: 1 };
    if (early) {
      const capacity = maxSteps * stepSize;
      const covered = steps * stepSize < capacity ? steps * stepSize : capacity;
      intent = { ...intent, covered: covered.toString() };
      if (covered < capacity) intent.shrink = { from: early.allotment.toString(), by: (capacity - covered).toString() };
    }
    await this.options.store.put(intent);
    if (intent.shrink && early) intent = await this.shrinkSession(intent, early.shrink);
    if (amount === 0n) {
      this.options.log?.info('upto session used nothing: nothing settled', { reference });
      return { status: 'settled', amount: 0n, transaction: null };
    }
    return this.send(intent);
  }

  /**
   * Takes from the session what `r`'s ceiling bought beyond the usage it was settled for, then drops the mark. Refused
   * (the journal): the mark stays, and the next start shrinks the session (UptoEnds.reconcile).
   */
  async shrinkSession(r: UptoRecord, shrink: (by: bigint) => Promise<void>): Promise<UptoRecord> {
    if (!r.shrink) return r;
    try {
      await shrink(BigInt(r.shrink.by));
    } catch (err) {
      this.options.log?.warn(
        'upto: the session could not be shrunk to what its settled authorization paid for; the next start does it',
        { reference: r.reference, reason: toSluiceError(err).message },
      );
      return r;
    }
    const { shrink: _done, ...rest } = this.options.store.get(r.reference) ?? r;
    await this.options.store.put(rest);
    return rest;
  }

  private send(r: UptoRecord): Promise<UptoSettleResult> {
    let pending = this.sending.get(r.reference);
    if (!pending) {
      pending = this.sendOnce(r).finally(() => this.sending.delete(r.reference));
      this.sending.set(r.reference, pending);
    }
    return pending;
  }

  private async sendOnce(r: UptoRecord): Promise<UptoSettleResult> {
    const amount = BigInt(r.amount ?? '0');
    if (!r.request) return { status: 'none' };
    const request = {
      ...r.request,
      paymentRequirements: { ...r.request.paymentRequirements, amount: amount.toString() },
    };
    let outcome;
    try {
      outcome = await this.options.client().settle(request);
    } catch (err) {
      outcome = { status: 'unknown' as const, message: toSluiceError(err).message };
    }
    if (outcome.status === 'unknown') {
      this.options.log?.warn('upto settle without an answer; asking again later', {
        reference: r.reference,
        amount: amount.toString(),
        reason: outcome.message,
      });
      this.retries.soon(this.retryMs);
      return { status: 'pending', amount, message: outcome.message };
    }
    if (outcome.status === 'failed') {
      // A refusal of a repeated ask may be the chain refusing a nonce an earlier, unanswered ask spent: not "nothing
      // moved".
      const repeated = (r.asked ?? 1) > 1;
      await this.options.store.put({ ...r, state: repeated ? 'unconfirmed' : 'failed', reason: outcome.reason });
      if (repeated) {
        this.options.log?.error(
          'upto settle refused on a repeated ask: an earlier ask may have moved the amount (once); check the ' +
            'chain for a transfer from the payer to pay_to',
          { reference: r.reference, amount: amount.toString(), reason: outcome.reason },
        );
      } else {
        this.options.log?.error('upto settle refused: nothing moved', {
          reference: r.reference,
          amount: amount.toString(),
          reason: outcome.reason,
        });
      }
      return { status: 'failed', amount, reason: outcome.reason };
    }
    await this.options.store.put({ ...r, state: 'settled', transaction: outcome.transaction });
    this.options.log?.info('upto session settled', {
      reference: r.reference,
      amount: amount.toString(),
      transaction: outcome.transaction,
    });
    return { status: 'settled', amount, transaction: outcome.transaction };
  }

  /** Asks /settle again for every amount on flash without an answer (at start, and on the retry timer). */
  async retryPending(): Promise<void> {
    for (const r of this.options.store.list('settling')) await this.send(await this.askedAgain(r));
  }

  /** Counts a repeated ask on flash before it is sent: a refusal of it is then known to be a repeat's. */
  private async askedAgain(r: UptoRecord): Promise<UptoRecord> {
    if (this.sending.has(r.reference)) return r;
    const again = { ...r, asked: (r.asked ?? 1) + 1 };
    await this.options.store.put(again);
    return again;
  }
}
