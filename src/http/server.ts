/**
 * The x402 HTTP endpoint on the LAN (`http.listen`, off by default): any x402 client (an agent with @x402/fetch, a
 * wallet page) buys WiFi with standard x402 v2 headers, nothing sluice-specific.
 *   GET /                  the plans (JSON; buy.ts)
 *   GET /buy?plan=&steps=  402 + PAYMENT-REQUIRED (base64 JSON) describing the price (each running scheme's offer,
 *                          side by side: the schemes the plugins registered, X402Face); with PAYMENT-SIGNATURE:
 *                          buys the session for the MAC that owns the request's source IP with the scheme the
 *                          payload names, 200 + PAYMENT-RESPONSE + the session (buy.ts)
 *   GET /session           the caller's own session (this one and the endpoint's other own routes: own-routes.ts)
 *   GET /captive           the RFC 8908 captive portal API for the caller (application/captive+json; captive-api.ts)
 *   GET /portal, /portal.js  the customer's pay page (files in `portalDir`, /usr/share/sluice/portal on the router):
 *                          plans, a browser wallet's x402 payment, the methods' forms and scripts; openNDS's
 *                          splash links to it (pay-page.ts)
 *   the payment methods' own routes (PluginRegistrars.lanRoute, in the plugin list's order; docs/x402.md lists them;
 *                          the rules below apply to them as to the rest; one may move a session: LanRequest.moveHere)
 *   POST /restore/challenge, /restore  a returning customer's live session moved to this device by a signature of the
 *                          paying wallet (restore.ts)
 *   GET /devices, POST /devices/join {code}, POST /devices/remove {mac}: several devices per purchase (devices.ts)
 *   POST /pcsync/logout    a PC system's signed logout (http.pcsync_secret; pcsync.ts, docs/pc-sync.md): the named
 *                          session ends `pc-logout`
 * GET, and POST only for the POST routes above; HTTP/1.x only; headers capped at 16 KiB, two token buckets per client
 * IP (rate_limit for what moves money or tries to: /buy with a payment, a method's paying route; a generous
 * one for the rest, so the pay page's own loads and status polls never lock a customer out), bounded connections
 * (listener/) with header, request and keep-alive timeouts; answers carry no secrets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpStatusOf, toSluiceError } from '../errors.ts';
import { paymentOf, sessionView } from '../api/index.ts';
import { lanMethodOf, REGISTERED, type LanMethod, type LanRequest, type LanRoute } from '../payments/index.ts';
import type { Session } from '../sessions/index.ts';
import { buy, plans, purchased } from './buy.ts';
import { clientIpOf, DoorLimits, Listener, readJsonBody } from '../listener/index.ts';
import {
  captiveRoute,
  devicesRoute,
  forAnotherHost,
  pcsyncRoute,
  probeRedirect,
  restoreRoute,
  sessionRoute,
} from './own-routes.ts';
import { portalFile, portalFilesOf, PortalFiles } from './pay-page.ts';
import { PCSYNC_LOGOUT_PATH } from './pcsync.ts';
import { DEVICES_PATHS } from './devices.ts';
import { formOffered } from './pay-forms.ts';
import {
  firstUnavailable,
  limited,
  methodUnavailable,
  portalClientMac,
  refused,
  send,
  type RouteCall,
} from './reply.ts';
import type { HttpEndpointOptions } from './options.ts';
import { RestoreDesk } from './restore.ts';

// Where test/errors-status.test.ts takes it: the endpoint's status table.
export { refusalStatus } from './reply.ts';

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_URL = 512;
const POST_PATHS = new Set(['/restore', '/restore/challenge']);
/**
 * A connection's headers within this, its whole request within REQUEST_TIMEOUT_MS; between requests Node's keep-alive
 * timeout (5 s) closes it. No idle timeout beyond these: a purchase's answer may wait longer than any fixed bound on
 * a method's facilitator (up to 120 s per call), and cutting the connection then would lose the answer.
 */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export class HttpEndpoint {
  /**
   * Every request: a generous bound so a flood of page loads from one IP is still bounded; payment attempts, what an
   * abuser repeats (signatures to verify, codes to try on a server), a smaller one.
   */
  private readonly limits: DoorLimits;
  private readonly restorer: RestoreDesk;
  /** The pay page's files by path: its own and the methods' scripts. */
  private portalFiles: Record<string, [string, string]>;
  /** Their bytes as last read (PortalFiles), dropped at each serve(): a reload reads them anew. */
  private readonly portalBytes = new PortalFiles();
  /** The methods' routes by `METHOD path`, each with its method (payments' LanRoute). */
  private routes = new Map<string, { route: LanRoute; method: LanMethod }>();
  /** Each method with its running face, as served now (serve() replaces them). */
  private methods: readonly LanMethod[] = [];

  private constructor(
    private readonly listener: Listener,
    private options: HttpEndpointOptions,
  ) {
    this.portalFiles = {};
    this.adopt(options.methods ?? REGISTERED.map((r) => lanMethodOf(r, null)));
    // The wallets that paid for a session, as each method's payments show them (the methods served now).
    const payersOf = (s: Session): string[] => [...new Set(this.methods.flatMap((m) => m.payersOf?.(s, m.face) ?? []))];
    this.restorer = new RestoreDesk({ backend: options.backend, payersOf, ...(options.log && { log: options.log }) });
    this.limits = new DoorLimits(options.rateLimitPerMinute);
  }

  private adopt(methods: readonly LanMethod[]): void {
    const routes = new Map<string, { route: LanRoute; method: LanMethod }>();
    for (const method of methods)
      for (const route of method.routes) routes.set(`${route.method} ${route.path}`, { route, method });
    this.routes = routes;
    this.methods = methods;
    this.portalFiles = portalFilesOf(methods);
  }

  /**
   * What the methods serve now (a reload, a method's reason to serve changed): their faces, x402 schemes, forms and the
   * methods down, in place of the ones the endpoint started with. A request already inside a handler ends on what it
   * began with; the next one reads these.
   */
  serve(parts: Pick<HttpEndpointOptions, 'schemes' | 'knownSchemes' | 'forms' | 'unavailable' | 'methods'>): void {
    this.options = { ...this.options, ...parts };
    this.portalBytes.forget();
    if (parts.methods) this.adopt(parts.methods);
  }

  static async start(options: HttpEndpointOptions): Promise<HttpEndpoint> {
    let endpoint: HttpEndpoint | undefined;
    const listener = await Listener.open({
      host: options.host,
      port: options.port,
      maxHeaderBytes: MAX_HEADER_BYTES,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }),
      ...(options.maxConnectionsPerIp !== undefined && { maxConnectionsPerIp: options.maxConnectionsPerIp }),
      handler: (req, res) => {
        endpoint!.handle(req, res).catch((err: unknown) => {
          options.log?.warn('http handler failed', { reason: toSluiceError(err).message });
          if (!res.headersSent) send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
        });
      },
    });
    endpoint = new HttpEndpoint(listener, options);
    return endpoint;
  }

  get port(): number {
    return this.listener.port;
  }

  /** Whether the endpoint listens on `host:port` now (http.listen as configured). */
  listensOn(host: string, port: number): boolean {
    return this.listener.bound(host, port);
  }

  /**
   * Moves to `host:port` (http.listen changed by a reload): bound there first, so ERR_HTTP_LISTEN leaves it where it
   * was; the old socket's requests finish. Sessions, buckets and routes stay as they are.
   */
  rebind(host: string, port: number): Promise<void> {
    return this.listener.rebind(host, port);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = clientIpOf(req.socket);
    // Node parses `GET /` (HTTP/0.9: no version, no headers) and `HTTP/2.0` request lines; neither is HTTP/1.x.
    if (req.httpVersionMajor !== 1) {
      return send(
        res,
        400,
        { error: { code: 'ERR_HTTP_VERSION', message: 'HTTP/1.0 or HTTP/1.1 only' } },
        { connection: 'close' },
      );
    }
    // Before the rate limit: a phone probes often, and a probe answered 429 would hide the portal from it.
    if (this.options.answerProbes === true && forAnotherHost(this.options, req.headers.host, this.port)) {
      req.resume();
      return probeRedirect(this.options, this.port, res, ip);
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const call: RouteCall = { req, res, ip, path };
    const postPath = req.method === 'POST' ? path : '';
    // A restore counts as a payment attempt: each one is a signature to recover; so do a PC-sync call and a device's
    // join or removal (what a forger or a code guesser on the LAN would repeat).
    const mine =
      postPath === PCSYNC_LOGOUT_PATH || postPath === DEVICES_PATHS.join || postPath === DEVICES_PATHS.remove;
    const signed = typeof req.headers['payment-signature'] === 'string';
    const routed = this.routes.get(`${req.method} ${path}`);
    const paying =
      POST_PATHS.has(postPath) ||
      mine ||
      (path === '/buy' && signed) ||
      routed?.route.paying === true ||
      (routed?.route.paying === 'signed' && signed);
    if (!this.limits.admit(ip, paying)) return limited(call, this.options.log);
    if ((req.url ?? '').length > MAX_URL)
      return send(res, 414, { error: { code: 'ERR_INVALID_ARGUMENT', message: 'URL too long' } });
    if (routed) return this.methodRoute(routed, call);
    if (POST_PATHS.has(postPath) || mine) {
      try {
        if (postPath === PCSYNC_LOGOUT_PATH) return await pcsyncRoute(this.options, req, res, ip);
        if (postPath === DEVICES_PATHS.join || postPath === DEVICES_PATHS.remove)
          return await devicesRoute(this.options, call);
        return await restoreRoute(this.options, this.restorer, call);
      } catch (err) {
        return refused(req, res, err);
      }
    }
    if (req.method !== 'GET') {
      const posts = [
        ...POST_PATHS,
        DEVICES_PATHS.join,
        DEVICES_PATHS.remove,
        PCSYNC_LOGOUT_PATH,
        ...[...this.routes.keys()].flatMap((k) => (k.startsWith('POST ') ? [k.slice(5)] : [])),
      ];
      return send(
        res,
        405,
        { error: { code: 'ERR_HTTP_METHOD', message: `only GET (and POST ${posts.join(', ')})` } },
        { allow: 'GET' },
      );
    }
    // Answers are complete at once; a GET with a body is drained and ignored, never buffered.
    req.resume();
    const url = new URL(req.url ?? '/', 'http://sluice.invalid');
    try {
      if (url.pathname === '/') return send(res, 200, plans(this.options));
      if (url.pathname === '/buy') return await buy(this.options, call, url);
      if (url.pathname === '/session') return await sessionRoute(this.options, res, ip);
      if (url.pathname === DEVICES_PATHS.list) return await devicesRoute(this.options, { ...call, path: url.pathname });
      if (url.pathname === '/captive') return await captiveRoute(this.options, this.port, res, ip);
      const file = this.portalFiles[url.pathname];
      if (file) return await portalFile(res, this.portalBytes, this.options.portalDir, file);
      return send(res, 404, {
        error: { code: 'ERR_HTTP_NOT_FOUND', message: 'GET /, /buy, /session, /captive or /portal' },
      });
    } catch (err) {
      const e = toSluiceError(err);
      return send(res, httpStatusOf(e.code), { error: { code: e.code, message: e.message } });
    }
  }

  /**
   * A payment method's route (PluginRegistrars.lanRoute): 503 while its method is configured but down, else its handler
   * with the method's running face (or null); a refusal is answered as every POST's is (refused()).
   */
  private async methodRoute(
    { route, method }: { route: LanRoute; method: LanMethod },
    { req, res, ip }: RouteCall,
  ): Promise<void> {
    try {
      const lanRequest = this.lanRequest(req, ip, method);
      if (firstUnavailable(this.options.unavailable, [method.plugin.name]) && !route.servesWhileDown?.(lanRequest)) {
        req.resume();
        throw methodUnavailable(method.plugin.name);
      }
      // Answers to a GET are complete at once; a GET with a body is drained and ignored, never buffered.
      if (route.method === 'GET') req.resume();
      const answer = await route.handler(lanRequest, method.face);
      return send(res, answer.status, answer.body, {
        ...answer.headers,
        ...(req.complete ? {} : { connection: 'close' }),
      });
    } catch (err) {
      return refused(req, res, err, route);
    }
  }

  /** What a method's route may read and do (payments' LanRequest): its body bounded, the caller's MAC, a purchase. */
  private lanRequest(req: IncomingMessage, ip: string, method: LanMethod): LanRequest {
    const { backend, log } = this.options;
    return {
      url: new URL(req.url ?? '/', 'http://sluice.invalid'),
      ip,
      log,
      header: (name) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      },
      json: (max, code, shape) => readJsonBody(req, max, code, shape),
      mac: () => portalClientMac(this.options.macOf, ip),
      purchase: async (mac, payment, plan) => {
        const before = backend.session({ mac });
        const outcome = await backend.purchase({ mac, ip, ...(plan !== undefined && { plan }), ...paymentOf(payment) });
        return purchased(backend, outcome, before);
      },
      quote: (input) => backend.quote(input),
      session: (mac) => backend.session({ mac }),
      sessionsOf: (user) => backend.sessions({ user }),
      moveHere: async (session, mac) => {
        const moved = await this.restorer.moveHere(session, mac);
        return {
          session: sessionView(moved.session, backend.now()),
          restored: true,
          from: moved.from,
          gate: moved.gate,
        };
      },
      formOffered: formOffered(this.options.forms, method.payForm?.key),
    };
  }

  /** `stats` → `http`: where it listens, the methods it cannot serve, PC-sync's nonce figures. */
  stats(): object {
    return {
      listening: true,
      port: this.port,
      unavailable: [...(this.options.unavailable ?? [])],
      pcsync: this.options.pcsync ? this.options.pcsync.nonces.stats(this.options.backend.now()) : { enabled: false },
    };
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}
