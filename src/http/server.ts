/**
 * The x402 HTTP endpoint on the LAN (`http.listen`, off by default): any x402 client (an agent with @x402/fetch, a
 * wallet page) buys WiFi with standard x402 v2 headers, nothing sluice-specific.
 *   GET /                  the plans (JSON)
 *   GET /buy?plan=&steps=  402 + PAYMENT-REQUIRED (base64 JSON) describing the price (`exact`, `batch-settlement` when
 *                          batch_settlement is enabled, `upto` when upto is and its facilitator serves it); with
 *                          PAYMENT-SIGNATURE: buys the session for the MAC that owns the request's source IP with the
 *                          scheme the payload names, 200 + PAYMENT-RESPONSE + the session
 *   GET /session           the caller's own session
 *   GET /captive           the RFC 8908 captive portal API for the caller (application/captive+json; captive-api.ts)
 *   GET /portal, /portal.js  the customer's pay page (files in `portalDir`, /usr/share/sluice/portal on the router):
 *                          plans, a browser wallet's x402 payment, a voucher form; openNDS's splash links to it
 *   the payment methods' own routes (PaymentPlugin.lanRoutes, in payments/plugins.ts's order; the rules below apply
 *                          to them as to the rest): POST /receipt (escrow usage receipts), GET /batch/channel and
 *                          GET|POST /batch/refund (batch-settlement), POST /trial (free trials), POST /voucher
 *                          (printed vouchers, then RADIUS's: payments/local-voucher), the /cashu/* routes
 *   POST /restore/challenge, /restore  a returning customer's live session moved to this device by a signature of the
 *                          paying wallet (restore.ts); POST /voucher with the voucher's code moves a voucher session
 *                          (LanRequest.moveHere)
 *   GET /devices, POST /devices/join {code}, POST /devices/remove {mac}: several devices per purchase (devices.ts)
 *   POST /pcsync/logout    a PC system's signed logout (http.pcsync_secret; pcsync.ts, docs/pc-sync.md): the named
 *                          session ends `pc-logout`
 * GET, and POST only for the POST routes above; HTTP/1.x only; headers capped at 16 KiB, two token buckets per client
 * IP (rate_limit for what moves money or tries to: /buy with a payment, /voucher, a method's paying route; a generous
 * one for the rest, so the pay page's own loads and status polls never lock a customer out), bounded connections
 * (connection-limits.ts) with header, request and keep-alive timeouts; answers carry no secrets.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { httpStatusOf, isSluiceError, SluiceError, toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { paymentOf, sessionView, type PurchaseOutcome, type SluiceBackend } from '../api/index.ts';
import {
  PAYMENT_PLUGINS,
  X402_SCHEMES,
  type LanMethod,
  type LanRequest,
  type LanRoute,
  type X402Face,
} from '../payments/index.ts';
import { isLive, type Session } from '../sessions/index.ts';
import { encodeHeader } from '../x402/index.ts';
import { readJsonBody } from './body.ts';
import { schemeOfHeader } from './x402-schemes.ts';
import { clientIpOf, limitConnections, MAX_PER_IP, MAX_TOTAL } from './connection-limits.ts';
import { RateLimiter } from './rate-limit.ts';
import { PCSYNC_LOGOUT_PATH, pcsyncLogout, type PcSyncOptions } from './pcsync.ts';
import { DEVICES_PATHS, joinDevice, listDevices, removeDevice } from './devices.ts';
import { RestoreDesk } from './restore.ts';
import { CAPTIVE_MEDIA_TYPE, captiveAnswer } from './captive-api.ts';

export interface HttpEndpointOptions {
  host: string;
  port: number;
  /**
   * Payment attempts (/buy with PAYMENT-SIGNATURE, /voucher, a method's paying route) per minute per client IP
   * (http.rate_limit).
   */
  rateLimitPerMinute: number;
  backend: SluiceBackend;
  /**
   * The running methods' x402 faces (payments/plugins.ts's order), offered side by side in the 402 and /plans. None
   * on a voucher-only router (radius on, x402 off): the plans carry no offer and /buy answers 501.
   */
  schemes?: readonly X402Face[];
  /**
   * Each payment method's routes, payers and running face (PaymentPlugins.lan), in payments/plugins.ts's order;
   * default: the list's, none running.
   */
  methods?: readonly LanMethod[];
  /**
   * Vouchers are taken (radius.enabled, or a printed batch's book runs): the plans say so, so the page shows its
   * voucher form only then, and POST /voucher (LanRequest.vouchers) sells.
   */
  vouchers: boolean;
  /**
   * Payment methods configured but not running (their state file cannot be read back: 'x402', 'batch-settlement',
   * 'upto', 'x402-session', 'trial'): their routes answer 503 ERR_PAYMENT_METHOD_UNAVAILABLE, the others work.
   */
  unavailable?: readonly string[];
  /**
   * The MAC of the portal client with this IP, or null (portal client list); throws ERR_HTTP_CLIENT_AMBIGUOUS when two
   * clients have it. The daemon passes a ClientDirectory's: shared reads, never one per request.
   */
  macOf(ip: string): Promise<string | null>;
  /** Open connections in total; default MAX_TOTAL (the daemon passes its share of the descriptor limit). */
  maxConnections?: number;
  /** Open connections per client IP; default MAX_PER_IP. */
  maxConnectionsPerIp?: number;
  /** Directory with the pay page (index.html, portal.js); null: /portal answers 404. */
  portalDir?: string | null;
  /** PC-sync logouts (http.pcsync_secret set); null or absent: POST /pcsync/logout answers 404. */
  pcsync?: PcSyncOptions | null;
  /** What GET /captive announces (http.portal_url, or the endpoint's own /portal; http.venue_url, '' for none). */
  captive?: { portalUrl: string; venueUrl: string };
  log?: Log;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_URL = 512;
const MAX_RESTORE_BYTES = 1024;
const POST_PATHS = new Set(['/restore', '/restore/challenge']);
/**
 * Every request per minute per client IP, payment or not (page loads, /portal.js, plans, the page's status polls):
 * one page view is about four requests and the page polls /session twice a minute, so a customer reloading in a
 * hurry stays far below it while a flood from one IP is still bounded.
 */
export const REQUESTS_PER_MINUTE = 600;
/**
 * A connection's headers within this, its whole request within REQUEST_TIMEOUT_MS; between requests Node's keep-alive
 * timeout (5 s) closes it. No idle timeout beyond these: a purchase's answer may wait longer than any fixed bound on
 * the facilitator (x402.timeout, up to 120 s per call), and cutting the connection then would lose the answer.
 */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How often Node checks the two timeouts above (its default, 30 s, would let a slow client stay 40 s). */
const TIMEOUT_CHECK_MS = 1000;
/** What a page load past the request bound shows (no script: it may be the script that was refused). */
const BUSY_PAGE =
  '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, ' +
  'initial-scale=1">' +
  '<title>WiFi access</title></head><body style="font-family: sans-serif; padding: 1em"><p>The WiFi access ' +
  'page is busy. ' +
  'Please wait a few seconds, then reload this page.</p></body></html>';
const JAVASCRIPT = 'text/javascript; charset=utf-8';
/**
 * The pay page's own files and their types; with the methods' scripts (PaymentPlugin.pageScripts), nothing else in
 * portalDir is served.
 */
const PORTAL_FILES: Record<string, [string, string]> = {
  '/portal': ['index.html', 'text/html; charset=utf-8'],
  '/portal.js': ['portal.js', JAVASCRIPT],
  '/devices.js': ['devices.js', JAVASCRIPT],
  '/restore.js': ['restore.js', JAVASCRIPT],
  '/qr.js': ['qr.js', JAVASCRIPT],
  '/elsewhere.js': ['elsewhere.js', JAVASCRIPT],
};

function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(plain(body));
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(text);
}

/** The HTTP status of a refusal on a method's `route`, or (none) on the endpoint's own routes. */
export function refusalStatus(code: string, route?: Pick<LanRoute, 'statusOf'>): number {
  return route?.statusOf?.(code) ?? httpStatusOf(code);
}

/** The scheme whose method takes a payload that names no running scheme, when none runs that would (`exact`). */
const UNNAMED = X402_SCHEMES.find((s) => s.takesUnnamed)!;

function methodUnavailable(method: string): SluiceError {
  return new SluiceError(
    'ERR_PAYMENT_METHOD_UNAVAILABLE',
    `payment method ${method} is unavailable on this router: its state file cannot be read back (the operator ` +
      'is told; docs/operations.md)',
    { details: { method, httpStatus: 503 } },
  );
}

export class HttpEndpoint {
  /** Payment attempts: what an abuser repeats (signatures to verify, vouchers to try on the RADIUS server). */
  private readonly paymentLimiter: RateLimiter;
  /** Every request: a generous bound so a flood of page loads from one IP is still bounded. */
  private readonly requestLimiter: RateLimiter;
  private readonly restorer: RestoreDesk;
  /** The pay page's files by path: its own and the methods' scripts. */
  private readonly portalFiles: Record<string, [string, string]>;
  /** The methods' routes by `METHOD path`, each with its method (payments' LanRoute). */
  private readonly routes = new Map<string, { route: LanRoute; method: LanMethod }>();

  private constructor(
    private readonly server: Server,
    private readonly options: HttpEndpointOptions,
  ) {
    const methods = options.methods ?? PAYMENT_PLUGINS.map((plugin) => ({ plugin, face: null }));
    for (const method of methods)
      for (const route of method.plugin.lanRoutes ?? [])
        this.routes.set(`${route.method} ${route.path}`, { route, method });
    const scripts = methods.flatMap((m) =>
      (m.plugin.pageScripts ?? []).map((file) => [`/${file}`, [file, JAVASCRIPT]]),
    );
    this.portalFiles = { ...PORTAL_FILES, ...Object.fromEntries(scripts) };
    // The wallets that paid for a session, as each method's payments show them.
    const payersOf = (s: Session): string[] => [
      ...new Set(methods.flatMap((m) => m.plugin.payersOf?.(s, m.face) ?? [])),
    ];
    this.restorer = new RestoreDesk({ backend: options.backend, payersOf, ...(options.log && { log: options.log }) });
    this.paymentLimiter = new RateLimiter(options.rateLimitPerMinute);
    this.requestLimiter = new RateLimiter(Math.max(REQUESTS_PER_MINUTE, options.rateLimitPerMinute));
  }

  static async start(options: HttpEndpointOptions): Promise<HttpEndpoint> {
    let endpoint: HttpEndpoint | undefined;
    const server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: HEADERS_TIMEOUT_MS,
        connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      },
      (req, res) => {
        endpoint!.handle(req, res).catch((err: unknown) => {
          options.log?.warn('http handler failed', { reason: toSluiceError(err).message });
          if (!res.headersSent) send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
        });
      },
    );
    server.maxRequestsPerSocket = 100;
    limitConnections(server, {
      total: options.maxConnections ?? MAX_TOTAL,
      perIp: options.maxConnectionsPerIp ?? MAX_PER_IP,
    });
    endpoint = new HttpEndpoint(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new SluiceError('ERR_HTTP_LISTEN', `cannot listen on ${options.host}:${options.port}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(options.port, options.host, () => resolve());
    });
    return endpoint;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
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
    const path = (req.url ?? '/').split('?')[0]!;
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
    if (!this.requestLimiter.take(ip) || (paying && !this.paymentLimiter.take(ip)))
      return this.limited(req, res, path, ip);
    if ((req.url ?? '').length > MAX_URL)
      return send(res, 414, { error: { code: 'ERR_INVALID_ARGUMENT', message: 'URL too long' } });
    if (routed) return this.methodRoute(routed.route, routed.method, req, res, ip);
    if (POST_PATHS.has(postPath) || mine) {
      try {
        if (postPath === PCSYNC_LOGOUT_PATH) return await this.pcsync(req, res, ip);
        if (postPath === DEVICES_PATHS.join || postPath === DEVICES_PATHS.remove)
          return await this.devices(req, res, ip, postPath);
        return await this.restore(req, res, ip, postPath);
      } catch (err) {
        return this.refused(req, res, err);
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
      if (url.pathname === '/') return send(res, 200, this.plans());
      if (url.pathname === '/buy') return await this.buy(req, res, url, ip);
      if (url.pathname === '/session') return await this.session(res, ip);
      if (url.pathname === DEVICES_PATHS.list) return await this.devices(req, res, ip, url.pathname);
      if (url.pathname === '/captive') return await this.captive(res, ip);
      const file = this.portalFiles[url.pathname];
      if (file) return await this.portalFile(res, file);
      return send(res, 404, {
        error: { code: 'ERR_HTTP_NOT_FOUND', message: 'GET /, /buy, /session, /captive or /portal' },
      });
    } catch (err) {
      const e = toSluiceError(err);
      return send(res, httpStatusOf(e.code), { error: { code: e.code, message: e.message } });
    }
  }

  /**
   * 429: JSON for the API (the page maps ERR_HTTP_RATE_LIMITED to its own calm words); a page load gets a small HTML
   * page instead, since a browser would show JSON as it is.
   */
  private limited(req: IncomingMessage, res: ServerResponse, path: string, ip: string): void {
    this.options.log?.debug('http rate limited', { ip, path });
    const headers = { 'retry-after': '10', ...(req.complete ? {} : { connection: 'close' }) };
    if (path === '/portal') {
      res
        .writeHead(429, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers })
        .end(BUSY_PAGE);
      return;
    }
    return send(
      res,
      429,
      { error: { code: 'ERR_HTTP_RATE_LIMITED', message: 'too many requests; slow down' } },
      headers,
    );
  }

  /** The running face of a scheme, or null. */
  private face(scheme: string): X402Face | null {
    return (this.options.schemes ?? []).find((f) => f.scheme === scheme) ?? null;
  }

  private plans(): unknown {
    const { backend, vouchers } = this.options;
    const flags = Object.fromEntries(X402_SCHEMES.map((s) => [s.planKey, this.face(s.scheme)?.offered() ?? false]));
    return {
      // Which ways to pay this router takes: the page shows a voucher form or wallet buttons only for what exists.
      methods: {
        ...flags,
        voucher: vouchers,
        // Configured but down (a damaged state file): the page can say so instead of offering nothing.
        unavailable: [...(this.options.unavailable ?? [])],
      },
      plans: backend.pricing().map((p) => {
        // Each running scheme's offer for the plan (null: one it cannot sell); `exact`'s is listed when off too.
        const offerOf = (face: X402Face | null): unknown => {
          try {
            return face?.offer(backend.quote({ plan: p.id })) ?? null;
          } catch {
            return null;
          }
        };
        const offers = Object.fromEntries(
          X402_SCHEMES.flatMap((s) => {
            const face = this.face(s.scheme);
            return face || s.alwaysListed ? [[s.planKey, offerOf(face)]] : [];
          }),
        );
        return {
          id: p.id,
          metric: p.metric,
          step_size: p.stepSize,
          price_per_step: p.pricePerStep,
          currency: p.currency,
          decimals: p.decimals,
          min_steps: p.minSteps,
          max_steps: p.maxSteps,
          ...(p.timeLimit !== undefined && { time_limit: p.timeLimit }),
          ...(p.trialEvery !== undefined && { trial_every: p.trialEvery }),
          ...(p.displayName !== undefined && { display_name: p.displayName }),
          ...(p.devices !== undefined && { devices: p.devices }),
          ...offers,
        };
      }),
    };
  }

  private async buy(req: IncomingMessage, res: ServerResponse, url: URL, ip: string): Promise<void> {
    const { backend } = this.options;
    const faces = this.options.schemes ?? [];
    if (faces.length === 0) {
      const down = this.unavailable(X402_SCHEMES.map((s) => s.method));
      if (down) throw methodUnavailable(down);
      throw new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'x402 is not enabled on this router');
    }
    const plan = url.searchParams.get('plan') ?? undefined;
    const stepsText = url.searchParams.get('steps');
    if (stepsText !== null && !/^[0-9]{1,9}$/.test(stepsText))
      throw new SluiceError('ERR_INVALID_AMOUNT', 'steps must be a whole number');
    const steps = stepsText === null ? undefined : BigInt(stepsText);
    const quote = backend.quote({ ...(plan !== undefined && { plan }), ...(steps !== undefined && { steps }) });
    // Each scheme this router takes for the quote; a plan one scheme cannot sell is offered by the other alone.
    const offers: Array<Record<string, unknown>> = [];
    let refusal: unknown;
    for (const face of faces) {
      try {
        const offer = face.offer(quote);
        if (offer) offers.push(offer);
      } catch (err) {
        refusal = err;
      }
    }
    // None offers it and none refused it (upto sells only plans with a time_limit): say so, not a 500 of `undefined`.
    if (offers.length === 0)
      throw (
        refusal ??
        new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', `no x402 scheme on this router sells plan ${quote.plan}`, {
          details: { plan: quote.plan },
        })
      );
    const required = (error?: string, corrective?: { scheme: string; extra: Record<string, unknown> }) => ({
      x402Version: 2,
      ...(error !== undefined && { error }),
      resource: {
        url: `http://${req.headers.host ?? 'sluice'}${url.pathname}${url.search}`,
        description: `WiFi: ${quote.allotment} ${quote.metric} (plan ${quote.plan})`,
        mimeType: 'application/json',
      },
      accepts: offers.map((o) =>
        corrective && o.scheme === corrective.scheme
          ? { ...o, extra: { ...(o.extra as Record<string, unknown>), ...corrective.extra } }
          : o,
      ),
    });
    const signature = req.headers['payment-signature'];
    // The payload names its scheme (accepted.scheme); a payload that names none goes to `exact`, whose parser says why.
    const scheme = typeof signature === 'string' ? schemeOfHeader(signature) : null;
    // A payload for a scheme whose method is down is told so, not handed to another scheme's parser.
    const named = X402_SCHEMES.find((s) => s.scheme === scheme);
    const downForScheme = named ? this.unavailable([named.method]) : null;
    if (downForScheme) throw methodUnavailable(downForScheme);
    // The named scheme's method when it runs; else the first running one that takes what names none; else `exact`'s.
    const taker =
      (named && this.face(named.scheme)) ??
      (typeof signature === 'string' ? faces.find((f) => f.takesUnnamed) : undefined) ??
      UNNAMED;
    const method = taker.method;
    let mac: string | null = null;
    try {
      const startedAt = performance.now();
      mac = await this.options.macOf(ip);
      if (!mac)
        throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}: connect to the WiFi first`);
      const lookupMs = Math.round(performance.now() - startedAt);
      if (typeof signature !== 'string' || signature === '') {
        // Before the wallet signs: refuse what would be refused after (a device the portal does not list, a plan that
        // cannot top up the live session), so nobody signs for nothing.
        const live = backend.session({ mac });
        if (live && isLive(live) && live.metric !== quote.metric) {
          throw new SluiceError(
            'ERR_SESSION_METRIC_MISMATCH',
            `${mac} has an active ${live.metric} session; plan ${quote.plan} sells ${quote.metric}`,
            { details: { metric: live.metric, requested: quote.metric } },
          );
        }
        const body = required();
        return send(res, 402, body, { 'payment-required': encodeHeader(body) });
      }
      const before = backend.session({ mac });
      const outcome = await backend.purchase({
        mac,
        ip,
        plan: quote.plan,
        ...(steps !== undefined && { steps }),
        payment: { method, payload: signature },
      });
      const paid = outcome.session.payments.at(-1);
      const settlement = !paid ? null : (faces.find((f) => f.method === method)?.settlementOf(paid.reference) ?? null);
      const headers: Record<string, string> = settlement ? { 'payment-response': encodeHeader(settlement) } : {};
      // Where a slow answer went: the IP → MAC lookup, then the purchase (payment checks, journal, the gate's open:
      // its own line gives the open's share).
      this.options.log?.info('http purchase', {
        mac,
        ip,
        plan: quote.plan,
        method,
        lookup_ms: lookupMs,
        took_ms: Math.round(performance.now() - startedAt),
      });
      return send(res, 200, this.purchased(outcome, before), headers);
    } catch (err) {
      const e = toSluiceError(err);
      // The customer's page shows its own words for the code; the admin traces a complaint with this line.
      this.options.log?.info(
        typeof signature === 'string' ? 'http purchase refused' : 'http purchase refused before payment',
        { mac, ip, plan: quote.plan, code: e.code, reason: e.message },
      );
      if (!isSluiceError(err) || httpStatusOf(err.code) !== 402) throw err;
      // A refused payment: the client may pay again, so say what is required along with why. A batch-settlement
      // refusal carries the spec's reason as `error` (a client acts on it), and a cumulative mismatch the spec's
      // corrective channelState and voucherState, from which the client re-syncs its channel and signs again.
      const reason = taker.reasonAsError && typeof err.details?.reason === 'string' ? err.details.reason : undefined;
      const fields = taker.corrective?.(err.details as Record<string, unknown> | undefined);
      const extra = fields && { scheme: taker.scheme, extra: fields };
      const body = {
        ...required(reason ?? `${err.code}: ${err.message}`, extra),
        code: err.code,
        message: err.message,
      };
      return send(res, 402, body, { 'payment-required': encodeHeader(required(reason ?? err.code, extra)) });
    }
  }

  /**
   * A purchase's answer: the session, whether it topped up a live one, and what this purchase added (the quote's
   * allotment; for a voucher, whose quote the RADIUS server decides, the session's growth), so the page says both.
   */
  private purchased(outcome: PurchaseOutcome, before: Session | undefined): unknown {
    const s = outcome.session;
    const added =
      outcome.quote?.allotment ??
      (outcome.toppedUp && before?.id === s.id ? s.allotment - before.allotment : s.allotment);
    return {
      session: sessionView(s, this.options.backend.now()),
      topped_up: outcome.toppedUp,
      added: added.toString(),
      gate: outcome.gate,
    };
  }

  /**
   * A payment method's route (PaymentPlugin.lanRoutes): 503 while its method is configured but down, else its handler
   * with the method's running face (or null); a refusal is answered as every POST's is (refused()).
   */
  private async methodRoute(
    route: LanRoute,
    method: LanMethod,
    req: IncomingMessage,
    res: ServerResponse,
    ip: string,
  ): Promise<void> {
    try {
      const lanRequest = this.lanRequest(req, ip);
      if (this.unavailable([method.plugin.name]) && !route.servesWhileDown?.(lanRequest)) {
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
      return this.refused(req, res, err, route);
    }
  }

  /** What a method's route may read and do (payments' LanRequest): its body bounded, the caller's MAC, a purchase. */
  private lanRequest(req: IncomingMessage, ip: string): LanRequest {
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
      mac: async () => {
        const mac = await this.options.macOf(ip);
        if (!mac)
          throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}: connect to the WiFi first`);
        return mac;
      },
      purchase: async (mac, payment, plan) => {
        const before = backend.session({ mac });
        const outcome = await backend.purchase({ mac, ip, ...(plan !== undefined && { plan }), ...paymentOf(payment) });
        return this.purchased(outcome, before);
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
      vouchers: this.options.vouchers,
    };
  }

  /**
   * A refused POST or method route: the status its details or its route say, else the endpoint's table. A body the
   * endpoint stopped reading: answer, then close (a keep-alive would read the rest as a request). ERR_TRIAL_USED says
   * when the next trial may be had (next_at): the page tells the customer.
   */
  private refused(req: IncomingMessage, res: ServerResponse, err: unknown, route?: LanRoute): void {
    const e = toSluiceError(err);
    const status = typeof e.details?.httpStatus === 'number' ? e.details.httpStatus : refusalStatus(e.code, route);
    const nextAt = typeof e.details?.next_at === 'number' ? { next_at: e.details.next_at } : {};
    return send(
      res,
      status,
      { error: { code: e.code, message: e.message, ...nextAt } },
      {
        ...(req.complete ? {} : { connection: 'close' }),
        ...(typeof e.details?.retry_after === 'number' && { 'retry-after': String(e.details.retry_after) }),
      },
    );
  }

  /** POST /restore/challenge and /restore (restore.ts) for the caller's MAC; every outcome is logged for the admin. */
  private async restore(req: IncomingMessage, res: ServerResponse, ip: string, path: string): Promise<void> {
    const body = await readJsonBody(
      req,
      MAX_RESTORE_BYTES,
      'ERR_RESTORE_INVALID',
      path === '/restore' ? '{nonce, signature}' : '{payer}',
    );
    let mac: string | null = null;
    try {
      mac = await this.options.macOf(ip);
      if (!mac)
        throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}: connect to the WiFi first`);
      if (path === '/restore/challenge') return send(res, 200, this.restorer.challenge(body, mac, ip));
      const moved = await this.restorer.restore(body, mac, ip);
      return send(res, 200, {
        session: sessionView(moved.session, this.options.backend.now()),
        restored: true,
        from: moved.from,
        gate: moved.gate,
      });
    } catch (err) {
      const e = toSluiceError(err);
      this.options.log?.info(path === '/restore' ? 'http restore refused' : 'http restore challenge refused', {
        mac,
        ip,
        code: e.code,
        reason: e.message,
      });
      throw err;
    }
  }

  /** Several devices per purchase: each call acts for the portal client of its source IP only. */
  private async devices(req: IncomingMessage, res: ServerResponse, ip: string, path: string): Promise<void> {
    const mac = await this.options.macOf(ip);
    if (!mac)
      throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}: connect to the WiFi first`);
    const { backend } = this.options;
    if (path === DEVICES_PATHS.list) return send(res, 200, listDevices(backend, mac, req.headers.host));
    const answer =
      path === DEVICES_PATHS.join ? await joinDevice(req, backend, mac) : await removeDevice(req, backend, mac);
    this.options.log?.info(path === DEVICES_PATHS.join ? 'http device joined' : 'http device removed', { mac, ip });
    return send(res, 200, answer);
  }

  private async pcsync(req: IncomingMessage, res: ServerResponse, ip: string): Promise<void> {
    const pcsync = this.options.pcsync;
    if (!pcsync) {
      req.resume();
      return send(res, 404, {
        error: { code: 'ERR_HTTP_NOT_FOUND', message: 'PC-sync is off on this router (http.pcsync_secret)' },
      });
    }
    try {
      const answer = await pcsyncLogout(req, pcsync, this.options.backend);
      this.options.log?.info('pcsync logout', { ip, ended: answer.ended });
      return send(res, 200, answer);
    } catch (err) {
      const e = toSluiceError(err);
      // The admin traces a refused or forged call with this line (never the body: it is the caller's).
      this.options.log?.warn('pcsync logout refused', { ip, code: e.code, reason: e.message });
      throw err;
    }
  }

  private async portalFile(res: ServerResponse, [file, type]: [string, string]): Promise<void> {
    const dir = this.options.portalDir;
    let text: Buffer;
    try {
      if (!dir) throw new Error('no portal directory');
      text = await readFile(join(dir, file));
    } catch {
      return send(res, 404, { error: { code: 'ERR_HTTP_NOT_FOUND', message: 'the pay page is not installed' } });
    }
    // The page talks only to this endpoint; a wallet extension's injected provider is not a fetch, so it still works.
    res
      .writeHead(200, {
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy':
          "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      })
      .end(text);
  }

  /** RFC 8908: captive unless this client's session is ACTIVE; a client the portal does not list is captive. */
  private async captive(res: ServerResponse, ip: string): Promise<void> {
    const { backend, vouchers } = this.options;
    let mac: string | null = null;
    try {
      mac = await this.options.macOf(ip);
    } catch {
      /* two clients on one IP: which one is asking is unknown, so captive */
    }
    const live = mac === null ? undefined : backend.session({ mac });
    const portalUrl =
      this.options.captive?.portalUrl ||
      `http://${this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host}:${this.port}/portal`;
    const answer = captiveAnswer({
      session: live ?? null,
      portalUrl,
      venueUrl: this.options.captive?.venueUrl ?? '',
      canSell: (this.options.schemes ?? []).some((f) => f.sells) || vouchers,
      now: backend.now(),
    });
    res
      .writeHead(200, { 'content-type': CAPTIVE_MEDIA_TYPE, 'cache-control': 'private, no-store' })
      .end(JSON.stringify(answer));
  }

  private async session(res: ServerResponse, ip: string): Promise<void> {
    const mac = await this.options.macOf(ip);
    if (!mac) throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}`);
    const s = this.options.backend.session({ mac });
    if (!s) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no session for this device`);
    return send(res, 200, { session: sessionView(s, this.options.backend.now()) });
  }

  /** The first of `methods` that is configured but down, or null. */
  private unavailable(methods: readonly string[]): string | null {
    return methods.find((m) => this.options.unavailable?.includes(m)) ?? null;
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
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
