/**
 * What an `x402-session` purchase waits on after its call has answered, in one pass over the escrow ledger: a create
 * without an answer asked about until its deposit is found (granted late, once) or can no longer land (dropped); the
 * latest receipt of a live session consumed on chain; an ended session closed after its close_grace with the highest
 * receipt (the seller paid what it claims, the buyer refunded the rest). The method (x402-session.ts) decides what a
 * purchase may be and schedules this pass.
 */
import type { PaymentRef } from '../../sessions/index.ts';
import { toSluiceError } from '../../errors.ts';
import type { Clock } from '../../time.ts';
import type { EscrowConfig } from '../../config/index.ts';
import type { EscrowClose, EscrowEntry, EscrowFacilitatorClient, EscrowLedger, Outcome } from '../../escrow/index.ts';
import { grantLate } from '../late-grant.ts';
import type { PurchaseHold } from '../x402-purchase.ts';
import { CLOSE_RETRY_MS, METHOD_NAME, PENDING_MARGIN_SECONDS, type X402SessionOptions } from './terms.ts';

export interface EscrowClosePassOptions extends Pick<X402SessionOptions, 'log' | 'sessions' | 'onClosed'> {
  ledger: EscrowLedger;
  /** The facilitator and the config as they are now (a reload replaces them). */
  client(): EscrowFacilitatorClient;
  config(): EscrowConfig;
  clock: Clock;
  /** The purchases' hold: a purchase in flight and this pass never work on one escrow session at once. */
  hold: PurchaseHold;
  /** A pass within `ms` (the owner's scheduled pass). */
  schedule(ms: number): void;
}

/** The facilitator's definite "no such session" (HTTP 404 or its reason): nothing landed on chain under that id. */
export function isNotFound(view: Outcome<unknown>): boolean {
  return view.status === 'refused' && (view.httpStatus === 404 || view.reason === 'session_not_found');
}

/** The network an entry's session was sold on (entries from before this was recorded: the config's). */
export function networkOf(e: EscrowEntry, config: EscrowConfig): string {
  return e.network ?? config.network;
}

export class EscrowClosePass {
  constructor(private readonly options: EscrowClosePassOptions) {}

  private networkOf(e: EscrowEntry): string {
    return networkOf(e, this.options.config());
  }

  /** A pending purchase whose deposit landed: grant it (once: a session holding the reference is not granted again). */
  private async lateGrant(e: EscrowEntry): Promise<boolean> {
    const p = e.pending!;
    const sessions = this.options.sessions;
    if (!sessions) return false;
    const payment: PaymentRef = {
      method: METHOD_NAME,
      reference: e.sessionId,
      amount: BigInt(p.amount),
      asset: p.asset,
      at: p.at,
      steps: BigInt(p.steps),
    };
    const grant = {
      mac: e.mac,
      metric: p.metric,
      allotment: BigInt(p.allotment),
      plan: p.plan,
      payment,
      ...(p.ip !== undefined && { ip: p.ip }),
    };
    const done = await grantLate(
      sessions,
      grant,
      {
        granted: 'escrow purchase granted after a late create',
        failed: 'escrow late grant failed; will retry',
        fields: { session: e.sessionId },
      },
      { log: this.options.log },
    );
    if (!done) return false;
    await this.options.ledger.setPending(e.sessionId, undefined);
    return true;
  }

  /**
   * Pending purchases: found → granted; not found after validBefore (+ a margin for clocks) → dropped, nothing taken.
   */
  private async resolvePending(now: number): Promise<number> {
    const ledger = this.options.ledger;
    let pending = 0;
    for (const e of ledger.pendingGrants()) {
      if (this.options.hold.has(e.sessionId)) {
        pending++;
        continue;
      }
      // Held by a session already (its purchase is being written or just was): the `started` event or the next
      // start's reconcile clears the mark; nothing to ask.
      if (this.options.sessions?.isApplied({ method: METHOD_NAME, reference: e.sessionId })) continue;
      this.options.hold.take(e.sessionId);
      try {
        const view = await this.options.client().get(this.networkOf(e), e.sessionId);
        if (view.status === 'done' && view.value.buyer.toLowerCase() === e.buyer.toLowerCase()) {
          if (!(await this.lateGrant(e))) pending++;
        } else if (
          isNotFound(view) &&
          BigInt(e.pending!.validBefore) + PENDING_MARGIN_SECONDS < BigInt(Math.floor(now / 1000))
        ) {
          await ledger.forget(e.sessionId);
          this.options.log?.info('escrow pending purchase failed; nothing was taken', { session: e.sessionId });
        } else pending++;
      } catch (err) {
        pending++;
        this.options.log?.warn('escrow pending purchase: resolve failed', {
          session: e.sessionId,
          reason: toSluiceError(err).message,
        });
      } finally {
        this.options.hold.release(e.sessionId);
      }
    }
    return pending;
  }

  /** One pass: pending purchases asked about, due receipts consumed, due sessions closed; how many are left. */
  async run(): Promise<number> {
    const ledger = this.options.ledger;
    const now = this.options.clock.now();
    let pending = await this.resolvePending(now);
    // Periodic consume: the latest receipt of a live session goes on chain (cumulative, so a retry or a replay of an
    // older one is a no-op there); what the chain recorded is kept so the same receipt is not sent twice.
    for (const e of ledger.dueToConsume()) {
      const r = e.receipt!;
      const out = await this.options.client().consume({
        sessionId: e.sessionId,
        network: this.networkOf(e),
        units: r.cumulativeUnits.toString(),
        nonce: r.nonce.toString(),
        buyerSignature: r.signature,
      });
      if (out.status === 'done') await ledger.consumed(e.sessionId, r.cumulativeUnits);
      else if (out.status === 'refused')
        this.options.log?.warn('escrow consume refused; the close carries the receipt', {
          session: e.sessionId,
          reason: out.reason,
        });
      else {
        pending++;
        this.options.log?.warn('escrow consume not done; will retry', { session: e.sessionId, reason: out.message });
      }
    }
    for (const e of ledger.dueToClose(now, this.options.config().closeGraceMs)) {
      const r = e.receipt;
      const out = await this.options.client().close({
        sessionId: e.sessionId,
        network: this.networkOf(e),
        ...(r && { units: r.cumulativeUnits.toString(), nonce: r.nonce.toString(), buyerSignature: r.signature }),
      });
      if (out.status === 'done') {
        const units = (r?.cumulativeUnits ?? e.consumedUnits ?? 0n).toString();
        await this.settled(e.sessionId, { ...out.value, units });
        this.options.log?.info('escrow session closed', { session: e.sessionId, mac: e.mac, units, ...out.value });
        continue;
      }
      if (out.status === 'refused') {
        const view = await this.options.client().get(this.networkOf(e), e.sessionId);
        if (view.status === 'done' && view.value.status !== 'active' && view.value.status !== '1') {
          // Closed by a close whose answer was lost: the chain's figures, its transaction unknown here. The buyer got
          // the deposit minus what was consumed (remainingAmount is 0 once the session is closed).
          await this.settled(e.sessionId, {
            transaction: '',
            sellerAmount: view.value.consumedAmount,
            buyerRefund: (BigInt(view.value.totalDeposit) - BigInt(view.value.consumedAmount)).toString(),
            units: view.value.unitsUsed,
          });
          continue;
        }
        this.options.log?.warn('escrow close refused; will retry', { session: e.sessionId, reason: out.reason });
      }
      pending++;
    }
    if (pending > 0) this.options.schedule(CLOSE_RETRY_MS);
    // Ended sessions still in their close_grace: woken when the first is due (an earlier wake-up, a consume's, must
    // not leave them waiting for the next event or restart).
    const next = ledger.nextCloseDue(this.options.clock.now(), this.options.config().closeGraceMs);
    if (next !== undefined) this.options.schedule(next - this.options.clock.now() + 1);
    return pending;
  }

  private async settled(sessionId: string, close: EscrowClose): Promise<void> {
    await this.options.ledger.closed(sessionId, close);
    try {
      this.options.onClosed?.(sessionId, close);
    } catch {
      /* a listener's failure is not the close's */
    }
  }
}
