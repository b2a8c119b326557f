/**
 * The money side of `batch-settlement` after the sessions: one pass, run on a timer, that
 *  1. claims every channel whose charge is above what is claimed on chain, all in ONE `claim` (claimWithSignature
 *     over many channels), per receiver authorizer;
 *  2. settles (one transfer of everything claimed to the receiver, per token);
 *  3. refunds the unused balance of channels with no session open, as the refund policy says.
 * Each step is harmless to repeat, which is what makes a facilitator outage or a kill -9 only a delay: a claim is
 * cumulative (a row at or below what is claimed changes nothing), settle moves only what is claimed and unsettled,
 * a refund spends the channel's refund nonce and asks for at most what is left. A step without an answer is simply
 * run again at the next pass; its effects are read back from the facilitator's next answer.
 */
import type { PrivateKeyAccount } from 'viem/accounts';
import { toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { systemClock, type Clock, type Timers } from '../../time.ts';
import type { BatchChannelStore, ChannelRecord } from './batch-channels.ts';
import { claimBatchTypedData, evm, refundTypedData, type ClaimRow, type Hex } from '../../x402/index.ts';
import type { BatchSettlementMethod } from './x402-batch.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';

/** A charge waits this long for others to share its claim transaction. */
export const CLAIM_BATCH_WINDOW_MS = 5000;
/** How soon a pass that could not finish is tried again. */
export const SETTLE_RETRY_MS = 30_000;

export interface PassReport {
  claimed: string[];
  claimTransactions: string[];
  settled: Array<{ token: string; amount: string; transaction: string }>;
  refunded: Array<{ channelId: string; amount: string; transaction: string }>;
  /** Steps that got no answer or a refusal: retried. */
  pending: number;
}

export interface BatchSettlerOptions {
  method: BatchSettlementMethod;
  store: BatchChannelStore;
  log?: Log;
  clock?: Clock;
  timers?: Timers;
}

export class BatchSettler {
  private readonly clock: Clock;
  /** The pass on its timer (scheduled-pass.ts); none is scheduled once the method is closed. */
  private readonly passes: ScheduledPass<PassReport>;

  constructor(private readonly options: BatchSettlerOptions) {
    this.clock = options.clock ?? systemClock;
    this.passes = new ScheduledPass({
      run: () => this.run(),
      retry: { minMs: SETTLE_RETRY_MS, maxMs: SETTLE_RETRY_MS },
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
      failed: (err) =>
        options.log?.warn('batch-settlement pass failed; will retry', { reason: toSluiceError(err).message }),
      // A pass cut short by the stop (its claims unanswered) is the next start's, not a timer's.
      halted: () => options.method.isClosed,
    });
  }

  private requirements(token: string): Record<string, unknown> {
    return this.options.method.requirements(token, 0n);
  }

  /** Runs one pass (or joins the one running). */
  pass(): Promise<PassReport> {
    return this.passes.run();
  }

  private async run(): Promise<PassReport> {
    const report: PassReport = { claimed: [], claimTransactions: [], settled: [], refunded: [], pending: 0 };
    const client = this.options.method.facilitator;
    const cfg = this.options.method.settings;
    const store = this.options.store;
    const key = this.options.method.authorizerKey;
    const signer = key ? evm().privateKeyToAccount(key) : undefined;

    // 1. Claims: the rows of every channel charged above its claim, one transaction per token.
    const byToken = new Map<string, ChannelRecord[]>();
    for (const r of store.list()) {
      if (r.charged > r.totalClaimed) byToken.set(r.config.token, [...(byToken.get(r.config.token) ?? []), r]);
    }
    const toSettle = new Set<string>();
    for (const [token, records] of byToken) {
      const claims: ClaimRow[] = records.map((r) => ({
        voucher: {
          channel: { ...r.config, withdrawDelay: r.config.withdrawDelay } as ClaimRow['voucher']['channel'],
          maxClaimableAmount: r.signedMax.toString(),
        },
        signature: r.signature as Hex,
        totalClaimed: r.charged.toString(),
      }));
      const payload: Record<string, unknown> = { type: 'claim', claims };
      if (signer)
        payload.claimAuthorizerSignature = await signer.signTypedData(claimBatchTypedData(claims, cfg.chainId));
      const out = await client.settle({
        paymentPayload: this.envelope(token, payload),
        paymentRequirements: this.requirements(token),
      });
      if (out.status !== 'settled') {
        report.pending++;
        this.options.log?.warn('batch-settlement claim not done; will retry', {
          channels: records.length,
          reason: out.status === 'failed' ? out.reason : out.message,
        });
        continue;
      }
      for (const r of records) {
        const now = store.get(r.channelId);
        if (!now) continue;
        if (now.totalClaimed < r.charged) now.totalClaimed = r.charged;
        await store.put(now);
        report.claimed.push(r.channelId);
      }
      report.claimTransactions.push(out.transaction);
      toSettle.add(token);
    }

    // 2. Settle what was claimed (also what an earlier pass claimed but could not settle: the facilitator says
    //    "nothing to settle" then, which is done too).
    for (const token of toSettle) {
      const out = await client.settle({
        paymentPayload: this.envelope(token, { type: 'settle', receiver: cfg.receiver, token }),
        paymentRequirements: this.requirements(token),
      });
      if (out.status === 'settled')
        report.settled.push({ token, amount: (out.amount ?? 0n).toString(), transaction: out.transaction });
      else if (!(out.status === 'failed' && /nothing_to_settle/.test(out.reason))) report.pending++;
    }

    // 3. Refunds of what no session will use, by the policy or because the customer asked.
    for (const listed of store.list()) {
      if (!this.refundDue(listed)) continue;
      // No purchase may accept a voucher against the balance this refund is about to lower.
      if (!this.options.method.lockChannel(listed.channelId)) {
        report.pending++;
        continue;
      }
      try {
        await this.refund(listed.channelId, report, signer);
      } finally {
        this.options.method.unlockChannel(listed.channelId);
      }
    }
    if (report.pending > 0) this.schedule(SETTLE_RETRY_MS);
    // Policy `idle`: a channel not yet idle long enough is refunded by a pass at the moment it will be, not by
    // whichever purchase or restart happens to run the next pass.
    const nextIdle = this.nextIdleRefundAt();
    if (nextIdle !== undefined) this.schedule(Math.max(0, nextIdle - this.clock.now()));
    return report;
  }

  /** When the earliest channel waiting out `refund_idle` becomes due, or undefined when none waits. */
  private nextIdleRefundAt(): number | undefined {
    const cfg = this.options.method.settings;
    if (cfg.refund !== 'idle') return undefined;
    let at: number | undefined;
    for (const r of this.options.store.list()) {
      if (r.open || r.refund?.state === 'requested' || r.balance <= r.charged || r.idleSince === undefined) continue;
      const due = r.idleSince + cfg.refundIdleMs;
      if (at === undefined || due < at) at = due;
    }
    return at;
  }

  private async refund(channelId: string, report: PassReport, signer: PrivateKeyAccount | undefined): Promise<void> {
    const store = this.options.store;
    const cfg = this.options.method.settings;
    const client = this.options.method.facilitator;
    const r = store.get(channelId);
    if (!r || !this.refundDue(r)) return;
    const left = r.balance - r.charged;
    if (left <= 0n) {
      // Asked for, but nothing is left: done (an earlier refund or the customer's withdrawal took it).
      await store.put({ ...r, refund: { state: 'done', amount: 0n, transaction: '', at: this.clock.now() } });
      return;
    }
    const asked = r.refund?.state === 'requested' ? r.refund.amount : undefined;
    const amount = asked !== undefined && asked < left ? asked : left;
    if (r.totalClaimed < r.charged) {
      report.pending++;
      return;
    } // claim first, or the refund would take the charge
    {
      const payload: Record<string, unknown> = {
        type: 'refund',
        channelConfig: r.config,
        voucher: { channelId: r.channelId, maxClaimableAmount: r.signedMax.toString(), signature: r.signature },
        amount: amount.toString(),
        refundNonce: r.refundNonce.toString(),
        claims: [],
      };
      if (signer)
        payload.refundAuthorizerSignature = await signer.signTypedData(
          refundTypedData(r.channelId as Hex, r.refundNonce, amount, cfg.chainId),
        );
      const out = await client.settle({
        paymentPayload: this.envelope(r.config.token, payload),
        paymentRequirements: this.requirements(r.config.token),
      });
      const now = store.get(r.channelId);
      if (!now) return;
      if (out.status === 'settled') {
        const s = out.snapshot;
        now.balance = s ? s.balance : now.balance - (out.amount ?? amount);
        now.totalClaimed = s ? s.totalClaimed : now.totalClaimed;
        now.refundNonce = s ? s.refundNonce : now.refundNonce + 1n;
        now.withdrawRequestedAt = s ? s.withdrawRequestedAt : now.withdrawRequestedAt;
        now.syncedAt = this.clock.now();
        now.refund = {
          state: 'done',
          amount: out.amount ?? amount,
          transaction: out.transaction,
          at: this.clock.now(),
        };
        await store.put(now);
        report.refunded.push({
          channelId: r.channelId,
          amount: (out.amount ?? amount).toString(),
          transaction: out.transaction,
        });
      } else if (out.status === 'failed' && /refund_no_balance/.test(out.reason)) {
        // Nothing left to refund: an earlier refund landed (its answer lost) or the customer withdrew.
        now.balance = now.charged;
        now.refund = { state: 'done', amount: 0n, transaction: '', at: this.clock.now() };
        await store.put(now);
      } else {
        report.pending++;
        this.options.log?.warn('batch-settlement refund not done; will retry', {
          channel: r.channelId,
          reason: out.status === 'failed' ? out.reason : out.message,
        });
      }
    }
  }

  private refundDue(r: ChannelRecord): boolean {
    const cfg = this.options.method.settings;
    if (r.open) return false;
    // The customer asked (on flash): whatever the policy, until it is done.
    if (r.refund?.state === 'requested') return true;
    if (r.balance <= r.charged || r.idleSince === undefined) return false;
    if (cfg.refund === 'at-end') return true;
    if (cfg.refund === 'idle') return this.clock.now() - r.idleSince >= cfg.refundIdleMs;
    return false;
  }

  /** The x402 envelope the facilitator's /settle takes for a server-authored payload. */
  private envelope(token: string, payload: Record<string, unknown>): Record<string, unknown> {
    return { x402Version: 2, accepted: { ...this.requirements(token) }, payload };
  }

  /**
   * A charge was written: its claim goes out with the others within the batch window — at once for a channel the
   * customer is withdrawing from (the claim must land before the withdrawal can be finalized).
   */
  charged(record?: ChannelRecord): void {
    this.schedule(record && record.withdrawRequestedAt !== 0 ? 0 : CLAIM_BATCH_WINDOW_MS);
  }

  private schedule(ms: number): void {
    this.passes.soon(ms);
  }

  /**
   * Its passes as the plugin host drives them: the first once the start's reconcile has ended (what a restart or an
   * outage left, the charges it wrote among them), stopped when the plugin closes: the method's exchanges end (a
   * facilitator holding a claim must not hold the stop; a claim cut so is the next start's) and the pass in flight is
   * awaited.
   */
  readonly background: BackgroundPass = {
    afterReconcile: true,
    start: () => this.passes.start(),
    stop: async () => {
      const stopped = this.passes.stop();
      this.options.method.close();
      await stopped;
    },
  };
}
