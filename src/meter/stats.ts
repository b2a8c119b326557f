/** The engine's figures for `ubus call sluice stats` (field names are the reply's, snake_case). */
import type { TickReport } from './options.ts';
import type { SkipReason, UsageResult } from './task.ts';

export interface MeterStats {
  ticks: number;
  ticks_ok: number;
  /** Skipped snapshots by reason (busy, timeout, unreachable, failed, truncated, invalid-number, invalid-json, …). */
  skipped: Partial<Record<SkipReason, number>>;
  /** Clients in the last good snapshot. */
  clients: number;
  /** Distinct MACs in the counter table. */
  clients_tracked: number;
  tick_ms_last: number;
  tick_ms_p50: number;
  tick_ms_p90: number;
  fetch_ms_last: number;
  snapshot_bytes_last: number;
  /** Milliseconds since the epoch of the last tick's end (0 before the first). */
  last_tick_at: number;
  /** Snapshots the scanner handed to JSON.parse. */
  fallbacks: number;
  new_epochs: number;
  flavour: string;
  next_tick_in_ms: number;
  /** One client's readings taken to cut a data session between ticks (Meter option readClient), and their time. */
  final_readings: number;
  /** Braked data sessions ended because the kernel quota stopped them (Meter option kernelQuota). */
  kernel_quota_ends: number;
  /** Of those, the ones an audit found stopped by the kernel while sluice's count left more (bytes passed unbilled). */
  kernel_quota_unbilled_ends: number;
  /** Fresh quotas given to braked sessions the kernel stopped more than a few KiB short (a dropped big segment). */
  kernel_quota_refills: number;
  /** Quotas the kernel held with more than their session had left (reset or made again behind sluice), re-armed. */
  kernel_quota_rearms: number;
  /** Times a shared session's bytes left were split among its devices' kernel quotas (shared-quota.ts). */
  kernel_quota_splits: number;
  final_read_ms: number;
  /** Where the ticks read usage: the kernel's counters (listing the portal now and then) or the portal's listing. */
  usage_from: 'kernel' | 'portal';
  /** Ticks that read the portal's listing (every good tick when usage comes from the portal). */
  portal_listings: number;
  /**
   * With the kernel's counters, those listings by what asked for them (meter/listing-policy.ts: `first`, `changed`,
   * `portal-restart`, `unlisted`, `moved`, `stalled`, `safety-net`; `lookup`: a LAN lookup waiting for an address).
   */
  portal_listings_by_reason?: Record<string, number>;
  /**
   * With the portal's own deauths reported (the package's BinAuth on openNDS: portal/binauth-watch.ts): whether they
   * are now, and how many were. Not reported (no BinAuth, or none run yet): a paying client whose counters stopped is
   * listed for.
   */
  portal_deauths_watched?: boolean;
  portal_deauths_reported?: number;
}

const WINDOW = 128;

export class MeterStatsRecorder {
  private ticks = 0;
  private ok = 0;
  private readonly skipped: Partial<Record<SkipReason, number>> = {};
  private clients = 0;
  private readonly durations: number[] = [];
  private lastDuration = 0;
  private lastFetch = 0;
  private lastBytes = 0;
  private lastAt = 0;
  private fallbacks = 0;
  private newEpochs = 0;
  private flavour = 'unknown';
  private nextIn = 0;

  recordTick(report: TickReport, now: number, result: Extract<UsageResult, { ok: true }> | undefined): void {
    this.ticks++;
    this.lastDuration = report.durationMs;
    this.lastFetch = report.fetchMs;
    this.lastAt = now;
    this.nextIn = report.nextInMs;
    this.durations.push(report.durationMs);
    if (this.durations.length > WINDOW) this.durations.shift();
    if (report.skipped !== undefined) {
      this.skipped[report.skipped] = (this.skipped[report.skipped] ?? 0) + 1;
      return;
    }
    this.ok++;
    this.clients = report.clients;
    if (result) {
      this.lastBytes = result.snapshotBytes;
      if (result.fallback) this.fallbacks++;
      this.newEpochs += result.newEpochs;
      this.flavour = result.flavour;
    }
  }

  snapshot(tracked: number): MeterStats {
    const sorted = [...this.durations].sort((a, b) => a - b);
    const pick = (q: number): number =>
      sorted.length === 0 ? 0 : round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      ticks: this.ticks,
      ticks_ok: this.ok,
      skipped: { ...this.skipped },
      clients: this.clients,
      clients_tracked: tracked,
      tick_ms_last: round(this.lastDuration),
      tick_ms_p50: pick(0.5),
      tick_ms_p90: pick(0.9),
      fetch_ms_last: round(this.lastFetch),
      snapshot_bytes_last: this.lastBytes,
      last_tick_at: this.lastAt,
      fallbacks: this.fallbacks,
      new_epochs: this.newEpochs,
      flavour: this.flavour,
      next_tick_in_ms: Math.round(this.nextIn),
      final_readings: 0,
      kernel_quota_ends: 0,
      kernel_quota_unbilled_ends: 0,
      kernel_quota_refills: 0,
      kernel_quota_rearms: 0,
      kernel_quota_splits: 0,
      final_read_ms: 0,
      usage_from: 'portal',
      portal_listings: this.ok,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
