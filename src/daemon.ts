/**
 * The composition root (like rpcd's main.c): builds the parts in dependency order, then starts and stops them. Build:
 * config → journal and sessions (recovery) → portal and gate → the plugins of payments/plugins.ts (their methods, doors
 * and sinks) → merchant → ubus and events → meter → the config's sinks, the ubus backend, the LAN doors. Start: open
 * payments reconciled with the journal → holds re-evaluated → a first tick billing what passed since the last
 * checkpoint → ubus object, LAN endpoint → the gate's reconcile → upstream → meter. Stop is the reverse (shutdown.ts).
 */
import {
  loadConfigPartial,
  logExposedSecrets,
  logProblems,
  withOverrides,
  type ConfigReloader,
} from './config/index.ts';
import { SluiceError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { openSessions, type Session, type SessionManager } from './sessions/index.ts';
import { Merchant, Pricing } from './merchant/index.ts';
import { createPaymentRegistry, PAYMENT_PLUGINS, PaymentPlugins } from './payments/index.ts';
import type { DoorServices, PaymentMethod, PaymentPlugin } from './payments/index.ts';
import type { Meter, TaskSource } from './meter/index.ts';
import type { BlobmsgTable, UbusObjectHandle } from './ubus/index.ts';
import {
  adminCallLogging,
  daemonStats,
  DaemonBackend,
  EventPublisher,
  invokeMethod,
  methodTable,
} from './api/index.ts';
import { sluiceObject, upstreamStatus, type DaemonParts } from './api/index.ts';
import { macResolver, meterOver, openGates, openWalledGarden, type Gatekeeper } from './gate/index.ts';
import { addSinks, SinkHost, type StatusInfo } from './upstream/index.ts';
import { LanEndpointKeeper, type HttpEndpoint } from './http/index.ts';
import { connectUbus } from './ubus-link.ts';
import { configReloader, stopParts, type Parts } from './composition/index.ts';

export interface DaemonOptions {
  configPath: string;
  /** Overrides `main.ubus_socket`. */
  ubusSocket?: string;
  log?: Logger;
  /** Extra payment methods (the demo's simulated payments); production has only the built-in ones. */
  paymentMethods?: PaymentMethod[];
  /** The plugin list (default payments/plugins.ts's): a method added to it is served, over ubus and the LAN, by it. */
  plugins?: readonly PaymentPlugin[];
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
  private stopping: Promise<void> | undefined;
  private readonly backend: DaemonBackend;
  private readonly config: ConfigReloader;
  private readonly lan: LanEndpointKeeper; // the LAN endpoint while anything is served over it
  private readonly doors: DoorServices; // what the methods' own doors sell through and ask (PluginHost.door)
  private readonly figures: DaemonParts;
  private readonly methods: ReturnType<typeof methodTable>; // the object's own and the plugin list's
  readonly sessions: SessionManager;
  readonly gates: Gatekeeper;
  readonly meter: Meter;

  private constructor(
    options: DaemonOptions,
    readonly log: Logger,
    private readonly parts: Parts,
    started: Parameters<typeof configReloader>[2] & { recovered: () => { ended: readonly Session[] } },
  ) {
    ({ sessions: this.sessions, gates: this.gates, meter: this.meter } = parts);
    this.methods = methodTable(parts.payments.plugins);
    const { upstream, sessions, payments, events, garden, valve, meter } = parts;
    this.config = configReloader(options, log, started, parts, {
      followed: () => this.followLan(),
      moveListen: (http) => this.lan.move(http),
    });
    const venue = addSinks(started.config, upstream, {
      ...{ log, recovered: started.recovered, sessions, meter },
      ...{ status: () => this.upstreamStatus(), command: (name, args) => this.adminCommand(name, args) },
    });
    this.backend = new DaemonBackend({
      ...{ merchant: () => parts.merchant, plans: () => this.config.config.pricing, sessions, gates: parts.gates },
      ...{ venue, payments, stats: () => this.stats(), reload: () => this.reload() },
      // A rate change is an event of its own: MQTT and the hook (durable), the ubus event and a log line.
      ratesChanged: (change) => {
        upstream.ratesChanged(change.session, change.previous, change.by);
        events.rates(change);
      },
    });
    payments.wire({ upstream, events, command: (name, args, origin) => this.adminCommand(name, args, origin) });
    const { macOf } = macResolver(valve, meter, started.config.main.ndsctlTimeoutMs);
    this.lan = new LanEndpointKeeper({ backend: this.backend, log, macOf });
    this.doors = this.backend.doorServices(macOf);
    const http = (): HttpEndpoint | null => this.lan.running;
    this.figures = { ...parts, config: this.config, startedAt: this.startedAt, journal: parts.store, http };
    // A method whose reason to serve changed (the first batch of printed vouchers): the endpoint follows at once.
    payments.onServesChanged(() => this.followLan());
    parts.closers.push(
      () => this.lan.close(),
      () => garden.close(),
      ...payments.closers(),
    );
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
    const { store, endRecords, markingStore: marking, sessions, toAnnounce } = opened;
    const { portal, counting, gates } = await openGates(main, sessions, log);
    const upstream = new SinkHost({ log });
    // The payment methods the config switches on, one plugin each (payments/plugins.ts), with the sinks they bring. A
    // method whose state file is damaged is left out (logged with its code); the rest of the daemon runs.
    const payments = await PaymentPlugins.open(options.plugins ?? PAYMENT_PLUGINS, {
      ...{ config, sessions, gate: gates, endsWritten: endRecords, log, shaper: portal.shaper, sinks: upstream },
      stepSizeOf: (plan) => pricing.find(plan)?.stepSize,
      recovered: () => toAnnounce,
    });
    const registry = createPaymentRegistry(options.paymentMethods ?? []);
    payments.sellThrough(registry); // a reload's switches add their methods to it and take them out
    const merchant = new Merchant({ pricing, sessions, payments: registry });
    upstream.attach(sessions);
    const ubus = await connectUbus(main.ubusSocket, log);
    const events = new EventPublisher({ ubus, sessions, gates, log });
    // What the meter bills reaches the publisher, the sinks and escrow as the sessions' `usage`.
    const meter = meterOver(main, portal, counting, { ...options, sessions, gates, marking, log });
    const garden = openWalledGarden(main, log, portal.ipv6Gate);
    const watch = portal.tableWatch;
    const closers = watch ? [async () => watch.stop()] : [];
    const parts: Parts = {
      ...{ ...portal, store, sessions, gates, pricing, payments, merchant, upstream, ubus, events },
      ...{ meter, garden, closers },
    };
    const daemon = new Daemon(options, log, parts, { config, problems, recovered: () => toAnnounce });
    watch?.start();
    // Each method's open purchases and charges against the journal just recovered (ended while down → settled or closed
    // once), each awaited RECONCILE_WAIT_MS at most (payments/reconcile-within.ts).
    await payments.reconcile(log);
    await daemon.run(opened.endedWhileDown);
    // Work left by a restart or an outage: once the upstream sinks run, so what they announce is queued.
    payments.start();
    return daemon;
  }

  private async run(endedWhileDown: readonly Session[]): Promise<void> {
    const { sessions, gates, payments, meter, ubus, upstream } = this.parts;
    // A method's holds are not stored: they follow from its state and the journal, so they are re-evaluated first,
    // before the start tick and the reconcile could re-open a paying client: a session awaiting a receipt stays held.
    await payments.recheck();
    // Bill what passed since the last checkpoint before answering anyone: `used` never goes back after a kill -9.
    if (sessions.list({ state: 'ACTIVE' }).some((s) => s.meterMark)) {
      await Promise.race([meter.tick().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    const onError = (method: string, code: string, reason: string): void =>
      this.log.info('call failed', { method, code, reason });
    this.object = await ubus.addObject(
      sluiceObject(this.backend, { onError, methods: this.methods, ...adminCallLogging(this.log, ubus) }),
    );
    this.log.info('ubus object registered', { path: 'sluice', id: this.object.id });
    await this.followLan();
    await gates.start(endedWhileDown);
    await upstream.start();
    meter.start();
    this.state = 'running';
    const { main } = this.config.config;
    this.log.info('sluice running', { router: main.routerId, poll_interval_ms: main.pollIntervalMs });
  }

  /**
   * The LAN endpoint, the methods' own doors and the walled garden to what the config in force and the methods serve
   * now (at start, after a reload, on a method's word); a follow while stopping does nothing.
   */
  private async followLan(): Promise<void> {
    const { config } = this.config;
    await this.lan.follow(config, this.parts.payments.lan(config));
    await this.parts.payments.followDoors(config, this.doors);
    await this.parts.garden.follow(config);
  }

  /** Re-reads the config (SIGHUP, `ubus call sluice reload`); a bad config is reported and the old one kept. */
  reload(): Promise<BlobmsgTable> {
    return this.config.reload();
  }

  /** What upstream status reports tell (MQTT's retained status). */
  upstreamStatus(): StatusInfo {
    return upstreamStatus(this.figures);
  }

  /**
   * An admin method run for an upstream command channel (MQTT; a RADIUS CoA-Request's rates): arguments checked exactly
   * like a ubus call; `origin` is who asked (what a `rates` event says).
   */
  async adminCommand(name: string, args: Record<string, unknown>, origin: 'mqtt' | 'coa' = 'mqtt'): Promise<unknown> {
    if (this.state === 'starting') throw new SluiceError('ERR_SESSIONS_STATE', 'sluice is still starting');
    return (await invokeMethod(this.backend, name, args as BlobmsgTable, { origin, methods: this.methods })).data;
  }

  stats(): BlobmsgTable {
    return daemonStats(this.figures);
  }

  /** Clean stop: meter, upstream, LAN endpoint and payment methods, ubus object, ubus, sessions, valve. Idempotent. */
  stop(): Promise<void> {
    this.state = 'stopping';
    this.stopping ??= stopParts(this.parts, () => this.object, this.log);
    return this.stopping;
  }
}
