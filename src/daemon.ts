/**
 * Composes the subsystems (like rpcd's main.c: wiring, signals, shutdown order). Start order: config → journal and
 * sessions (recovery) → valve → merchant → ubus (object) → reconcile with the portal → meter. Stop is the reverse:
 * meter, ubus object, sessions checkpoint, journal, valve.
 */
import { formatProblem, loadConfigPartial, redactConfig, type Config, type ConfigProblem } from './config/index.ts';
import { toSluiceError, SluiceError } from './errors.ts';
import { createLogger, toLogFields, type Logger } from './log.ts';
import { JournalStore, SessionManager, type Session } from './sessions/index.ts';
import { Merchant, Pricing } from './merchant/index.ts';
import { createPaymentRegistry, type PaymentMethod } from './payments/index.ts';
import { KernelQuota, nftRunner, portalSocketResolver, Valve } from './portal/index.ts';
import { Meter, sessionManagerPort, type TaskSource, type UsageReport } from './meter/index.ts';
import { UbusClient, type UbusObjectHandle } from './ubus/index.ts';
import { invokeMethod, planView, sluiceObject, sessionView } from './api/index.ts';
import { DaemonBackend, GATE_REPLY_WAIT_MS, waitForClose } from './api/daemon-backend.ts';
import { Gatekeeper } from './gate/gatekeeper.ts';
import { MarkingStore } from './meter/marking-store.ts';
import { toBlobmsgTable } from './api/plain.ts';
import type { BlobmsgTable } from './ubus/codec/index.ts';
import { createSinks, SinkHost, type StatusInfo } from './upstream/index.ts';
import { RadiusUpstream } from './upstream/radius/index.ts';
import { X402Method } from './payments/x402-exact.ts';
import { METHOD_NAME as ESCROW_METHOD, X402SessionMethod } from './payments/x402-session.ts';
import { EscrowLedger, type EscrowClose } from './escrow/ledger.ts';
import { isLive, remainingNumber } from './sessions/index.ts';
import { startLanEndpoint } from './http/index.ts';
import { VERSION } from './version.ts';

/** The answer of a check with nothing to do: one settled promise, not one per call. */
const SETTLED: Promise<void> = Promise.resolve();

export const SESSION_EVENT = 'sluice.session';
/** Sessions per `usage` event: keeps each ubus message far below the 1 MiB limit (~120 bytes per entry). */
const USAGE_EVENT_CHUNK = 1000;

export interface DaemonOptions {
  configPath: string;
  /** Overrides `main.ubus_socket`. */
  ubusSocket?: string;
  log?: Logger;
  /** Extra payment methods (the demo's simulated payments); production has only the built-in ones. */
  paymentMethods?: PaymentMethod[];
  /** Overrides where the meter's worker fetches snapshots (default: run `main.ndsctl json`). */
  meterSource?: TaskSource;
  /** A reload found `main.enabled` 0: the owner stops the daemon (runDaemon exits 0). */
  onDisabled?: () => void;
  /** `--reset-state`: start although the state files show sessions that cannot be read back (JournalStore). */
  resetState?: boolean;
}

/** Options of main that need a restart (by their UCI names, as operators know them): the rest applies on reload. */
const RESTART_OPTIONS = {
  stateDir: 'main.state_dir', ndsctl: 'main.ndsctl', ndsctlSocket: 'main.ndsctl_socket', portal: 'main.portal', pollIntervalMs: 'main.poll_interval',
  ndsctlTimeoutMs: 'main.ndsctl_timeout', workers: 'main.workers', ubusSocket: 'main.ubus_socket',
  leaveForeignClients: 'main.leave_foreign_clients', portalOutputMax: 'main.portal_output_max',
  minReadIntervalMs: 'main.min_read_interval', kernelQuota: 'main.kernel_quota', nft: 'main.nft',
} as const satisfies Partial<Record<keyof Config['main'], string>>;
type RestartKey = keyof typeof RESTART_OPTIONS;

/** The restart-only options whose value in `next` differs from what the engine was started with. */
function restartRequired(running: Config['main'], next: Config['main']): string[] {
  return (Object.keys(RESTART_OPTIONS) as RestartKey[])
    .filter((key) => JSON.stringify(next[key]) !== JSON.stringify(running[key]))
    .map((key) => RESTART_OPTIONS[key]);
}

/** `next` with the restart-only options as the engine runs them, so `stats` never shows a value not in use. */
function asRunning(next: Config, running: Config['main']): Config {
  const main = { ...next.main };
  for (const key of Object.keys(RESTART_OPTIONS) as RestartKey[]) (main as Record<RestartKey, unknown>)[key] = running[key];
  return { ...next, main };
}

/**
 * The config as the daemon runs it given its command line: `--ubus-socket` replaces `main.ubus_socket`, so `stats`
 * shows the socket in use and a reload never reports the file's (overridden) value as needing a restart.
 */
function withOverrides(config: Config, options: DaemonOptions): Config {
  if (options.ubusSocket === undefined) return config;
  return { ...config, main: { ...config.main, ubusSocket: options.ubusSocket } };
}

/** The escrow session id a session was last paid through (x402-session), if any. */
function escrowRefOf(s: Session): string | undefined {
  return s.payments.filter((p) => p.method === ESCROW_METHOD).at(-1)?.reference;
}

/** Every problem of a config the daemon runs on anyway, loudly: one error line each, saying what was done. */
function logProblems(log: Logger, problems: readonly ConfigProblem[], when: string): void {
  for (const p of problems) {
    log.error('config problem ignored', { when, problem: formatProblem(p), effect: p.effect });
  }
}

export class Daemon {
  private readonly startedAt = Date.now();
  private object: UbusObjectHandle | undefined;
  private stopping: Promise<void> | undefined;
  private reloading: Promise<BlobmsgTable> | undefined;
  private backend: DaemonBackend | undefined;
  /** The engine's `main` as started: restart-only options are compared with these, not with the last reload. */
  private readonly running: Config['main'];
  /** The LAN endpoint is bound at start (address, port, rate limiter): its section takes a restart. */
  private readonly runningHttp: Config['http'];
  private pendingRestart: string[] = [];
  /** Payment methods and other parts that hold state to flush on stop (before sessions close). */
  readonly closers: Array<() => Promise<void>> = [];
  /** The x402 payment method when x402.enabled (the LAN HTTP endpoint sells through it). */
  x402: X402Method | null = null;
  /** The x402-session payment method when escrow.enabled (ubus `receipt` goes to it). */
  escrowSessions: X402SessionMethod | null = null;
  /** main.kernel_quota: the kernel byte quota under the gates, when on. */
  kernelQuota: KernelQuota | null = null;

  private constructor(
    private config: Config,
    private problems: readonly ConfigProblem[],
    private readonly options: DaemonOptions,
    readonly log: Logger,
    readonly sessions: SessionManager,
    private readonly store: JournalStore,
    readonly valve: Valve,
    private readonly pricing: Pricing,
    private readonly merchant: Merchant,
    readonly gates: Gatekeeper,
    readonly ubus: UbusClient,
    readonly meter: Meter,
    readonly upstream: SinkHost,
  ) {
    this.running = config.main;
    this.runningHttp = config.http;
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const log = options.log ?? createLogger();
    // A router must not lose the service over one bad value: run on the valid part and say what was left out.
    const loaded = await loadConfigPartial(options.configPath);
    const config = withOverrides(loaded.config, options);
    const { problems } = loaded;
    log.level = config.main.logLevel;
    logProblems(log, problems, 'start');
    const store = new JournalStore({
      dir: config.main.stateDir,
      ...(options.resetState === true && { resetState: true }),
      onWarning: (err) => log.warn('journal', { code: err.code, reason: err.message }),
    });
    let meterRef: Meter | undefined;
    let sessionsRef: SessionManager | undefined;
    const markingStore = new MarkingStore(store, () => meterRef && sessionsRef && {
      marks: meterRef.marks(),
      macOf: (id: string) => sessionsRef?.get(id)?.mac,
    });
    const sessions = new SessionManager({
      store: markingStore,
      limits: config.limits,
      checkpointIntervalMs: config.main.checkpointIntervalMs,
    });
    const recovery = await sessions.recover();
    for (const w of recovery.warnings) log.warn('recovery', { code: w.code, reason: w.message });
    log.info('sessions recovered', { active: recovery.active.length, ended_while_down: recovery.ended.length });

    const portalSocket = portalSocketResolver(config.main);
    const startSocket = portalSocket();
    log.info('portal control', { via: startSocket ?? 'command', ndsctl_socket: config.main.ndsctlSocket });
    // main.kernel_quota: a kernel byte quota per data session under the portal's gate (portal/kernel-quota.ts).
    const kernelQuota = config.main.kernelQuota ? new KernelQuota({
      run: nftRunner(config.main.nft, config.main.ndsctlTimeoutMs),
      log: (level, message, details) => log[level](message, details && toLogFields(details)),
      session: (mac) => {
        const s = sessions.byMac(mac);
        return s !== null && isLive(s) && s.metric === 'bytes' ? { left: remainingNumber(s, Date.now()), allotment: s.allotment } : null;
      },
    }) : null;
    const valve = new Valve({
      command: config.main.ndsctl,
      socketPath: portalSocket,
      timeoutMs: config.main.ndsctlTimeoutMs,
      maxOutputBytes: config.main.portalOutputMax,
      flavour: config.main.portal,
      log: (level, message, details) => log[level](message, details && toLogFields(details)),
      ...(kernelQuota && { brake: { beforeAuth: (mac, ip, limit) => kernelQuota.set(mac, ip, limit), afterDeauth: (mac) => kernelQuota.remove(mac) } }),
    });
    const pricing = new Pricing(config.pricing);
    // RADIUS (radius.enabled): accounting sink, `voucher` payment method, Disconnect/CoA listener; null when disabled.
    const radius = RadiusUpstream.fromConfig(config, {
      log, stateDir: config.main.stateDir, sessions, recovered: () => recovery, closeGate: (mac) => gates.close(mac),
    });
    // x402 (x402.enabled): customers pay with x402 `exact` payments; it resolves settles left pending by a crash.
    let daemon: Daemon | undefined;
    const x402 = config.x402.enabled ? await X402Method.open({
      config: config.x402, stateDir: config.main.stateDir, sessions, log,
      onLateGrant: (s, toppedUp) => { if (!toppedUp) void gates.open(s).then((g) => { if (g !== 'pending') daemon?.meter.sessionStarted(s.mac); }); },
    }) : null;
    // Escrow sessions (escrow.enabled): payment method x402-session and the receipts of the sessions it sold.
    const escrowSessions = config.escrow.enabled
      ? new X402SessionMethod(config.escrow, {
        ledger: await EscrowLedger.open(config.main.stateDir), log, sessions,
        onLateGrant: (s, toppedUp) => { if (!toppedUp) void gates.open(s).then((g) => { if (g !== 'pending') daemon?.meter.sessionStarted(s.mac); }); },
        onClosed: (escrowId, close) => daemon?.escrowClosed(escrowId, close),
      }) : null;
    const merchant = new Merchant({
      pricing, sessions,
      payments: createPaymentRegistry([...(options.paymentMethods ?? []), ...(radius ? [radius.voucher] : []), ...(x402 ? [x402] : []),
        ...(escrowSessions ? [escrowSessions] : [])]),
    });
    const gates = new Gatekeeper({ valve, sessions, log, leaveForeign: config.main.leaveForeignClients });

    const upstream = new SinkHost({ log });
    const upstreamDeps = {
      log,
      status: () => daemon?.upstreamStatus() ?? null,
      command: (name: string, args: Record<string, unknown>) => daemon ? daemon.adminCommand(name, args) : Promise.reject(new Error('starting')),
      recovered: () => recovery,
      session: (id: string) => sessions.get(id),
    };
    for (const sink of createSinks(config, upstreamDeps)) upstream.add(sink);
    if (radius) upstream.add(radius);
    upstream.attach(sessions);

    const socketPath = config.main.ubusSocket;
    const ubus = await connectUbus(socketPath, log);
    logUbusConnection(ubus, socketPath, log);
    const port = sessionManagerPort(sessions);
    const meter = new Meter({
      // The worker appends `json` itself (portal/snapshot-fetch.ts): the argv is the bare command.
      source: options.meterSource ?? (startSocket !== undefined ? { kind: 'socket', path: startSocket } : { kind: 'command', argv: [...config.main.ndsctl] }),
      flavour: config.main.portal,
      pollIntervalMs: config.main.pollIntervalMs,
      minIntervalMs: config.main.minReadIntervalMs,
      gateHeld: (mac) => gates.isHeld(mac),
      fetchTimeoutMs: config.main.ndsctlTimeoutMs,
      maxSnapshotBytes: config.main.portalOutputMax,
      sessions: port,
      portal: valve,
      readClient: (mac, onStart) => valve.client(mac, 'read', onStart),
      ...(kernelQuota && { kernelQuota }),
      workers: config.main.workers,
      onUsage: (batch) => {
        for (const u of batch) {
          if (u.billedAheadBytes === undefined) continue;
          const fields = { mac: u.mac, session: u.sessionId, billed_ahead: u.billedAheadBytes, read: u.deltaBytes - u.billedAheadBytes };
          if (u.stoppedByKernel) log.info('stopped by the kernel quota', fields);
          else log.info('cut at the crossing', { ...fields, rate_kib_s: Math.round((u.cutRate ?? 0) * 1000 / 1024), close_ms: Math.round(u.cutCloseMs ?? 0) });
        }
        daemon?.sendUsage(batch);
        upstream.usage(batch);
        if (escrowSessions) for (const u of batch) void daemon?.checkCredit(u.sessionId);
      },
      onPayingClientNeedsGate: (mac) => void gates.reopen(mac),
      // nodogsplash's auth takes no limits, so nothing but sluice cuts a client while metering lags (docs/operations.md).
      onBlindOverdue: (macs) => {
        if ((config.main.portal === 'auto' ? meterRef?.stats().flavour : config.main.portal) !== 'nodogsplash') return;
        // The valve itself: the gatekeeper keeps a live session's gate open. The session stays ACTIVE and its gate
        // re-opens through the paying-client path once readings resume.
        for (const mac of macs) {
          log.warn('metering lags: safety net closes the gate', { mac });
          void valve.close(mac).catch((err: unknown) => log.warn('safety net close failed', { mac, reason: toSluiceError(err).message }));
        }
      },
      onTick: (report) => {
        if (report.ok) void gates.enforce(report.openUnpaid, report.at);
        if (!report.ok) log.debug('tick skipped', { reason: report.skipped, message: report.message });
      },
      onError: (err) => log.warn('meter', { code: err.code, reason: err.message }),
      initialMarks: sessions.list({ state: 'ACTIVE' }).flatMap((s) => (s.meterMark ? [[s.mac, s.meterMark] as const] : [])),
    });
    meterRef = meter;
    gates.auth = meter;
    sessionsRef = sessions;

    daemon = new Daemon(config, problems, options, log, sessions, store, valve, pricing, merchant, gates, ubus, meter, upstream);
    if (x402) { daemon.x402 = x402; daemon.closers.push(() => x402.close()); }
    daemon.escrowSessions = escrowSessions;
    daemon.kernelQuota = kernelQuota;
    if (escrowSessions) {
      sessions.on('ended', (s) => {
        for (const p of s.payments) if (p.method === escrowSessions.name) void escrowSessions.sessionEnded(p.reference, Date.now());
      });
      // Sessions that ended while sluice was down: their escrow sessions are due to close too.
      for (const s of recovery.ended) {
        for (const p of s.payments) if (p.method === escrowSessions.name) await escrowSessions.sessionEnded(p.reference, s.endedAt ?? Date.now());
      }
      daemon.closers.push(async () => escrowSessions.stop());
    }
    await daemon.run(recovery.ended);
    // Closes left by a restart or an outage: once the upstream sinks run, so their escrow-closed messages are queued.
    escrowSessions?.start();
    if (x402) void x402.resolvePending().then((r) => { if (r.granted + r.failed + r.pending > 0) log.info('x402 pending purchases', { ...r }); });
    return daemon;
  }

  private async run(endedWhileDown: Session[]): Promise<void> {
    const { sessions, gates, log } = this;
    sessions.on('started', (s) => {
      log.info('session started', { id: s.id, mac: s.mac, metric: s.metric, allotment: s.allotment, user: s.user ?? undefined });
      this.sendEvent({ event: 'started', session: sessionView(s, Date.now()) });
    });
    sessions.on('topup', (s, payment) => {
      log.info('session topped up', { id: s.id, mac: s.mac, allotment: s.allotment, method: payment.method });
      void this.kernelQuota?.toppedUp(s.mac);
      this.sendEvent({
        event: 'topup',
        session: sessionView(s, Date.now()),
        payment: { method: payment.method, reference: payment.reference, amount: payment.amount.toString(), asset: payment.asset },
      });
    });
    sessions.on('ended', (s) => {
      log.info('session ended', { id: s.id, mac: s.mac, state: s.state, cause: s.endCause, used: s.used, allotment: s.allotment });
      // The event says whether the gate closed: it is sent once the portal answered the deauth (bounded wait).
      void waitForClose(gates, s.mac, GATE_REPLY_WAIT_MS).then((gate) => {
        this.sendEvent({ event: 'ended', session: sessionView(s, Date.now()), gate });
      });
    });
    sessions.on('warning', (err) => log.warn('sessions', { code: err.code, reason: err.message }));

    // Escrow holds are not stored: they follow from the ledger (the latest receipt) and the journal (metered usage,
    // checkpointed at every hold), so they are re-evaluated first, before the start tick and the reconcile could
    // re-open a paying client: a session that was awaiting a receipt when sluice stopped stays held.
    if (this.escrowSessions) for (const s of sessions.list({ state: 'ACTIVE' })) await this.checkCredit(s.id);
    // Bill what passed since the last checkpoint before answering anyone: `used` never goes back after a kill -9.
    if (sessions.list({ state: 'ACTIVE' }).some((s) => s.meterMark)) {
      await Promise.race([this.meter.tick().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    const backend = new DaemonBackend({
      merchant: () => this.merchant,
      plans: () => this.config.pricing,
      sessions,
      gates,
      stats: () => this.stats(),
      reload: () => this.reload(),
      escrowOf: (s) => {
        const ref = escrowRefOf(s);
        const stepSize = this.config.pricing.find((p) => p.id === s.plan)?.stepSize;
        return ref === undefined ? null
          : this.escrowSessions?.escrowView(ref, isLive(s) && stepSize !== undefined ? { used: BigInt(s.used), stepSize } : undefined) ?? null;
      },
      onGateOpened: (s) => this.meter.sessionStarted(s.mac),
      receipt: async (args) => {
        if (!this.escrowSessions) throw new SluiceError('ERR_RECEIPT_SESSION', 'escrow sessions are not enabled');
        const live = (mac: string) => sessions.list({ mac }).find(isLive);
        const r = await this.escrowSessions.receipt(args, (mac) => { const s = live(mac); return s && escrowRefOf(s); });
        const session = sessions.list({}).find((s) => isLive(s) && s.payments.some((p) => p.reference === r.sessionId));
        if (session) await this.checkCredit(session.id);
        return r;
      },
    });
    this.backend = backend;
    this.object = await this.ubus.addObject(
      sluiceObject(backend, { onError: (method, code, message) => log.info('call failed', { method, code, reason: message }) }),
    );
    log.info('ubus object registered', { path: 'sluice', id: this.object.id });
    // x402 over HTTP on the LAN (http.listen): off by default.
    const lan = await startLanEndpoint(this.config, this.x402, backend, this.valve, log);
    if (lan) this.closers.unshift(() => lan.close());

    // Sessions that ran out while sluice was down: their gates may still be open.
    for (const s of endedWhileDown) await gates.close(s.mac);
    // The kernel quota's table before any auth can ask for a quota (the quotas an earlier run left for live data
    // sessions are kept, their count going on); gates found open without one get theirs after the reconcile.
    await this.kernelQuota?.start();
    try {
      const snapshot = await this.valve.snapshot();
      const report = await gates.reconcile(snapshot);
      if (this.kernelQuota?.enabled) {
        for (const c of snapshot.clients) {
          const s = sessions.byMac(c.mac);
          if (s === null || !isLive(s) || s.metric !== 'bytes' || gates.gateOf(c.mac) !== 'already-open' || this.kernelQuota.has(c.mac)) continue;
          // Counted from now: bytes since the meter's last reading pass on top (a late stop, never an early one).
          await this.kernelQuota.set(c.mac, c.ip, remainingNumber(s, Date.now()));
        }
      }
      log.info('reconciled with portal', {
        deauthed: report.deauthed.length, reopened: report.reopened.length, pending: report.pending.length, open: report.alreadyOpen,
      });
    } catch (err) {
      const e = toSluiceError(err);
      // The portal may start after sluice; the meter re-opens paying clients as soon as it answers.
      log.warn('cannot reconcile with portal yet', { code: e.code, reason: e.message });
    }
    await this.upstream.start();
    this.meter.start();
    log.info('sluice running', { router: this.config.main.routerId, poll_interval_ms: this.config.main.pollIntervalMs });
  }

  /** Re-reads the config (SIGHUP, `ubus call sluice reload`); a bad config is reported and the old one kept. */
  reload(): Promise<BlobmsgTable> {
    this.reloading ??= this.doReload().finally(() => { this.reloading = undefined; });
    return this.reloading;
  }

  private async doReload(): Promise<BlobmsgTable> {
    let next: Config;
    let problems: ConfigProblem[];
    try {
      ({ config: next, problems } = await loadConfigPartial(this.options.configPath));
      next = withOverrides(next, this.options);
    } catch (err) {
      // Unreadable or not UCI at all: nothing to take a valid part from.
      const e = toSluiceError(err, 'ERR_CONFIG_INVALID');
      this.log.error('reload rejected, keeping the running config', { code: e.code, reason: e.message });
      throw e;
    }
    logProblems(this.log, problems, 'reload');
    this.problems = problems;
    const problemList = problems.map((p) => ({ path: p.path, reason: p.reason, effect: p.effect ?? null }));
    if (!next.main.enabled) {
      this.log.warn('main.enabled is 0: stopping');
      if (this.options.onDisabled) setImmediate(this.options.onDisabled);
      return { plans: next.pricing.length, restart_required: [], stopping: true, problems: problemList };
    }
    this.pendingRestart = restartRequired(this.running, next.main);
    if (next.http.host !== this.runningHttp.host || next.http.port !== this.runningHttp.port) this.pendingRestart.push('http.listen');
    if (next.http.rateLimit !== this.runningHttp.rateLimit) this.pendingRestart.push('http.rate_limit');
    // RADIUS is built at start (its payment method, listener and queue): switching it on or off takes a restart.
    if (next.radius.enabled !== this.upstream.has('radius')) this.pendingRestart.push('radius.enabled');
    // The payment methods are built at start; their settings (facilitator, network, addresses, grace) apply now.
    if (next.x402.enabled !== (this.x402 !== null)) this.pendingRestart.push('x402.enabled');
    else this.x402?.reconfigure(next.x402);
    if (next.escrow.enabled !== (this.escrowSessions !== null)) this.pendingRestart.push('escrow.enabled');
    else this.escrowSessions?.reconfigure(next.escrow);
    this.pricing.setPlans(next.pricing);
    this.sessions.configure({ limits: next.limits, checkpointIntervalMs: next.main.checkpointIntervalMs });
    this.log.level = next.main.logLevel;
    await this.upstream.reload(next);
    this.config = { ...asRunning(next, this.running), http: this.runningHttp };
    // escrow.credit_steps (or a plan's step size) may have changed: held gates are re-evaluated now, not at the next reading.
    if (this.escrowSessions) for (const s of this.sessions.list({ state: 'ACTIVE' })) await this.checkCredit(s.id);
    this.log.info('config reloaded', {
      plans: next.pricing.length, problems: problems.length || undefined, restart_required: this.pendingRestart.join(',') || undefined,
    });
    return { plans: next.pricing.length, restart_required: [...this.pendingRestart], problems: problemList };
  }

  /** What upstream status reports tell (MQTT's retained status). */
  upstreamStatus(): StatusInfo {
    return {
      version: VERSION, uptime_s: Math.floor((Date.now() - this.startedAt) / 1000),
      sessions: { ...this.sessions.stats() }, pricing: this.config.pricing.map(planView),
    };
  }

  /** An admin method run for an upstream command channel (MQTT): arguments checked exactly like a ubus call. */
  async adminCommand(name: string, args: Record<string, unknown>): Promise<unknown> {
    if (!this.backend) throw new SluiceError('ERR_SESSIONS_STATE', 'sluice is still starting');
    return (await invokeMethod(this.backend, name, args as BlobmsgTable)).data;
  }

  stats(): BlobmsgTable {
    const mem = process.memoryUsage();
    return toBlobmsgTable({
      router_id: this.config.main.routerId,
      uptime_s: Math.floor((Date.now() - this.startedAt) / 1000),
      rss_mb: Math.round((mem.rss / 1048576) * 10) / 10,
      sessions: this.sessions.stats(),
      meter: this.meter.stats(),
      gates: this.gates.stats(),
      kernel_quota: this.kernelQuota?.stats() ?? { enabled: false },
      journal: this.store.stats(),
      upstream: this.upstream.stats(),
      config: redactConfig(this.config).main,
      // Options changed in the file that only a restart applies (the values above are the running ones).
      restart_required: this.pendingRestart,
      config_problems: this.problems.map((p) => ({ path: p.path, reason: p.reason, effect: p.effect ?? null })),
    });
  }

  /**
   * The escrow session behind a sluice session was closed on chain: say so with the amounts (ubus event
   * `escrow-closed`, and the upstream sinks: MQTT's session topic).
   */
  escrowClosed(escrowId: string, close: EscrowClose): void {
    const s = this.sessions.list({}).find((x) => x.payments.some((p) => p.method === ESCROW_METHOD && p.reference === escrowId));
    const escrow = this.escrowSessions?.escrowView(escrowId);
    const mac = s?.mac ?? this.escrowSessions?.macOf(escrowId);
    if (!escrow || mac === undefined) return;
    this.sendEvent({ event: 'escrow-closed', ...(s && { session: s.id }), mac, escrow });
    this.upstream.escrowClosed(s ?? null, mac, {
      sessionId: escrowId, units: close.units ?? '0', transaction: close.transaction || null, sellerAmount: close.sellerAmount, buyerRefund: close.buyerRefund,
    });
  }

  /**
   * Escrow credit gating for one session: past escrow.credit_steps beyond the latest receipt its gate is held closed
   * (event `awaiting-receipt`); a receipt that covers the usage releases it at once (event `receipt`).
   */
  checkCredit(sessionId: string): Promise<void> {
    // Called for every billed session on every tick while escrow is enabled: the sessions it is not about (no escrow
    // payment, nothing to hold or release) return here without a promise of their own.
    const method = this.escrowSessions;
    const s = method ? this.sessions.get(sessionId) : undefined;
    if (!method || !s || !isLive(s)) return SETTLED;
    const ref = escrowRefOf(s);
    const stepSize = this.config.pricing.find((p) => p.id === s.plan)?.stepSize;
    if (ref === undefined || stepSize === undefined) return SETTLED;
    const credit = method.creditOf(ref, BigInt(s.used), stepSize);
    if (!credit) return SETTLED;
    return this.applyCredit(s, ref, credit);
  }

  private async applyCredit(s: Session, ref: string, credit: NonNullable<ReturnType<X402SessionMethod['creditOf']>>): Promise<void> {
    const figures = { session: s.id, mac: s.mac, escrow_session: ref, metered_steps: credit.metered.toString(), receipt_units: credit.receipted.toString() };
    if (credit.state === 'awaiting-receipt' && await this.gates.hold(s.mac)) {
      // The hold is not stored, it is re-evaluated at start from the usage on flash: write that usage now (one
      // checkpoint per hold), or a kill -9 before the next checkpoint would re-open the gate with the usage lost.
      await this.sessions.checkpoint().catch(() => undefined);
      this.log.info('escrow credit exhausted: gate held until a receipt', figures);
      this.sendEvent({ event: 'awaiting-receipt', ...figures });
    } else if (credit.state === 'open' && await this.gates.release(s.mac)) {
      this.log.info('escrow receipt: gate re-opened', figures);
      this.sendEvent({ event: 'receipt', ...figures });
    }
  }

  private sendEvent(data: BlobmsgTable): void {
    if (this.ubus.state !== 'ready') return;
    this.ubus.send(SESSION_EVENT, data).catch((err: unknown) => {
      this.log.debug('event not sent', { reason: toSluiceError(err).message });
    });
  }

  /**
   * One `usage` event per tick, in chunks far below ubus's 1 MiB message limit; each chunk is built in its own
   * event-loop turn so a tick with tens of thousands of billed sessions never holds the main thread for long.
   */
  private sendUsage(batch: UsageReport[]): void {
    if (batch.length === 0 || this.ubus.state !== 'ready') return;
    const sendChunk = (from: number): void => {
      const now = Date.now();
      const end = Math.min(batch.length, from + USAGE_EVENT_CHUNK);
      const sessions: BlobmsgTable[] = [];
      for (let i = from; i < end; i++) {
        const u = batch[i]!;
        const figures = this.sessions.usageOf(u.sessionId, now);
        sessions.push({
          id: u.sessionId,
          mac: u.mac,
          metric: u.metric,
          delta: u.deltaBytes,
          used: figures ? figures.used.toString() : null,
          remaining: figures ? figures.remaining.toString() : null,
          exhausted: u.exhausted,
        });
      }
      this.sendEvent({ event: 'usage', sessions });
      if (end < batch.length) setImmediate(sendChunk, end);
    };
    sendChunk(0);
  }

  /** Clean stop: meter, ubus object, checkpoint, journal, valve. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn(`stop: ${what} failed`, { reason: toSluiceError(err).message });
      }
    };
    await step('meter', () => this.meter.close());
    await step('upstream', () => this.upstream.close());
    for (const close of this.closers) await step('payment method', close);
    await step('ubus object', async () => { if (this.ubus.state === 'ready') await this.object?.remove(); });
    await step('ubus', () => this.ubus.close());
    await step('sessions', () => this.sessions.close());
    await step('valve', () => this.valve.shutdown());
    this.log.info('sluice stopped');
  }
}

async function connectUbus(socketPath: string, log: Logger): Promise<UbusClient> {
  // ubusd normally starts long before sluice (START=95), but after a crash of both procd restarts them in any order.
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await UbusClient.connect({ socketPath, reconnect: { minDelayMs: 100, maxDelayMs: 5000 } });
    } catch (err) {
      if (attempt >= 30) throw new SluiceError('ERR_UBUS_CONNECT', `cannot connect to ubus at ${socketPath}`, { cause: err });
      if (attempt === 1) log.warn('ubus not reachable yet, retrying', { socket: socketPath, reason: toSluiceError(err).message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/**
 * One line when the ubus connection is lost and one when it is back (the client retries silently with backoff in
 * between), so a restarted ubusd shows as a pair in logread instead of a line per attempt or nothing at all.
 */
function logUbusConnection(ubus: UbusClient, socketPath: string, log: Logger): void {
  let lostAt = 0;
  ubus.on('state', (next: string, prev: string) => {
    if (next === 'reconnecting' && prev === 'ready') {
      lostAt = Date.now();
      log.warn('ubus connection lost, reconnecting', { socket: socketPath });
    } else if (next === 'ready' && prev === 'reconnecting') {
      log.info('ubus connection re-established', { socket: socketPath, down_ms: Date.now() - lostAt });
    }
  });
}

/** `sluice daemon [--config /etc/config/sluice] [--ubus-socket /var/run/ubus/ubus.sock] [--reset-state]`. */
export async function runDaemon(argv: string[]): Promise<number> {
  let configPath = '/etc/config/sluice';
  let ubusSocket: string | undefined;
  let resetState = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if ((arg === '--config' || arg === '-c') && value !== undefined) { configPath = value; i++; }
    else if ((arg === '--ubus-socket' || arg === '-s') && value !== undefined) { ubusSocket = value; i++; }
    else if (arg === '--reset-state') resetState = true;
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write('usage: sluice daemon [--config /etc/config/sluice] [--ubus-socket /var/run/ubus/ubus.sock] [--reset-state]\n');
      return 0;
    } else {
      process.stderr.write(`sluice daemon: unexpected argument ${JSON.stringify(arg)}\n`);
      return 2;
    }
  }
  const log = createLogger();
  const pre = await loadConfigPartial(configPath).catch(() => undefined);
  if (pre && !pre.config.main.enabled) {
    log.info('main.enabled is 0: not starting');
    return 0;
  }
  let daemon: Daemon | undefined;
  let stopOnDisabled = (): void => undefined;
  // Installed before start: procd (or an admin) may send SIGHUP while recovery runs, and Node's default for an
  // unhandled SIGHUP is to die. A reload asked for during start-up runs once the daemon is up.
  let reloadAfterStart = false;
  process.on('SIGHUP', () => {
    if (daemon) daemon.reload().catch(() => undefined);
    else reloadAfterStart = true;
  });
  try {
    daemon = await Daemon.start({
      configPath, ...(ubusSocket !== undefined && { ubusSocket }), ...(resetState && { resetState }), log, onDisabled: () => stopOnDisabled(),
    });
  } catch (err) {
    const e = toSluiceError(err);
    log.error('cannot start', { code: e.code, reason: e.message });
    // Exit non-zero even if something opened during the failed start (a ubus reconnect timer, a worker) would keep
    // the event loop alive: procd must see the failure to respawn or give up.
    setTimeout(() => process.exit(1), 200).unref();
    return 1;
  }
  const running = daemon;
  // The daemon never crashes on input; a bug that escapes a handler is logged, not fatal.
  process.on('uncaughtException', (err) => log.error('uncaught exception', { reason: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { reason: toSluiceError(err).message }));
  if (reloadAfterStart) running.reload().catch(() => undefined);
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info('stopping', { signal });
      running.stop().then(() => resolve(0), () => resolve(1));
    };
    stopOnDisabled = () => stop('main.enabled 0');
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
