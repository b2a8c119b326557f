/**
 * sluice as a RADIUS NAS: the `radius` upstream sink (accounting) and the Disconnect/CoA listener, and the port its
 * `voucher` payment method asks through (the method itself is the radius plugin's: payments/radius/). Nothing here
 * runs when `radius.enabled` is 0 (fromConfig returns null). A RADIUS outage never blocks a purchase or a tick:
 * accounting queues on flash, a voucher purchase fails with ERR_UPSTREAM_UNAVAILABLE and nothing else.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config, ConfigProblem, RadiusConfig } from '../../config/index.ts';
import type { Log } from '../../log.ts';
import { backgroundTimers, systemTimers, type TimerHandle, type Timers } from '../../time.ts';
import type { EndCause, Session } from '../../sessions/index.ts';
import { DasServer, localAddressToward, RadiusClient, type NasIdentity } from '../../radius/index.ts';
import type { SinkEvent, UpstreamSink } from '../sink.ts';
import { venueSessionOf } from '../venue-args.ts';
import { accountingUserName, RadiusAccounting } from './accounting.ts';
import type { DasRates } from './coa-rates.ts';
import { answerDas, type DasContext } from './das.ts';

/** What the radius upstream needs from the daemon. */
export interface RadiusDeps {
  log: Log;
  stateDir: string;
  sessions: {
    get(id: string): Session | null;
    byMac(mac: string): Session | null;
    list(filter: { state: 'ACTIVE' }): Session[];
    end(id: string, cause: EndCause): Promise<Session | null>;
    setLimits(id: string, change: { seconds?: bigint; bytes?: bigint }): Promise<Session>;
  };
  recovered: () => { active: readonly Session[]; ended: readonly Session[] };
  /** Opened at the daemon's start (PluginHost.atStart): its accounting's state is read synchronously. */
  atStart?: boolean;
  /** Closes a client's gate (Disconnect answers ACK once the gates are closed). */
  closeGate: (mac: string) => Promise<unknown>;
  /** Speed tiers, for a CoA-Request's rates (coa-rates.ts); absent: refused (Resources-Unavailable). */
  rates?: DasRates;
  /** The voucher method that asks through this NAS (its figures are told in this sink's stats). */
  voucher?: (port: RadiusVoucherPort) => { stats(): unknown };
  /**
   * All of its timers (a test's fake time). Default: accounting's and the retired clients' unref'd (backgroundTimers:
   * sockets keep the process alive), the Disconnect's gate wait plain (systemTimers: its answer awaits it).
   */
  timers?: Timers;
}

/** What a RADIUS voucher method asks through the NAS: the auth server, its identity, accounting's memory of it. */
export interface RadiusVoucherPort {
  request: RadiusClient['request'];
  nas(): NasIdentity;
  /** An accepted voucher's Acct-Interim-Interval and Class, echoed in its session's accounting. */
  accepted(reference: string, terms: { interimIntervalS: number | null; classes: Buffer[] }): void;
}

/** The settings a Disconnect/CoA listener is built from: a change of any of them restarts it. */
function dasSettings(c: RadiusConfig): string {
  return JSON.stringify([c.coaPort, c.coaListen, c.dasClients, c.dasSecret, c.secret, c.servers, c.nasIdentifier]);
}

/** Longest a Disconnect-ACK waits for the portal to close the gates. */
const GATE_WAIT_MS = 1500;

export class RadiusUpstream implements UpstreamSink {
  readonly name = 'radius';
  private readonly voucher: { stats(): unknown } | null;
  private readonly accounting: RadiusAccounting;
  private acctClient: RadiusClient;
  private authClient: RadiusClient;
  /** Clients a reload replaced, kept a minute for their in-flight requests. */
  private readonly retired = new Set<RadiusClient>();
  private das: DasServer | undefined;
  /** What the running listener was started with (its settings can differ from this.config after a failed move). */
  private dasSettings: string | null = null;
  /** Where it listens. */
  private dasAt: { port: number; host: string } | null = null;
  private nasIp: string;

  private constructor(
    private config: RadiusConfig,
    private readonly deps: RadiusDeps,
    multiSessionOf?: (s: Session) => string | null,
  ) {
    this.nasIp = config.nasIp;
    this.acctClient = this.client(config, config.acctPort);
    this.authClient = this.client(config, config.authPort);
    this.accounting = new RadiusAccounting({
      dir: join(deps.stateDir, 'radius'),
      maxBytes: config.queueMaxBytes,
      client: () => this.acctClient,
      nas: () => this.nas(),
      interimMs: () => this.config.interimIntervalMs,
      maxInFlight: config.maxInFlight,
      maxBackoffMs: config.backoffMaxMs,
      log: deps.log,
      session: (id) => deps.sessions.get(id),
      recovered: deps.recovered,
      atStart: deps.atStart === true,
      ...(multiSessionOf && { multiSessionOf }),
      ...(deps.timers && { timers: deps.timers }),
    });
    this.voucher =
      deps.voucher?.({
        request: (build) => this.authClient.request(build),
        nas: () => this.nas(),
        accepted: (reference, terms) =>
          this.accounting.rememberVoucher(reference, {
            interimIntervalS: terms.interimIntervalS,
            classes: terms.classes,
          }),
      }) ?? null;
  }

  /** null when `radius.enabled` is 0: then nothing of RADIUS exists in the daemon. */
  static fromConfig(config: Config, deps: RadiusDeps): RadiusUpstream | null {
    if (!config.radius.enabled || config.radius.servers.length === 0) return null;
    // In a venue, every router's records of one venue session share its lease id (the fleet's), sold here or moved in.
    const { venue, routerId } = config.main;
    const multi = venue === '' ? undefined : (s: Session) => venueSessionOf(routerId, s);
    return new RadiusUpstream(config.radius, deps, multi);
  }

  private client(c: RadiusConfig, port: number): RadiusClient {
    return new RadiusClient({
      servers: c.servers.map((host) => ({ host, port, secret: c.secret })),
      timeoutMs: c.timeoutMs,
      retries: c.retries,
      maxInFlight: Math.min(255, c.maxInFlight * 2),
    });
  }

  private nas(): NasIdentity {
    return {
      identifier: this.config.nasIdentifier,
      ip: this.nasIp,
      calledStationId: this.config.calledStationId || this.config.nasIdentifier,
    };
  }

  async start(): Promise<void> {
    if (this.nasIp === '') this.nasIp = await localAddressToward(this.config.servers[0]!, this.config.acctPort);
    await this.accounting.start();
    await this.startDas();
  }

  /** Starts the listener of this.config (this.das on success); the reason it could not listen, else null. */
  private async startDas(): Promise<string | null> {
    const c = this.config;
    if (c.coaPort === 0) return null;
    const secret = c.dasSecret || c.secret;
    // A server given by name is matched by its addresses (requests come from an address).
    const hosts = c.dasClients.length > 0 ? c.dasClients : c.servers;
    const addresses = (
      await Promise.all(
        hosts.map((h) =>
          isIP(h)
            ? [h]
            : import('node:dns/promises')
                .then(({ lookup }) => lookup(h, { all: true }))
                .then(
                  (r) => r.map((a) => a.address),
                  () => {
                    this.deps.log.warn('radius: cannot resolve Disconnect/CoA client', { host: h });
                    return [];
                  },
                ),
        ),
      )
    ).flat();
    const clients = addresses.map((address) => ({ address, secret }));
    const das: DasContext = {
      sessions: this.deps.sessions,
      userNameOf: accountingUserName,
      nasIdentifier: c.nasIdentifier,
      nasIp: this.nasIp,
      ...(this.deps.rates && { rates: this.deps.rates }),
      // The ACK waits for the gates, but not for ever: a slow portal must not make the server retransmit (the
      // sessions are already ended on flash and the gatekeeper keeps retrying a close that failed).
      closeGates: async (ended) => {
        const timers = this.deps.timers ?? systemTimers;
        let timer: TimerHandle;
        await Promise.race([
          Promise.all(ended.map((s) => this.deps.closeGate(s.mac).catch(() => undefined))),
          new Promise((r) => {
            timer = timers.setTimeout(() => r(undefined), GATE_WAIT_MS);
          }),
        ]);
        timers.clearTimeout(timer);
      },
    };
    try {
      this.das = await DasServer.start({
        port: c.coaPort,
        host: c.coaListen,
        clients,
        answer: (request) => answerDas(request, das),
        log: this.deps.log,
      });
      this.dasSettings = dasSettings(c);
      this.dasAt = { port: c.coaPort, host: c.coaListen };
    } catch (err) {
      // Accounting and vouchers work without it; say why Disconnect/CoA does not.
      this.deps.log.error('radius: Disconnect/CoA listener not started', { reason: (err as Error).message });
      return (err as Error).message;
    }
    return null;
  }

  /**
   * A reload that changed the listener. Moving it to another port binds the new socket first and keeps the old one if
   * that fails (a port in use): Disconnect/CoA never goes quietly off. On the same port (new address, clients or
   * secrets) the old socket is closed first: it holds the port. A failure is returned as a problem for the reply.
   */
  private async restartDas(): Promise<ConfigProblem[]> {
    const next = this.config;
    const old = this.das;
    const oldAt = old ? this.dasAt : null;
    const oldSettings = this.dasSettings;
    const moved = oldAt === null || next.coaPort !== oldAt.port;
    this.das = undefined;
    this.dasSettings = null;
    if (!moved) await old?.close();
    const failed = await this.startDas();
    if (failed === null) {
      if (moved) await old?.close();
      return [];
    }
    if (moved && old) {
      this.das = old;
      this.dasSettings = oldSettings;
    }
    const still =
      moved && oldAt
        ? `still listening on UDP ${oldAt.host || '*'}:${oldAt.port}`
        : 'Disconnect/CoA is off until a reload with a usable port';
    return [
      {
        path: 'radius.coa_port',
        section: 'radius',
        option: 'coa_port',
        value: String(next.coaPort),
        reason: `${failed}; ${still}`,
      },
    ];
  }

  onEvent(event: SinkEvent): void {
    this.accounting.onEvent(event);
  }

  async reload(config: Config): Promise<ConfigProblem[]> {
    const next = config.radius;
    const prev = this.config;
    // radius.enabled 0 takes effect at the restart the reload asks for (restart_required); until then keep running.
    if (!next.enabled) return [];
    this.config = next;
    if (
      JSON.stringify([next.servers, next.secret, next.acctPort, next.authPort, next.timeoutMs, next.retries]) !==
      JSON.stringify([prev.servers, prev.secret, prev.acctPort, prev.authPort, prev.timeoutMs, prev.retries])
    ) {
      const retired = [this.acctClient, this.authClient];
      this.acctClient = this.client(next, next.acctPort);
      this.authClient = this.client(next, next.authPort);
      // In-flight requests finish on the old sockets first (a stop closes them at once: their open sockets would hold
      // the process).
      for (const old of retired) this.retired.add(old);
      (this.deps.timers ?? backgroundTimers).setTimeout(() => {
        for (const old of retired) {
          this.retired.delete(old);
          void old.close();
        }
      }, 60_000);
      // Records queued through an outage of the old servers go to the new ones now, not after the old pause.
      this.accounting.retryNow();
    }
    this.accounting.configure({
      maxInFlight: next.maxInFlight,
      maxBackoffMs: next.backoffMaxMs,
      maxBytes: next.queueMaxBytes,
    });
    if (next.nasIp !== prev.nasIp)
      this.nasIp = next.nasIp || (await localAddressToward(next.servers[0]!, next.acctPort));
    // Against what the listener runs with, not the previous file: a move that failed is tried again at each reload.
    if (next.coaPort === 0 ? this.das !== undefined : dasSettings(next) !== this.dasSettings) {
      if (next.coaPort === 0) {
        await this.das?.close();
        this.das = undefined;
        this.dasSettings = null;
        this.dasAt = null;
        return [];
      }
      return this.restartDas();
    }
    return [];
  }

  stats(): Record<string, unknown> {
    return {
      accounting: this.accounting.stats(),
      client: this.acctClient.stats(),
      voucher: this.voucher?.stats() ?? null,
      das: this.das ? this.das.stats() : null,
    };
  }

  async close(): Promise<void> {
    await this.das?.close();
    await this.accounting.close();
    for (const c of [this.acctClient, this.authClient, ...this.retired]) await c.close();
    this.retired.clear();
  }

  destroy(): void {
    void this.das?.close();
    this.accounting.destroy();
    for (const c of [this.acctClient, this.authClient, ...this.retired]) void c.close();
    this.retired.clear();
  }
}
