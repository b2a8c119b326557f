/**
 * The daemon's entry to the LAN endpoint: runs it while http.listen is set and anything configured is served over it
 * (lanEndpointUses), else says why not, and follows what is served as it changes (LanEndpointKeeper: a reload, a
 * method's reason to serve that changed), with no restart. A method configured but not running (its state file damaged)
 * keeps the endpoint up for the others; its own routes answer ERR_PAYMENT_METHOD_UNAVAILABLE.
 */
import type { SluiceBackend } from '../api/index.ts';
import type { Config } from '../config/index.ts';
import { toSluiceError, type SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { REGISTERED, type LanParts, type LanUse } from '../payments/index.ts';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BindAgain, openFileLimit, totalConnectionBound } from '../listener/index.ts';
import { HttpEndpoint } from './server.ts';
import { NonceLedger } from './pcsync-nonces.ts';

/** The pay page ships next to the bundle: /usr/share/sluice/portal on the router, dist/portal in a checkout. */
function portalDir(): string | null {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'portal');
  return existsSync(join(dir, 'index.html')) ? dir : null;
}

/**
 * What the daemon's payment methods serve (PaymentPlugins.lan): each method's routes with its running face, the x402
 * faces, the methods configured but down (their state damaged: their routes answer 503), the pay-page forms offered.
 */
interface LanMethods extends Partial<LanParts> {}

/**
 * What the configuration serves over the LAN endpoint, each a reason to run it: each plugin's (its registered lanUse:
 * its schemes, routes and forms), plans for several devices (/devices), PC-sync logouts. Restores ride on these.
 * Read from the config, not from the methods that opened: a damaged state file must not take the others' routes down.
 */
function lanEndpointUses(config: Config, methods: LanMethods): string[] {
  const uses: string[] = [];
  for (const p of listOf(methods)) if (p.lanUse?.on(config)) uses.push(p.lanUse.name);
  if (config.pricing.some((p) => (p.devices ?? 1) > 1)) uses.push('devices');
  if (config.http.pcsyncSecret !== '') uses.push('pcsync');
  // sluice's own gate: the pay page, /captive and the answer to a phone's probe run whenever it gates.
  if (config.main.portal === 'sluice') uses.push('portal');
  return uses;
}

/** What the LAN endpoint runs with beside the config and the methods: the daemon's parts it reads. */
interface LanEndpointParts {
  backend: SluiceBackend;
  /** The portal client with an address: the one resolver every door asks (gate/mac-resolver.ts). */
  macOf(ip: string): Promise<string | null>;
  log: Log;
}

/**
 * The LAN endpoint kept in step with what the config and the methods serve (follow(): at start, after every reload,
 * when a method's reason to serve changes: PluginHost.servesChanged): started when something
 * comes to be served, its routes' faces, x402 schemes, pay-page forms and methods down replaced in place while it
 * runs, stopped when nothing is served any more. Paid sessions live in the session manager, never here: starting or
 * stopping the endpoint touches none. Its address moves on reload (move); its rate limit and PC-sync secret are read
 * once, at the start of the daemon (a restart changes them: config/reload-diff.ts). One step at a time, in the order
 * asked. An address it cannot bind (ERR_HTTP_LISTEN) is tried again on its own (listener/bind-again.ts).
 */
export class LanEndpointKeeper {
  private endpoint: HttpEndpoint | null = null;
  private serving = '';
  private toldOff = false;
  private closed = false;
  private queue: Promise<void> = Promise.resolve();
  /** What the last follow asked: what a try after a refused bind starts with. */
  private latest: { config: Config; methods: LanMethods } | null = null;
  private readonly again = new BindAgain(() => {
    if (this.latest) void this.follow(this.latest.config, this.latest.methods).catch(() => undefined);
  });

  constructor(private readonly parts: LanEndpointParts) {}

  /** The endpoint while it listens (ubus `stats` → `http`). */
  get running(): HttpEndpoint | null {
    return this.endpoint;
  }

  follow(config: Config, methods: LanMethods): Promise<void> {
    this.latest = { config, methods };
    const step = this.queue.then(() => this.step(config, methods));
    this.queue = step.catch(() => undefined);
    return step;
  }

  /**
   * http.listen moved by a reload: the running endpoint rebinds there (ERR_HTTP_LISTEN: it stays where it was, the
   * caller reports it), or stops when listen is now off; one that is not running starts at the next follow, on the new
   * address. Its routes, buckets and the sessions it sold are untouched; the requests in flight finish.
   */
  move(http: { host: string; port: number }): Promise<void> {
    const step = this.queue.then(() => this.moveTo(http));
    this.queue = step.catch(() => undefined);
    return step;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.again.done();
    await this.queue;
    await this.endpoint?.close();
    this.endpoint = null;
  }

  private async moveTo({ host, port }: { host: string; port: number }): Promise<void> {
    const { endpoint } = this;
    if (this.closed || !endpoint || endpoint.listensOn(host, port)) return;
    const { log } = this.parts;
    if (host === '') {
      await endpoint.close();
      this.endpoint = null;
      this.serving = '';
      log.info('LAN endpoint stopped: http.listen is off');
      return;
    }
    await endpoint.rebind(host, port);
    log.info('LAN endpoint moved', { host, port: endpoint.port });
  }

  private async step(config: Config, methods: LanMethods): Promise<void> {
    if (this.closed || config.http.host === '') {
      this.again.done();
      return;
    }
    const { log } = this.parts;
    const uses = lanEndpointUses(config, methods);
    const serves = uses.join(',');
    if (uses.length === 0) this.again.done();
    if (this.endpoint && uses.length === 0) {
      await this.endpoint.close();
      this.endpoint = null;
      this.serving = '';
      log.info('LAN endpoint stopped: nothing is served over it any more');
      return;
    }
    if (this.endpoint) {
      this.endpoint.serve({
        schemes: methods.schemes ?? [],
        ...(methods.knownSchemes && { knownSchemes: methods.knownSchemes }),
        forms: methods.forms ?? {},
        unavailable: methods.unavailable ?? [],
        ...(methods.methods && { methods: methods.methods }),
      });
      if (serves !== this.serving) {
        const unavailable = methods.unavailable ?? [];
        log.info('LAN endpoint serves', {
          serves,
          ...(unavailable.length > 0 && { unavailable: unavailable.join(',') }),
        });
      }
      this.serving = serves;
      return;
    }
    if (uses.length === 0) {
      // Said once while it stays off, not at every reload.
      if (!this.toldOff) warnNothingServed(log, methods);
      this.toldOff = true;
      return;
    }
    try {
      this.endpoint = await startLanEndpoint(config, methods, this.parts);
    } catch (err) {
      this.refused(toSluiceError(err));
      return;
    }
    if (this.endpoint) this.serving = serves;
    this.again.done();
    this.toldOff = false;
  }

  /**
   * Not started: an address it cannot bind is tried again (listener/bind-again.ts); anything else waits for a reload.
   */
  private refused(e: SluiceError): void {
    if (e.code === 'ERR_HTTP_LISTEN') this.again.refused(this.parts.log, 'LAN endpoint', e);
    else this.parts.log.error('LAN endpoint not started', { code: e.code, reason: e.message });
  }
}

/** The plugin list the methods come from (the daemon's), or payments/plugins.ts's. */
function listOf(methods: LanMethods): ReadonlyArray<{ readonly lanUse: LanUse | null }> {
  return methods.methods ?? REGISTERED;
}

function warnNothingServed(log: Log, methods: LanMethods): void {
  const names = listOf(methods).flatMap((p) => (p.lanUse ? [p.lanUse.name] : []));
  log.warn(
    `http.listen is set but nothing is served over it (none of ${names.join(', ')} on, no ` +
      'several-devices plan, no http.pcsync_secret): the LAN endpoint stays off until something is',
  );
}

async function startLanEndpoint(
  config: Config,
  methods: LanMethods,
  { backend, macOf, log }: LanEndpointParts,
): Promise<HttpEndpoint | null> {
  if (config.http.host === '') return null;
  const pcsyncOn = config.http.pcsyncSecret !== '';
  const uses = lanEndpointUses(config, methods);
  if (uses.length === 0) {
    warnNothingServed(log, methods);
    return null;
  }
  const unavailable = methods.unavailable ?? [];
  const maxConnections = totalConnectionBound(openFileLimit());
  const endpoint = await HttpEndpoint.start({
    host: config.http.host,
    port: config.http.port,
    rateLimitPerMinute: config.http.rateLimit,
    backend,
    schemes: methods.schemes ?? [],
    ...(methods.knownSchemes && { knownSchemes: methods.knownSchemes }),
    forms: methods.forms ?? {},
    unavailable,
    ...(methods.methods && { methods: methods.methods }),
    portalDir: portalDir(),
    pcsync: pcsyncOn
      ? {
          secret: config.http.pcsyncSecret,
          windowMs: config.http.pcsyncWindowMs,
          nonces: await NonceLedger.open(config.main.stateDir, config.http.pcsyncWindowMs, backend.now(), log),
        }
      : null,
    captive: { portalUrl: config.http.portalUrl, venueUrl: config.http.venueUrl },
    answerProbes: config.main.portal === 'sluice',
    macOf,
    maxConnections,
    log,
  });
  log.info('LAN endpoint listening', {
    host: config.http.host,
    port: endpoint.port,
    max_connections: maxConnections,
    serves: uses.join(','),
    ...(unavailable.length > 0 && { unavailable: unavailable.join(',') }),
  });
  return endpoint;
}
