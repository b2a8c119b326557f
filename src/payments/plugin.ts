/**
 * The payment-method plugin contract (STYLE.md point 13, in the manner of rpcd's `struct rpc_plugin`): a method is a
 * folder exporting one PaymentPlugin, payments/plugins.ts lists them, and the composition root (daemon.ts) loops over
 * the list through PaymentPlugins (plugin-host.ts) without naming one. A plugin opens from the config into a
 * PaymentPart: the PaymentMethods the merchant sells through, and the optional hooks the daemon runs at its own
 * moments (reconcile at start, a reload's settings, usage, start, stop) and the faces it serves (ubus, the LAN).
 */
import type { Config, RunningParts } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { Session, SessionManager } from '../sessions/index.ts';
import type { EndRecordsTap } from './end-records.ts';
import type { EscrowCredit, EscrowSessionClosed, HoldingGate } from './escrow-credit.ts';
import type { TrialFigures } from './trial.ts';
import type { PaymentMethod } from './types.ts';
import type { BatchSettlementMethod } from './x402-batch.ts';
import type { X402Method } from './x402-exact.ts';
import type { UptoMethod } from './x402-upto.ts';

/** The config switches a plugin is built by (switching one takes a restart: config/reload-diff.ts). */
export type MethodSwitch = Exclude<keyof RunningParts, 'main' | 'http' | 'radius'>;

/** What the root hands every plugin when it opens. */
export interface PluginContext {
  config: Config;
  sessions: SessionManager;
  /** The gate's holds (escrow credit). */
  gate: HoldingGate;
  /** A plan's step size (escrow credit steps). */
  stepSizeOf: (plan: string | null) => bigint | undefined;
  /** Ends on flash: a method settles or closes after a session's end is durable (payments/end-records.ts). */
  endsWritten: EndRecordsTap;
  log: Log;
}

/** The root's parts a method announces through (structural: payments/ does not import upstream/ or api/). */
export interface PaymentHost {
  upstream: { escrowClosed(session: Session | null, mac: string, figures: EscrowSessionClosed['figures']): void };
  events: { followEscrow(source: EscrowCredit): void };
}

/** What a method serves over ubus (api/daemon-backend.ts's parts). */
export interface UbusFace {
  receipt?: (args: Record<string, unknown>) => Promise<{ sessionId: string; cumulativeUnits: bigint; advanced: boolean }>;
  escrowOf?: (session: Session) => ReturnType<EscrowCredit['escrowOf']>;
  batch?: BatchSettlementMethod;
}

/** What a method serves over the LAN endpoint (http/index.ts's LanMethods). */
export interface LanFace {
  x402?: X402Method;
  batch?: BatchSettlementMethod;
  upto?: UptoMethod;
  /** Escrow receipts (POST /receipt). */
  escrow?: true;
  /** Free trials (POST /trial). */
  trial?: true;
}

/** An opened plugin: its methods and the hooks the root runs. Every hook is optional. */
export interface PaymentPart {
  readonly methods: readonly PaymentMethod[];
  /** A reload that leaves the method on: its settings (facilitator, network, addresses, grace) apply now. */
  reconfigure?(next: Config): void;
  /** At start, against the journal just recovered (what ended while down is settled or closed once). */
  reconcile?(): Promise<void>;
  /** Right after the start's reconcile (awaited or gone to the background). */
  reconciled?(): void;
  /** Holds that follow from the method's state, re-evaluated before the start tick and after every reload. */
  recheck?(): Promise<void>;
  /** Once the daemon runs (ubus, LAN, gates, sinks): work left by a restart or an outage. */
  start?(): void;
  /** One tick's usage. */
  usage?(batch: ReadonlyArray<{ sessionId: string }>): void;
  /** Subscribes the root's publishers to the method's own events. */
  wire?(host: PaymentHost): void;
  /** Stop: ends the facilitator exchanges in flight and flushes state. */
  close?(): Promise<void>;
  readonly ubus?: UbusFace;
  readonly lan?: LanFace;
  /** Free-trial figures (ubus `stats`). */
  readonly trials?: TrialFigures;
}

export interface PaymentPlugin {
  /** The method's name, as logs and a left-out method (method-state.ts) say it. */
  readonly name: string;
  /** The config switch that builds it; absent: always built (cheap, so a reload's plans find it). */
  readonly switch?: MethodSwitch;
  /** Opens the method; a damaged state file or unloadable code leaves it out (method-state.ts). */
  open(ctx: PluginContext): Promise<PaymentPart>;
}
