/**
 * The payment-method plugin contract (STYLE.md point 13, in the manner of rpcd's `struct rpc_plugin`): a method is a
 * folder exporting one PaymentPlugin, payments/plugins.ts lists them, and the composition root (daemon.ts) loops over
 * the list through PaymentPlugins (plugin-host.ts) without naming one. A plugin opens from the config into a
 * PaymentPart: the PaymentMethods the merchant sells through, and the optional hooks the daemon runs at its own
 * moments (reconcile at start, a reload's settings, start, stop) and the faces it serves (ubus, the LAN:
 * plugin-faces.ts). Two phases:
 * before any plugin opens, each registers what must be known whether or not it runs (`register`: its ubus methods,
 * LAN routes, x402 schemes, pay-page scripts and form, its reason to run the LAN endpoint, its payers, the key of its
 * stats: the ubus object, the ACL and the LAN endpoint are made of them); when it opens,
 * what it brings beside its methods goes through its host: its own listener (`door`), an upstream sink (`sink`),
 * listeners of the sessions' events (`onSession`: escrow follows `usage`), its figures (`stats`), its periodic work
 * (`background`: the host starts it once the daemon runs and stops it when the plugin closes).
 */
import type { Config, OwnSection, PricingPlan, RunningParts } from '../config/index.ts';
import type { AnyErrorCode } from '../errors.ts';
import type { Log } from '../log.ts';
import type { EndRecordsTap, PaidEvent, Session, SessionManager } from '../sessions/index.ts';
import type { ShaperFigures, UpstreamSink } from '../upstream/index.ts';
import type { EscrowSessionClosed, HoldingGate } from './escrow-session/escrow-credit.ts';
import type { LanFace, LanRoute, PayForm, UbusFace, UbusMethod, X402Face, X402Scheme } from './plugin-faces.ts';
import type { PaymentMethod, PurchaseRequest } from './types.ts';

/** The config switches a plugin is built by (a reload moves them: PaymentPlugins.switchTo). */
export type MethodSwitch = Exclude<keyof RunningParts, 'main' | 'http'>;

/** What the root's admin methods run for a plugin (a CoA-Request's rates take ubus `change`'s path). */
export type AdminCommand = (name: string, args: Record<string, unknown>, origin: 'coa') => Promise<unknown>;

/**
 * What the host hands every plugin when it opens: the parts it works with, and the registrars through which it brings
 * what it serves beside its methods (its own listener: `door`; an upstream sink: `sink`).
 */
export interface PluginHost {
  config: Config;
  /**
   * Opened at the daemon's start, before anything is served (false: a reload switched it on while purchases are
   * served): its state files may be read synchronously, where a thread-pool hop per open, stat and read only costs CPU.
   */
  atStart: boolean;
  sessions: SessionManager;
  /** The gate's holds (escrow credit), and a client's gate closed now (a RADIUS Disconnect). */
  gate: HoldingGate & { closed(mac: string): Promise<unknown> };
  /** A plan's step size (escrow credit steps). */
  stepSizeOf: (plan: string | null) => bigint | undefined;
  /** Ends on flash: a method settles or closes after a session's end is durable (sessions/end-records.ts). */
  endsWritten: EndRecordsTap;
  log: Log;
  /**
   * What an upstream sink announces when it starts: at the daemon's start, what recovery found (sessions recovered,
   * ended while down, the last ends and payments); for a plugin a reload opens, the sessions live now.
   */
  recovered: () => { active: readonly Session[]; ended: readonly Session[]; payments?: readonly PaidEvent[] };
  /** The speed-tier shaper's figures (null: the portal has none). */
  shaper: ShaperFigures | null;
  /** Runs an admin method exactly as a ubus call does (refused while the daemon starts: ERR_SESSIONS_STATE). */
  command: AdminCommand;
  /** The root's parts a method announces its own events through (the ubus events, the upstream sinks). */
  announce: PaymentAnnouncers;
  /**
   * The selling method of that name another plugin brings from behind this one (PaymentPart.standsBehind: the RADIUS
   * `voucher` behind printed vouchers), read at each call (a reload switches it on and off); null: none sells now.
   */
  methodBehind(name: string): PaymentMethod | null;
  /**
   * The method's reason to serve over the LAN (its lanUse, its pay-page form) may have changed (the first batch of
   * printed vouchers): the LAN endpoint follows at once (PaymentPlugins.onServesChanged), no restart; resolved once it
   * has (so the reply that made the batch comes after the door is open).
   */
  servesChanged?: () => Promise<void>;
  /**
   * Registers the method's own listener (TollGate's door): the host brings it to the config in force at start and
   * after every reload (opened, moved or closed, as the method's section says), and closes it at the stop.
   */
  door(door: PluginDoor): void;
  /**
   * Registers a listener of the sessions' events (`started`, `topup`, `usage`…): the host removes it when the plugin
   * closes (at the stop, or a reload that closes it whole); returns the removal, for a plugin that stops listening
   * sooner.
   */
  onSession: SessionManager['on'];
  /** Registers the method's figures for ubus `stats`, under the key it registered (PluginRegistrars.stats). */
  stats(figures: () => object): void;
  /**
   * Registers a background pass (periodic work: a custody pass, the closes of ended sessions): the host starts it once
   * the daemon runs (after the start's reconcile, with the upstream sinks running; for a plugin a reload opens, once
   * it is reconciled) and stops it when the plugin closes, before its close hook, awaiting what its stop returns. A
   * plugin that does not open has its passes dropped, never started.
   */
  background(pass: BackgroundPass): void;
  /**
   * Registers an upstream sink (RADIUS accounting): it hears the sessions' events beside the config's sinks, and a
   * reload that switches its plugin off drains it and closes the plugin whole (PaymentPlugins.switchTo).
   */
  sink(sink: UpstreamSink): void;
}

/**
 * What a method's own door sells through and asks (structural: payments/ imports neither api/ nor http/): the clock,
 * the plans, a purchase exactly as ubus `purchase` makes it, a MAC's session, and the portal client with an address
 * (the one directory every door asks: null when none; throws when two clients have it).
 */
export interface DoorServices {
  now(): number;
  pricing(): readonly PricingPlan[];
  purchase(req: PurchaseRequest): Promise<{ session: Session; toppedUp: boolean }>;
  session(query: { mac: string }): Session | undefined;
  macOf(ip: string): Promise<string | null>;
}

/** A method's periodic work, as the host drives it (payments/scheduled-pass.ts's ScheduledPass is one). */
export interface BackgroundPass {
  /** The first pass now or as the pass decides, then as it asks; called once. */
  start(): void;
  /** No more passes; the exchanges in flight end. What it returns is awaited (void: the stop does not wait). */
  stop(): Promise<void> | void;
  /**
   * Started only once its plugin's reconcile has ended (done or failed), however long that took past the start's
   * bounded wait: its first pass works on what the reconcile left (batch-settlement's claims, upto's due settles).
   */
  readonly afterReconcile?: true;
}

/** A method's own listener, as the host drives it. */
export interface PluginDoor {
  /**
   * The option that places it (`<section>.listen`): a reload that moves it, or switches it on or off, lists the option
   * in its reply's `moved`, so the init script hands procd the new port's firewall rule.
   */
  readonly option: string;
  /** Where `config` puts it (`host:port`; '': nowhere). */
  at(config: Config): string;
  /** Opens, moves or closes the listener as `config` says; a failure is logged and leaves the rest running. */
  follow(config: Config, services: DoorServices): Promise<void>;
  close(): Promise<void>;
}

/** The root's parts a method announces through (structural: payments/ does not import api/). */
export interface PaymentAnnouncers {
  upstream: { escrowClosed(session: Session | null, mac: string, figures: EscrowSessionClosed['figures']): void };
  /** A `sluice.session` ubus event of the method's own kind (docs/ubus-api.md lists each method's). */
  events: { method(kind: string, payload: object): void };
}

/**
 * A method's LAN side as the endpoint serves it: what it registered before it opened (its routes, payers, pay-page
 * scripts and form, its reason to run the endpoint), and its face when it runs.
 */
export interface LanMethod extends Pick<RegisteredPlugin, 'pageScripts' | 'payForm' | 'payersOf' | 'lanUse'> {
  readonly plugin: Pick<PaymentPlugin, 'name'>;
  readonly routes: readonly LanRoute[];
  readonly face: LanFace | null;
}

/** What the methods serve over the LAN endpoint (PaymentPlugins.lan; http/index.ts startLanEndpoint). */
export interface LanParts {
  /** Every method of the list, in its order, with its face (null: off, or configured but down). */
  readonly methods: readonly LanMethod[];
  /** The running methods' x402 faces, in the list's order (/buy, /plans). */
  readonly schemes: readonly X402Face[];
  /** Every x402 scheme the list's plugins registered, running or not, in its order (/buy, /plans). */
  readonly knownSchemes: readonly X402Scheme[];
  /** Methods the config switches on that did not open (their state cannot be read back): their routes answer 503. */
  readonly unavailable: readonly string[];
  /** Each pay-page form of the list (PluginRegistrars.payForm), by its key: offered now. */
  readonly forms: Readonly<Record<string, boolean>>;
}

/**
 * A method's reason to run the LAN endpoint (http/index.ts lanEndpointUses: the name the log says), when the config
 * gives one: read from the config, not from the method that opened, so a damaged state file takes no other route down.
 */
export interface LanUse {
  readonly name: string;
  on(config: Config): boolean;
}

/**
 * The wallet addresses (lowercase) that paid for a session through a method, as far as its payments show them (a
 * returning customer proves one to move the session: http/restore.ts); `face`: the method's, or null.
 */
export type PayersOf = (session: Session, face: LanFace | null) => readonly string[];

/** A method's place in ubus `stats`: its key, and what it says there while the method does not run. */
export interface StatsSlot {
  readonly key: string;
  readonly absent: object;
}

/**
 * What a plugin registers in the register phase (PaymentPlugin.register), before any plugin opens; closed once its
 * register returns (a later call throws). A name, route, file or key two plugins register is refused naming both, and
 * so is a second call of a registrar a plugin has one of (payForm, lanUse, payersOf, stats).
 */
export interface PluginRegistrars {
  /** A ubus method of the `sluice` object (in the list's order after the sessions' methods: docs/ubus-api.md). */
  ubusMethod(name: string, method: UbusMethod): void;
  /** A route of the LAN endpoint (docs/x402.md's list of routes). */
  lanRoute(route: LanRoute): void;
  /** An x402 scheme it sells through on the LAN (/buy, /plans); its running face is PaymentPart.x402. */
  x402Scheme(scheme: X402Scheme): void;
  /**
   * A pay-page script it brings (a file in the page's directory, served at `/<file>` as JavaScript by the LAN endpoint
   * whether or not the method runs, as the page's own are).
   */
  pageScript(file: string): void;
  /** Its form on the pay page, when it sells through one. */
  payForm(form: PayForm): void;
  /** Its reason to run the LAN endpoint. */
  lanUse(use: LanUse): void;
  /** The payers of a session it sold (read whether or not the method runs now). */
  payersOf(payers: PayersOf): void;
  /**
   * Its place in ubus `stats`: under `key`, what the opened part registers (PluginHost.stats), `absent` while it does
   * not run (its state file damaged, or switched off).
   */
  stats(slot: StatsSlot): void;
}

/** What a plugin registered, with the plugin. */
export interface RegisteredPlugin {
  readonly plugin: PaymentPlugin;
  readonly ubusMethods: Readonly<Record<string, UbusMethod>>;
  readonly lanRoutes: readonly LanRoute[];
  readonly schemes: readonly X402Scheme[];
  readonly pageScripts: readonly string[];
  readonly payForm: PayForm | null;
  readonly lanUse: LanUse | null;
  readonly payersOf: PayersOf | null;
  readonly stats: StatsSlot | null;
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
  /** Once the daemon runs (ubus, LAN, gates, sinks), after its background passes start: one-off work. */
  start?(): void;
  /**
   * Its methods stand behind another plugin's method of the same name (the RADIUS `voucher` behind printed vouchers):
   * registered only while none such sells, and reached through that one (PluginHost.methodBehind).
   */
  readonly standsBehind?: true;
  /** Stop: ends the facilitator exchanges in flight and flushes state. */
  close?(): Promise<void>;
  readonly ubus?: UbusFace;
  readonly lan?: LanFace;
  /** Its x402 face (/buy, /plans). */
  readonly x402?: X402Face;
}

export interface PaymentPlugin {
  /** The method's name, as logs and a left-out method (method-state.ts) say it. */
  readonly name: string;
  /**
   * The code its state file fails to open with (its open throws it): the method is left out, the rest runs
   * (method-state.ts).
   */
  readonly damagedState?: AnyErrorCode;
  /**
   * Its own UCI section (`config <type> '<type>'`), read by the config loader beside the built-in ones at start and at
   * every reload: what it reads is `config.sections[type]` in the config the method opens and reconfigures with.
   */
  readonly section?: OwnSection;
  /** The config switch that builds it; absent: always built (cheap, so a reload's plans find it). */
  readonly switch?: MethodSwitch;
  /**
   * The register phase: run for every plugin of the list before any opens, whether or not its switch is on, so the
   * ubus object (its table and the ACL), the LAN endpoint's routes, /buy's schemes, the pay page's scripts and forms
   * and the reasons to run the LAN endpoint are known before anything runs. What it registers is served from then on;
   * its handlers get the method's face (null while it does not run).
   */
  register?(registrars: PluginRegistrars): void;
  /** Opens the method; a damaged state file or unloadable code leaves it out (method-state.ts). */
  open(host: PluginHost): Promise<PaymentPart>;
}
