/**
 * The payment-method plugin contract (STYLE.md point 13, in the manner of rpcd's `struct rpc_plugin`): a method is a
 * folder exporting one PaymentPlugin, payments/plugins.ts lists them, and the composition root (daemon.ts) loops over
 * the list through PaymentPlugins (plugin-host.ts) without naming one. A plugin opens from the config into a
 * PaymentPart: the PaymentMethods the merchant sells through, and the optional hooks the daemon runs at its own
 * moments (reconcile at start, a reload's settings, usage, start, stop) and the faces it serves (ubus, the LAN).
 */
import type { Config, RunningParts } from '../config/index.ts';
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { Session, SessionManager } from '../sessions/index.ts';
import type { EndRecordsTap } from './end-records.ts';
import type { EscrowCredit, EscrowSessionClosed, HoldingGate } from './escrow-session/escrow-credit.ts';
import type { TrialFigures } from './trial/trial.ts';
import type { PaymentMethod, Quote } from './types.ts';
import type { BatchSettlementMethod } from './batch-settlement/x402-batch.ts';

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

/**
 * What an opened method serves over ubus: what its own ubus methods (PaymentPlugin.ubusMethods) call, and the fields
 * it adds to a session's `session` reply.
 */
export interface UbusFace {
  receipt?: (args: Record<string, unknown>) => Promise<{ sessionId: string; cumulativeUnits: bigint; advanced: boolean }>;
  batch?: BatchSettlementMethod;
  /** Added to ubus `session`'s session (escrow: `escrow`, its deposit, receipts and close); null: nothing to add. */
  sessionFields?: (session: Session) => Record<string, unknown> | null;
}

/** A ubus argument's policy, as api/args.ts checks it (structural: payments/ does not import api/). */
export interface UbusArgSpec {
  kind: 'mac' | 'string' | 'amount' | 'count' | 'table' | 'boolean';
  required?: boolean;
  oneOf?: readonly string[];
  maxLength?: number;
}

/**
 * A ubus method of the `sluice` object a method brings (docs/ubus-api.md; api/methods.ts adds it to its table, so it
 * exists, and the ACL names it, whether or not the method runs). Its handler gets the arguments as api/args.ts checked
 * them against `args` (a count as bigint, a table as a table), and the method's own face: null when it does not run.
 */
export interface UbusMethod {
  args: Readonly<Record<string, UbusArgSpec>>;
  adminOnly: boolean;
  handler(args: Readonly<Record<string, unknown>>, face: UbusFace | null): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** What api/args.ts's InvalidArgumentError says (the same code, message and details; payments/ does not import api/). */
export function invalidArgument(argument: string, reason: string): SluiceError {
  return new SluiceError('ERR_INVALID_ARGUMENT', `${argument}: ${reason}`, { details: { argument } });
}

/** What a method serves over the LAN endpoint (http/index.ts's LanMethods). */
export interface LanFace {
  /** A buyer-signed escrow usage receipt (POST /receipt). */
  receipt?: UbusFace['receipt'];
  batch?: BatchSettlementMethod;
  /** Methods the config switches on that did not open (their state cannot be read back): their routes answer 503. */
  unavailable?: readonly string[];
  /** The running methods' x402 faces, in the list's order (PaymentPlugins.lan fills it). */
  schemes?: readonly X402Face[];
}

/** A method's x402 scheme as the LAN endpoint's /buy and /plans name it (known whether or not the method runs). */
export interface X402Scheme {
  /** The scheme its payloads name (`accepted.scheme`). */
  readonly scheme: string;
  /** The payment method a payload of the scheme is bought with (`payment.method`). */
  readonly method: string;
  /** Its key in /plans: the `methods` flag and each plan's offer. */
  readonly planKey: string;
  /** Each plan lists its offer even when the method is off (null): the page has always read `x402` so. */
  readonly alwaysListed?: true;
  /** Takes a payload that names no running scheme (in the list's order; none: the first such scheme's method). */
  readonly takesUnnamed?: true;
  /** A refusal's `details.reason` is the 402's `error` (the spec's reason, which the client acts on). */
  readonly reasonAsError?: true;
  /** A refusal carries the spec's corrective channel and voucher states in the scheme's offer. */
  readonly corrective?: true;
  /** Running, it makes /captive say this router sells (upto alone has not: left as found). */
  readonly sells?: true;
}

/** A running method's x402 face: its offer for a quote and the settle it answers a purchase with. */
export interface X402Face extends X402Scheme {
  /** Offered now (upto: once the facilitator's /supported says so). */
  offered(): boolean;
  /** The 402's `accepts` entry for a quote; null: not offered for it; throws: the method cannot sell this plan. */
  offer(quote: Quote): Record<string, unknown> | null;
  /** The PAYMENT-RESPONSE of a purchase paid with this reference, or null. */
  settlementOf(reference: string): unknown;
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
  /** Its x402 face (/buy, /plans). */
  readonly x402?: X402Face;
  /** Free-trial figures (ubus `stats`). */
  readonly trials?: TrialFigures;
}

export interface PaymentPlugin {
  /** The method's name, as logs and a left-out method (method-state.ts) say it. */
  readonly name: string;
  /** The config switch that builds it; absent: always built (cheap, so a reload's plans find it). */
  readonly switch?: MethodSwitch;
  /**
   * Its reason to run the LAN endpoint (http/index.ts lanEndpointUses: the name the log says), when the config gives
   * one: read from the config, not from the method that opened, so a damaged state file takes no other route down.
   */
  readonly lanUse?: { name: string; on(config: Config): boolean };
  /** Its x402 scheme, when it sells through x402 on the LAN. */
  readonly x402?: X402Scheme;
  /** The ubus methods it brings, by name (in the list's order after the sessions' methods: docs/ubus-api.md). */
  readonly ubusMethods?: Readonly<Record<string, UbusMethod>>;
  /** Opens the method; a damaged state file or unloadable code leaves it out (method-state.ts). */
  open(ctx: PluginContext): Promise<PaymentPart>;
}
