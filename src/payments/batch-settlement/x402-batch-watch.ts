/**
 * The customer's timed withdrawal, seen while a `batch-settlement` session is open (docs/batch-settlement.md "The
 * customer's escape hatch"). A withdrawal takes whatever the router has not claimed once `withdrawDelay` has passed;
 * a session's charge is only known (and claimable) at its end, so a session running longer than the delay could be
 * left unpaid. This watch refreshes the on-chain state of every channel with an open charge on a bounded schedule —
 * one facilitator `/verify` of the channel's stored voucher per open channel every `watchIntervalMs` (a quarter of
 * the delay, at least a minute), and once at start — and when a withdrawal shows it ends the session at once. The
 * session's end charges what it used and the settler claims it at once (x402-batch-ends.ts, x402-batch-settler.ts),
 * with three quarters of the delay still to go; the method refuses new vouchers on the channel meanwhile.
 *
 * Why `/verify` and not a chain read: the facilitator's voucher verify reads the channel from the chain afresh
 * (`channels`, `pendingWithdrawals`, `refundNonce`) and answers exactly the snapshot the spec's server mirrors; it is
 * the same source the rest of the method trusts, it needs no RPC endpoint in the `batch_settlement` section, and
 * @x402/evm's own server keeps its mirror fresh the same way (its `onchainStateTtlMs`, a third of the delay).
 *
 * Durable: the schedule needs nothing on flash of its own: the open charges are on flash (batch-channels.json), and a
 * start checks them all at once, so a withdrawal started while sluice was down is seen at the next start.
 */
import { toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { systemClock, type Clock, type Timers } from '../../time.ts';
import type { BatchChannelStore, ChannelRecord } from './batch-channels.ts';
import type { ChannelSnapshot } from '../../x402/index.ts';
import type { BatchSettlementMethod } from './x402-batch.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';

/** The watch never checks a channel more often than this (the delay's quarter of a 900 s minimum delay is 225 s). */
export const WATCH_MIN_INTERVAL_MS = 60_000;
/** A channel a purchase holds at check time is looked at again this soon. */
export const WATCH_BUSY_RETRY_MS = 5_000;

/** How often each open channel is checked: a quarter of the withdraw delay, at least WATCH_MIN_INTERVAL_MS. */
export function watchIntervalMs(withdrawDelaySeconds: number): number {
  return Math.max(WATCH_MIN_INTERVAL_MS, Math.floor((withdrawDelaySeconds * 1000) / 4));
}

/** Facilitator refusals that mean the channel no longer holds the open ceiling (a withdrawal already finalized). */
const GONE = /cumulative_exceeds_balance|channel_not_found/;

export interface WatchReport {
  /** Channels whose state was read. */
  checked: string[];
  /** Channels found withdrawing (or emptied) whose session was ended by this check. */
  ended: string[];
  /** Checks without an answer (the facilitator down, a refusal): tried again at the next interval. */
  failed: number;
}

export interface BatchWithdrawalWatchOptions {
  method: BatchSettlementMethod;
  store: BatchChannelStore;
  /**
   * Ends the live session paid by `reference` (its end charges what it used, and the claim follows); false when no
   * live session holds it (an end already under way: its charge follows by itself).
   */
  endSession: (reference: string, reason: string) => Promise<boolean>;
  log?: Log;
  clock?: Clock;
  timers?: Timers;
}

export class BatchWithdrawalWatch {
  private readonly clock: Clock;
  /**
   * The check on its timer (scheduled-pass.ts): at start, then every interval; a failed one again an interval later.
   */
  private readonly checks: ScheduledPass<WatchReport>;

  constructor(private readonly options: BatchWithdrawalWatchOptions) {
    this.clock = options.clock ?? systemClock;
    this.checks = new ScheduledPass({
      run: () => this.run(),
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
      // A check that failed is tried again an interval later (the interval follows the delays: intervalMs).
      retry: () => ({ minMs: this.intervalMs, maxMs: this.intervalMs }),
      failed: (err) =>
        options.log?.warn('batch-settlement withdrawal watch failed; will retry', {
          reason: toSluiceError(err).message,
        }),
      // Checks on a timer only between start() and stop().
      halted: () => !this.checks.started,
    });
  }

  /**
   * From the shortest delay that matters: the configured one, or an open channel's own (a channel opened before a
   * reload raised `withdraw_delay` keeps the delay it was opened with).
   */
  get intervalMs(): number {
    let delay = this.options.method.settings.withdrawDelay;
    for (const r of this.options.store.list())
      if (r.open && r.config.withdrawDelay < delay) delay = r.config.withdrawDelay;
    return watchIntervalMs(delay);
  }

  /** Checks every open channel now (or joins the check running). */
  check(): Promise<WatchReport> {
    return this.checks.run();
  }

  private async run(): Promise<WatchReport> {
    const report: WatchReport = { checked: [], ended: [], failed: 0 };
    let busy = false;
    for (const listed of this.options.store.list()) {
      if (!listed.open) continue;
      // A purchase on the channel writes the record from its own /verify: the two must not interleave.
      if (!this.options.method.lockChannel(listed.channelId)) {
        busy = true;
        continue;
      }
      let seen: { reference: string; reason: string } | null;
      try {
        seen = await this.refresh(listed.channelId, report);
      } finally {
        this.options.method.unlockChannel(listed.channelId);
      }
      if (!seen) continue;
      // Outside the lock: the end charges the channel (and a top-up racing it is refused by the method).
      try {
        if (await this.options.endSession(seen.reference, seen.reason)) report.ended.push(listed.channelId);
      } catch (err) {
        report.failed++;
        this.options.log?.warn('batch-settlement: cannot end the session of a withdrawing channel; will retry', {
          channel: listed.channelId,
          reason: toSluiceError(err).message,
        });
      }
    }
    this.checks.soon(busy ? WATCH_BUSY_RETRY_MS : this.intervalMs);
    return report;
  }

  /** Reads one channel; returns the open session to end when the channel is withdrawing or emptied. */
  private async refresh(channelId: string, report: WatchReport): Promise<{ reference: string; reason: string } | null> {
    const store = this.options.store;
    const r = store.get(channelId);
    if (!r?.open) return null;
    const method = this.options.method;
    let answer;
    try {
      answer = await method.facilitator.verify({
        paymentPayload: this.voucherEnvelope(r),
        paymentRequirements: method.requirements(r.config.token, 0n),
      });
    } catch (err) {
      report.failed++;
      this.options.log?.warn('batch-settlement withdrawal watch: no answer; will retry', {
        channel: channelId,
        reason: toSluiceError(err).message,
      });
      return null;
    }
    report.checked.push(channelId);
    if (!answer.ok) {
      if (GONE.test(answer.reason)) {
        this.options.log?.warn(
          "batch-settlement: the channel no longer holds the open session's ceiling; ending the session",
          { channel: channelId, reason: answer.reason },
        );
        return { reference: r.open.reference, reason: answer.reason };
      }
      report.failed++;
      this.options.log?.warn(
        'batch-settlement withdrawal watch: the facilitator refused the stored voucher; will retry',
        { channel: channelId, reason: answer.reason },
      );
      return null;
    }
    // Read again: the session may have ended (and been charged) while the facilitator answered.
    const current = store.get(channelId);
    if (!current) return null;
    // Written only when the chain moved: a router's flash need not take the whole table every interval per session.
    if (changed(current, answer.snapshot)) await store.put(mirrored(current, answer.snapshot, this.clock.now()));
    if (answer.snapshot.withdrawRequestedAt === 0 || !current.open) return null;
    this.options.log?.warn(
      'batch-settlement: the customer started a timed withdrawal; ending the session and claiming its charge',
      {
        channel: channelId,
        withdrawRequestedAt: answer.snapshot.withdrawRequestedAt,
        withdrawDelay: r.config.withdrawDelay,
        reference: current.open.reference,
      },
    );
    return { reference: current.open.reference, reason: 'withdrawal-started' };
  }

  /**
   * The channel's latest voucher as a voucher payload (what a returning client would send): /verify reads the chain.
   */
  private voucherEnvelope(r: ChannelRecord): Record<string, unknown> {
    return {
      x402Version: 2,
      accepted: this.options.method.requirements(r.config.token, 0n),
      payload: {
        type: 'voucher',
        channelConfig: r.config,
        voucher: { channelId: r.channelId, maxClaimableAmount: r.signedMax.toString(), signature: r.signature },
      },
    };
  }

  /**
   * Its checks as the plugin host drives them: once the start's reconcile has ended (the open charges reconciled) a
   * check at once, then one per interval; stopped when the plugin closes: the method's exchanges end (a facilitator
   * holding a /verify must not hold the stop) and the check in flight is awaited.
   */
  readonly background: BackgroundPass = {
    afterReconcile: true,
    start: () => this.checks.start(),
    stop: async () => {
      const stopped = this.checks.stop();
      this.options.method.close();
      await stopped;
    },
  };
}

function changed(r: ChannelRecord, s: ChannelSnapshot): boolean {
  return (
    r.balance !== s.balance ||
    r.totalClaimed !== s.totalClaimed ||
    r.withdrawRequestedAt !== s.withdrawRequestedAt ||
    r.refundNonce !== s.refundNonce
  );
}

/** The record with the facilitator's fresh view of the chain. */
export function mirrored(r: ChannelRecord, s: ChannelSnapshot, now: number): ChannelRecord {
  return {
    ...r,
    balance: s.balance,
    totalClaimed: s.totalClaimed,
    withdrawRequestedAt: s.withdrawRequestedAt,
    refundNonce: s.refundNonce,
    syncedAt: now,
  };
}
