/**
 * The composition root (like rpcd's main.c): builds the parts in dependency order, each later part subscribing to
 * the earlier ones' events, then starts and stops them. Build: config → journal and sessions (recovery) → portal
 * (valve, kernel quota) → gate → payment methods (payments/plugins.ts) → merchant → upstream sinks → ubus and events →
 * meter. The meter follows the gate's auths and the gate the meter's facts (Gatekeeper.follow); what the meter bills
 * reaches the publisher, the sinks and escrow as the session manager's `usage` event. No part is wired here by a
 * callback that a subscription can be. Start: each method's open payments reconciled with the journal → methods' holds
 * re-evaluated → a first tick billing what passed since the last checkpoint → the ubus object and the LAN endpoint →
 * the gate's reconcile with the portal → upstream → meter. Stop is the reverse (composition/shutdown.ts).
 */
import {
  loadConfigPartial,
  logExposedSecrets,
  logProblems,
  withOverrides,
  type Config,
  type ConfigProblem,
  type ConfigReloader,
} from './config/index.ts';
import { SluiceError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import type { Session, SessionManager } from './sessions/index.ts';
import { Merchant, Pricing } from './merchant/index.ts';
import {
  createPaymentRegistry,
  PAYMENT_PLUGINS,
  PaymentPlugins,
  type DoorServices,
  type PaymentMethod,
} from './payments/index.ts';
import type { Meter, TaskSource } from './meter/index.ts';
import type { BlobmsgTable, UbusObjectHandle } from './ubus/index.ts';
import { adminCallLogging, DaemonBackend, EventPublisher, invokeMethod, sluiceObject } from './api/index.ts';
import { Gatekeeper, openPortal, startCounting } from './gate/index.ts';
import { SinkHost, type StatusInfo } from './upstream/index.ts';
import type { LanEndpointKeeper } from './http/index.ts';
import { connectUbus } from './ubus-link.ts';
import {
  configReloader,
  daemonStats,
  meterFor,
  openSessions,
  lanDoorsFor,
  addSinks,
  openWalledGarden,
  stopParts,
  upstreamStatus,
  type Parts,
} from './composition/index.ts';

export interface DaemonOptions {
  configPath: string;
  /** Overrides `main.ubus_socket`. */
  ubusSocket?: string;
  log?: Logger;
  /** Extra payment methods (the demo's simulated payments); production has only the built-in ones. */
  paymentMethods?: PaymentMethod[];
  /** Overrides where the meter's worker fetches snapshots (default: run `main.ndsctl json`). */
  meterSource?: TaskSource;
  /** The meter's usage worker when it is not next to the running bundle (the fleet demo's routers). */
  meterWorker?: { path: string | URL; execArgv?: string[] };
  /** A reload found `main.enabled` 0: the owner stops the daemon (runDaemon exits 0). */
  onDisabled?: () => void;
  /** `--reset-state`: start although the state files show sessions that cannot be read back (JournalStore). */
  resetState?: boolean;
}

export class Daemon {
  private readonly startedAt = Date.now();
  private state: 'starting' | 'running' | 'stopping' = 'starting';
  private object: UbusObjectHandle | undefined;
  /** The LAN endpoint while anything is served over it (its figures in `stats`), following what is. */
  private readonly lan: LanEndpointKeeper;
  /** What the methods' own doors sell through and ask (PluginHost.door). */
  private readonly doors: DoorServices;
  private stopping: Promise<void> | undefined;
  private readonly backend: DaemonBackend;
  private readonly config: ConfigReloader;
  private readonly garden: ReturnType<typeof openWalledGarden>;
  /** Parts with state to flush on stop, after upstream and before sessions close (LAN endpoint, payment methods). */
  private readonly closers: Array<() => Promise<void>> = [];
  readonly sessions: SessionManager;
  readonly gates: Gatekeeper;
  readonly meter: Meter;

  private constructor(
    config: Config,
    problems: readonly ConfigProblem[],
    options: DaemonOptions,
    readonly log: Logger,
    private readonly parts: Parts,
    recovered: () => { ended: readonly Session[] },
  ) {
    ({ sessions: this.sessions, gates: this.gates, meter: this.meter } = parts);
    const { upstream, sessions, payments } = parts;
    this.garden = openWalledGarden(config.main, log, parts.ipv6Gate);
    this.config = configReloader(options, log, { config, problems }, parts, {
      followed: () => this.followLan(),
      moveListen: (http) => this.lan.move(http),
    });
    addSinks(config, parts, { log, recovered }, this); // and the venue's roaming, which they carry
    this.backend = new DaemonBackend({
      merchant: () => parts.merchant,
      plans: () => this.config.config.pricing,
      sessions,
      gates: parts.gates,
      venue: parts.venue,
      stats: () => this.stats(),
      reload: () => this.reload(),
      payments,
      // A rate change is an event of its own: MQTT and the hook (durable), the ubus event and a log line.
      ratesChanged: (change) => {
        upstream.ratesChanged(change.session, change.previous, change.by);
        parts.events.rates(change);
      },
    });
    payments.wire({
      upstream,
      events: parts.events,
      command: (name, args, origin) => this.adminCommand(name, args, origin),
    });
    ({ lan: this.lan, doors: this.doors } = lanDoorsFor(config.main, this.backend, parts, log));
    // A method whose reason to serve changed (the first batch of printed vouchers): the endpoint follows at once.
    payments.onServesChanged(() => this.followLan());
    this.closers.push(...[this.lan, this.garden].map((part) => () => part.close()));
    // Each method's close ends its facilitator exchanges in flight: a peer that holds one must not hold the stop.
    this.closers.push(...payments.closers());
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const log = options.log ?? createLogger();
    // A router must not lose the service over one bad value: run on the valid part and say what was left out.
    const { config: loaded, problems, exposedSecrets } = await loadConfigPartial(options.configPath);
    const config = withOverrides(loaded, options);
    const { main } = config;
    log.level = main.logLevel;
    logProblems(log, problems, 'start');
    logExposedSecrets(log, exposedSecrets, options.configPath, 'start');
    const pricing = new Pricing(config.pricing);
    const opened = await openSessions(config, options.resetState, pricing, log);
    const { store, endRecords, markingStore, sessions, toAnnounce } = opened;

    // The shaper touches tc and nft only when a session with a speed tier opens (a reload may add the first tier).
    const portal = openPortal(main, sessions, log, true);
    const { shaper } = portal;
    const counting = await startCounting(
      portal,
      sessions,
      sessions.list({ state: 'ACTIVE' }).flatMap((s) => (s.meterMark ? [[s.mac, s.meterMark] as const] : [])),
    );
    const gates = new Gatekeeper({ ...portal.gateParts, sessions, log, leaveForeign: main.leaveForeignClients });
    const stepSizeOf = (plan: string | null): bigint | undefined => pricing.find(plan)?.stepSize;
    const upstream = new SinkHost({ log });
    // The payment methods the config switches on, one plugin each (payments/plugins.ts), with the sinks they bring. A
    // method whose state file is damaged is left out (logged with its code); the rest of the daemon runs.
    const payments = await PaymentPlugins.open(PAYMENT_PLUGINS, {
      config,
      sessions,
      gate: gates,
      stepSizeOf,
      endsWritten: endRecords,
      log,
      recovered: () => toAnnounce,
      shaper,
      sinks: upstream,
    });
    const registry = createPaymentRegistry(options.paymentMethods ?? []);
    // A reload's switches add their methods to it and take them out.
    payments.sellThrough(registry);
    const merchant = new Merchant({ pricing, sessions, payments: registry });
    upstream.attach(sessions);

    const ubus = await connectUbus(main.ubusSocket, log);
    const events = new EventPublisher({ ubus, sessions, gates, log });
    const meter = meterFor(main, portal, counting, { ...options, sessions, gates, log });
    // The meter follows the gate's auths and holds, and the gate the meter's facts; what the meter bills reaches the
    // publisher, the sinks and escrow as the sessions' `usage`.
    gates.follow(meter);
    markingStore.markWith({
      marks: () => meter.marks(),
      macOf: (id) => sessions.get(id)?.mac,
      openingMark: (mac) => meter.openingMark(mac),
    });

    // The portal's parts: valve, kernel quota, IPv6 gate, shaper.
    const parts: Parts = {
      ...portal,
      store,
      sessions,
      gates,
      pricing,
      payments,
      merchant,
      upstream,
      ubus,
      events,
      meter,
    };
    const daemon = new Daemon(config, problems, options, log, parts, () => toAnnounce);
    const watch = portal.tableWatch;
    watch?.start();
    if (watch) daemon.closers.unshift(async () => watch.stop());
    // Each method's open purchases and charges against the journal just recovered (ended while down → settled or closed
    // once), each awaited RECONCILE_WAIT_MS at most (payments/reconcile-within.ts).
    await payments.reconcile(log);
    await daemon.run(opened.endedWhileDown);
    // Work left by a restart or an outage: once the upstream sinks run, so what they announce is queued.
    payments.start();
    return daemon;
  }

  private async run(endedWhileDown: readonly Session[]): Promise<void> {
    const {
      parts: { sessions, gates, payments, meter, ubus, upstream },
      log,
    } = this;
    // A method's holds are not stored: they follow from its state and the journal, so they are re-evaluated first,
    // before the start tick and the reconcile could re-open a paying client: a session awaiting a receipt stays held.
    await payments.recheck();
    // Bill what passed since the last checkpoint before answering anyone: `used` never goes back after a kill -9.
    if (sessions.list({ state: 'ACTIVE' }).some((s) => s.meterMark)) {
      await Promise.race([meter.tick().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.object = await ubus.addObject(
      sluiceObject(this.backend, {
        onError: (method, code, message) => log.info('call failed', { method, code, reason: message }),
        ...adminCallLogging(log, ubus),
      }),
    );
    log.info('ubus object registered', { path: 'sluice', id: this.object.id });
    await this.followLan();
    await gates.start(endedWhileDown);
    await upstream.start();
    meter.start();
    this.state = 'running';
    log.info('sluice running', {
      router: this.config.config.main.routerId,
      poll_interval_ms: this.config.config.main.pollIntervalMs,
    });
  }

  /**
   * The LAN endpoint, the methods' own doors and the walled garden to what the config in force and the methods serve
   * now (at start, after a reload, on a method's word); a follow while stopping does nothing.
   */
  private async followLan(): Promise<void> {
    const { config } = this.config;
    await this.lan.follow(config, this.parts.payments.lan(config));
    await this.parts.payments.followDoors(config, this.doors);
    await this.garden.follow(config);
  }

  /** Re-reads the config (SIGHUP, `ubus call sluice reload`); a bad config is reported and the old one kept. */
  reload(): Promise<BlobmsgTable> {
    return this.config.reload();
  }

  /** What upstream status reports tell (MQTT's retained status). */
  upstreamStatus(): StatusInfo {
    return upstreamStatus(this.startedAt, this.parts, this.config);
  }

  /**
   * An admin method run for an upstream command channel (MQTT; a RADIUS CoA-Request's rates): arguments checked exactly
   * like a ubus call; `origin` is who asked (what a `rates` event says).
   */
  async adminCommand(name: string, args: Record<string, unknown>, origin: 'mqtt' | 'coa' = 'mqtt'): Promise<unknown> {
    if (this.state === 'starting') throw new SluiceError('ERR_SESSIONS_STATE', 'sluice is still starting');
    return (await invokeMethod(this.backend, name, args as BlobmsgTable, origin)).data;
  }

  stats(): BlobmsgTable {
    return daemonStats(this.parts, this.config, this.startedAt, this.lan.running);
  }

  /** Clean stop: meter, upstream, LAN endpoint and payment methods, ubus object, ubus, sessions, valve. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    await stopParts(this.parts, { closers: this.closers, object: () => this.object }, this.log);
  }
}
