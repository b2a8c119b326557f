/**
 * The composition root (like rpcd's main.c): builds the parts in dependency order, in one pass, then starts and stops
 * them. Build: config → journal and sessions (recovery) → portal and gate → the upstream host, ubus and its events →
 * the plugins of payments/plugins.ts (their methods, doors and sinks) → merchant → meter → the doors
 * (composition/doors.ts). The daemon's port (api/daemon-port.ts) is the one part handed out before what it answers
 * for is built. Start: open payments reconciled with the journal → holds re-evaluated → a first tick billing what
 * passed since the last checkpoint → ubus object, LAN endpoint → the gate's reconcile → upstream → meter. Stop is the
 * reverse (composition/shutdown.ts).
 */
import { loadConfigPartial, logExposedSecrets, logProblems, withOverrides } from './config/index.ts';
import { createLogger, type Logger } from './log.ts';
import { openSessions, type Session, type SessionManager } from './sessions/index.ts';
import { Merchant, Pricing } from './merchant/index.ts';
import { createPaymentRegistry, PAYMENT_PLUGINS, PaymentPlugins } from './payments/index.ts';
import type { PaymentMethod, PaymentPlugin } from './payments/index.ts';
import type { Meter, TaskSource } from './meter/index.ts';
import type { BlobmsgTable, UbusObjectHandle } from './ubus/index.ts';
import { adminCallLogging, DaemonPort, EventPublisher, sluiceObject, warmUpOnRelease } from './api/index.ts';
import { meterOver, openGates, openWalledGarden, type Gatekeeper } from './gate/index.ts';
import { SinkHost } from './upstream/index.ts';
import { connectUbus } from './ubus-link.ts';
import { openDoors, stopParts, type Doors, type Parts } from './composition/index.ts';

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
  private object: UbusObjectHandle | undefined;
  private stopping: Promise<void> | undefined;
  readonly sessions: SessionManager;
  readonly gates: Gatekeeper;
  readonly meter: Meter;

  private constructor(
    readonly log: Logger,
    private readonly parts: Parts,
    private readonly doors: Doors,
    private readonly port: DaemonPort,
  ) {
    ({ sessions: this.sessions, gates: this.gates, meter: this.meter } = parts);
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const startedAt = Date.now();
    const log = options.log ?? createLogger();
    // A router must not lose the service over one bad value: run on the valid part and say what was left out.
    const plugins = options.plugins ?? PAYMENT_PLUGINS;
    const sections = PaymentPlugins.sectionsOf(plugins);
    const { config: loaded, problems, exposedSecrets } = await loadConfigPartial(options.configPath, { sections });
    const config = withOverrides(loaded, options);
    const { main } = config;
    log.level = main.logLevel;
    logProblems(log, problems, 'start');
    logExposedSecrets(log, exposedSecrets, options.configPath, 'start');
    const pricing = new Pricing(config.pricing);
    const opened = await openSessions(config, options.resetState, pricing, log);
    const { store, endRecords, markingStore: marking, sessions, toAnnounce } = opened;
    const { portal, counting, gates } = await openGates(config, sessions, log);
    const upstream = new SinkHost({ log });
    upstream.attach(sessions);
    const ubus = await connectUbus(main.ubusSocket, log);
    const events = new EventPublisher({ ubus, sessions, gates, log });
    const port = new DaemonPort();
    // The payment methods the config switches on, one plugin each (payments/plugins.ts), with the sinks they bring. A
    // method whose state file is damaged is left out (logged with its code); the rest of the daemon runs.
    const payments = await PaymentPlugins.open(plugins, {
      ...{ config, sessions, gate: gates, endsWritten: endRecords, log, shaper: portal.shaper, sinks: upstream },
      ...{ command: port.command, announce: { upstream, events } },
      stepSizeOf: (plan) => pricing.find(plan)?.stepSize,
      recovered: () => toAnnounce,
    });
    const registry = createPaymentRegistry(options.paymentMethods ?? []);
    payments.sellThrough(registry); // a reload's switches add their methods to it and take them out
    const merchant = new Merchant({ pricing, sessions, payments: registry });
    // What the meter bills reaches the publisher, the sinks and the methods' listeners as the sessions' `usage`.
    const meter = meterOver(main, portal, counting, { ...options, sessions, gates, marking, log });
    const garden = openWalledGarden(main, log, portal.ipv6Gate, portal.metering.devices);
    const watch = portal.tableWatch;
    const closers = [...(watch ? [async () => watch.stop()] : []), async () => portal.closeWatches()];
    const parts: Parts = {
      ...{ ...portal, store, sessions, gates, pricing, payments, merchant, upstream, ubus, events },
      ...{ meter, garden, closers },
    };
    const started = { config, problems, recovered: () => toAnnounce, port, startedAt };
    const daemon = new Daemon(log, parts, await openDoors(options, log, parts, started), port);
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
    const { backend, methods, reloader } = this.doors;
    this.object = await ubus.addObject(
      sluiceObject(backend, { onError, methods, ...adminCallLogging(this.log, ubus) }),
    );
    this.log.info('ubus object registered', { path: 'sluice', id: this.object.id });
    warmUpOnRelease(this.log);
    await this.doors.follow(reloader.config);
    await gates.start(endedWhileDown);
    await upstream.start();
    meter.start();
    this.port.open();
    const { main } = reloader.config;
    this.log.info('sluice running', { router: main.routerId, poll_interval_ms: main.pollIntervalMs });
  }

  /** Re-reads the config (SIGHUP, `ubus call sluice reload`); a bad config is reported and the old one kept. */
  reload(): Promise<BlobmsgTable> {
    return this.port.reload();
  }

  /** Clean stop: meter, upstream, LAN endpoint and payment methods, ubus object, ubus, sessions, valve. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= stopParts(this.parts, () => this.object, this.log);
    return this.stopping;
  }
}
