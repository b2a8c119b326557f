/**
 * The typed, validated configuration sluice runs on, loaded from /etc/config/sluice (UCI).
 * Durations are milliseconds, amounts in the asset's smallest unit are bigint. docs/configuration.md documents every
 * option with its UCI name, default and range; keep the two in step.
 */

import type { Metric } from './values.ts';
import type { WalledGardenConfig } from './walled-garden.ts';

/** `main.portal`: which portal gates the clients; 'sluice' is sluice's own gate (portal/own-gate.ts). */
export type PortalFlavour = 'auto' | 'opennds' | 'nodogsplash' | 'sluice';

export interface MainConfig {
  enabled: boolean;
  /** Directory on flash for the session journal (`main.state_dir`). */
  stateDir: string;
  /** ndsctl command as argv: a path, optionally followed by arguments (e.g. a wrapper entering a netns). */
  ndsctl: readonly string[];
  /**
   * `main.ndsctl_socket`: the portal's control socket, spoken directly instead of spawning ndsctl. 'auto' looks in
   * the portals' default places (only while `ndsctl` is the stock command), 'off' always runs the command, a path
   * uses that socket (the command is the fallback while it is absent).
   */
  ndsctlSocket: string;
  portal: PortalFlavour;
  /** `main.poll_interval` (seconds in UCI, may be fractional). */
  pollIntervalMs: number;
  /** `main.checkpoint_interval` (seconds in UCI): how often usage is written to flash. */
  checkpointIntervalMs: number;
  /** `main.ndsctl_timeout` (seconds in UCI). */
  ndsctlTimeoutMs: number;
  /** Piscina worker threads for the usage engine (`main.workers`). */
  workers: number;
  /** Identifies this router upstream (RADIUS NAS-Identifier, MQTT topic). */
  routerId: string;
  /** `main.ubus_socket`. */
  ubusSocket: string;
  /** `main.log_level`. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** `main.leave_foreign_clients`: do not deauth clients authenticated in the portal by other means (default off). */
  leaveForeignClients: boolean;
  /**
   * `main.venue`: the venue this router belongs to (docs/roaming.md); '' (default): none. Its sessions follow their
   * device to the venue's other routers, through the fleet's lease service; needs mqtt with commands on.
   */
  venue: string;
  /** `main.venue_present_window` (seconds in UCI): a device billed traffic this recently is still here (default 1). */
  venuePresentWindowMs: number;
  /**
   * `main.venue_lease_ttl` (seconds in UCI): the fleet's `--lease-ttl` (default 90). A venue session's device passes
   * here only while the daemon renews it within this, less a margin (upstream/venue-lease-time.ts).
   */
  venueLeaseTtlMs: number;
  /**
   * `main.min_read_interval` (seconds in UCI): the shortest gap between two readings of the portal when the meter reads
   * early (a session nearing its allotment). Each `json` costs the portal work (openNDS runs iptables -L twice), so a
   * weak router may trade cut precision for CPU here; scheduled cuts at the predicted crossing are not bound by it.
   */
  minReadIntervalMs: number;
  /** `main.portal_output_max` in bytes: the most one portal answer (`json`) may have. */
  portalOutputMax: number;
  /**
   * `main.kernel_quota`: give each data session a kernel byte quota (nftables, sluice's own table) that stops the
   * client at its allotment to the byte, under the portal's polled gate (portal/kernel-quota.ts). Default off.
   */
  kernelQuota: boolean;
  /** `main.nft`: the nft command as argv (e.g. a wrapper entering the portal's network namespace). */
  nft: readonly string[];
  /**
   * `main.shape_device`: overrides the LAN device(s) the portal gates (names separated by spaces; none = the portal's
   * own, gate/hotspot.ts): where the kernel meters and brakes on every one, and plans' download rates are shaped
   * (portal/shaper.ts).
   */
  shapeDevices: readonly string[];
  /** `main.tc`: the tc command as argv (like `nft`). */
  tc: readonly string[];
  /** `main.walled_garden` and `main.walled_garden_ports`: hosts a client reaches before it pays (walled-garden.ts). */
  walledGarden: WalledGardenConfig;
}

/** One `config pricing '<id>'` section: a plan customers can buy. The first plan is the default. */
export interface PricingPlan {
  id: string;
  metric: Metric;
  /** Bytes or seconds per step. */
  stepSize: bigint;
  /** Price of one step in the asset's smallest unit. */
  pricePerStep: bigint;
  asset: string;
  currency: string;
  decimals: number;
  minSteps: bigint;
  maxSteps: bigint;
  /**
   * `time_limit` (data plans only; seconds in UCI): a session sold by this plan also ends this long after the sale,
   * whichever comes first — "1 GiB valid for 24 hours". A top-up adds bytes; the deadline stays. Absent: no deadline.
   */
  timeLimit?: bigint;
  /**
   * `trial_every` (seconds in UCI): a free trial — price 0, its allowance `min_steps` steps, once per device per this
   * interval, sold only by the `trial` method (src/payments/trial/trial.ts says what keys a device). Absent: not a
   * trial.
   */
  trialEvery?: bigint;
  /**
   * `trial_limit`: at most this many trials of this plan per `trial_every` on this router, all devices together
   * (0 = no cap). Set on every trial plan (DEFAULT_TRIAL_LIMIT when the option is absent), never on another.
   */
  trialLimit?: number;
  /**
   * `devices`: how many devices one purchase covers, sharing its one allotment (the buyer's page shows a code the
   * others type on theirs). Absent = 1 (the seed's single device, with the device-limit switch).
   */
  devices?: number;
  /**
   * `display_name`: what customers read as the plan's title (the pay page, ubus `pricing`); absent: the section name.
   */
  displayName?: string;
  /**
   * `rate_down` / `rate_up` (bits per second in UCI units: `2mbit`, `512kbit`): a speed tier. The kernel limits each
   * client of this plan from its gate opening to its close (src/portal/shaper.ts). Absent: not limited that way.
   */
  rateDownBps?: number;
  rateUpBps?: number;
}

export type { RadiusConfig } from './radius.ts';
import type { RadiusConfig } from './radius.ts';
export type { X402Config } from './x402.ts';
import type { X402Config } from './x402.ts';
export type { HttpConfig } from './http.ts';
import type { HttpConfig } from './http.ts';

export type { MqttConfig } from './mqtt.ts';
import type { MqttConfig } from './mqtt.ts';

export type { HookConfig } from './hook.ts';
import type { HookConfig } from './hook.ts';

export type { EscrowConfig } from './escrow.ts';
import type { EscrowConfig } from './escrow.ts';
export type { BatchRefundPolicy, BatchSettlementConfig } from './batch-settlement.ts';
import type { BatchSettlementConfig } from './batch-settlement.ts';
export type { UptoConfig } from './upto.ts';
import type { UptoConfig } from './upto.ts';
export type { TollgateConfig } from './tollgate.ts';
import type { TollgateConfig } from './tollgate.ts';

export interface LimitsConfig {
  /** 0 = unlimited. */
  maxDevicesPerUser: number;
  /** Upper bound on concurrently active sessions (0 = unlimited). */
  maxSessions: number;
}

export interface Config {
  main: MainConfig;
  pricing: readonly PricingPlan[];
  radius: RadiusConfig;
  mqtt: MqttConfig;
  escrow: EscrowConfig;
  x402: X402Config;
  batchSettlement: BatchSettlementConfig;
  upto: UptoConfig;
  /** TollGate's door and the `cashu` method; null: absent, disabled, or disabled by a problem. */
  tollgate: TollgateConfig | null;
  http: HttpConfig;
  hook: HookConfig;
  limits: LimitsConfig;
  /** What each payment plugin's own section reads as (load.ts OwnSection), by its type; absent: none brings one. */
  sections?: Readonly<Record<string, unknown>>;
}
