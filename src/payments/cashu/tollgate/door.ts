/**
 * TollGate's HTTP door (`tollgate.listen`, :2121 on the LAN address): the routes real TollGate clients call, answered
 * the way they read them (docs/tollgate.md, which names the sources):
 *   GET /         the signed kind 10021 itself (the mints that answer; always served)
 *   POST /        a Cashu token, raw or in a kind 21000 (tollgate-payment.ts), any Content-Type: bought for the MAC
 *                 of the request's source through the merchant (payment method `cashu`, plan tollgate.plan) → 200 +
 *                 signed 1022, or 4xx/5xx + signed 21023 (tollgate-events.ts's codes)
 *   GET /whoami   `mac=<mac>` (text/plain)
 *   GET /usage    `used/allotment` in ms or bytes; `-1/-1` only when sluice knows the device has no session
 *   GET /balance  TollGate's Go router's JSON
 *   OPTIONS *     the CORS preflight (browser clients are pages of the same host on another port)
 * Per-IP token buckets (payments: http.rate_limit a minute; every request: REQUESTS_PER_MINUTE), bounded connections,
 * header/request timeouts, a 64 KiB body. Tokens are never logged: the log says who, what and the refusal's code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PricingPlan, TollgateConfig } from '../../../config/index.ts';
import { SluiceError, toSluiceError } from '../../../errors.ts';
import type { Log } from '../../../log.ts';
import { signEvent, type NostrEvent, type RouterKey } from '../nostr/index.ts';
import { isLive, type Session } from '../../../sessions/index.ts';
import { clientIpOf, DoorLimits, Listener, readBodyBytes } from '../../../listener/index.ts';
import {
  advertisement,
  noticeEvent,
  refusalOf,
  sessionEvent,
  toTollgateUnits,
  tollgateMetric,
  type EventBody,
} from './events.ts';
import { parseTollgatePayment } from './payment.ts';
import type { DoorServices } from '../../plugin.ts';

export interface TollgateDoorOptions {
  host: string;
  port: number;
  /** The section in force (a reload's prices and mints apply to the next answer); null: switched off since. */
  settings(): TollgateConfig | null;
  /** The purchases, sessions, plans and IP → MAC lookups it answers with (the host's: PluginHost.door). */
  services: DoorServices;
  key: RouterKey;
  /** The accepted mints that answer (MintHealth.up). */
  mintsUp(): readonly string[];
  /** Payment attempts (POST /) per minute per client IP. */
  rateLimitPerMinute: number;
  maxConnections?: number;
  log?: Log;
}

/** A token of a few proofs is under 2 KiB; a V4 token of the 64 proofs a mint may cap a swap at stays under 32 KiB. */
export const MAX_TOLLGATE_BODY = 64 * 1024;
/**
 * A purchase still running this long answers a pending 21023 and goes on: the reseller gives up at 30 s and swaps its
 * own token back, racing the router, so an answer must come well before (facts §6.5). The method answers
 * ERR_CASHU_PENDING itself within this; this bound is the door's own, in case anything else is slow.
 */
export const ANSWER_WITHIN_MS = 10_000;
/**
 * How long a device whose payment was left pending is not told `-1/-1` (it would pay again) unless its session shows.
 */
export const PENDING_MEMORY_MS = 10 * 60_000;
const MAX_PENDING = 4096;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** An advertisement is signed again after this, or at once when the mints answering change. */
const ADVERT_MAX_AGE_MS = 3600_000;
/**
 * Every answer is fetched afresh (no-cache: a cache must ask again before reusing it), but may be stored: Chromium
 * never finishes loading a `no-store` answer whose body the page does not read (it stays in the renderer's pipe, and
 * TollGate's own page never reads the 1022 of its `POST /`), while a storable one finishes read or not
 * (docs/tollgate.md, "TollGate's own page"). `private`: no shared cache keeps it. Nothing in an answer is secret: a
 * token is never echoed; the device's own MAC and session are what it asked for.
 */
const ANSWER_CACHING = 'private, no-cache';

type Answer = { status: number; type: 'json' | 'text'; body: string; headers?: Record<string, string> };

const PENDING = Symbol('pending');
/** Refusals whose payment may still land (the mint slow, the same token in flight): the device is not told `-1/-1`. */
const PENDING_CODES: ReadonlySet<string> = new Set([
  'ERR_CASHU_PENDING',
  'ERR_TOLLGATE_PENDING',
  'ERR_PAYMENT_IN_PROGRESS',
]);

/**
 * A request whose body was not read to its end (refused before or while reading it): the answer closes the connection,
 * or the rest would be read as the next request. Only a request that has a body: one without is complete only once
 * the parser has moved past it, after the handler started, and a `GET /` answered at once would close for nothing
 * (a page or a reseller polling the door would open a connection per call).
 */
function bodyLeftUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

export class TollgateDoor {
  private readonly limits: DoorLimits;
  /** MAC → until when a pending payment keeps /usage from saying `-1/-1`. */
  private readonly pending = new Map<string, number>();
  private advert: { mints: string; at: number; event: NostrEvent } | undefined;
  private limited: { at: number; answer: Answer } | undefined;
  /** The address it listens on (a page of the router there is a CORS origin it answers). */
  private host: string;

  private constructor(
    private readonly listener: Listener,
    private readonly options: TollgateDoorOptions,
  ) {
    this.host = options.host;
    this.limits = new DoorLimits(options.rateLimitPerMinute);
  }

  static async start(options: TollgateDoorOptions): Promise<TollgateDoor> {
    let door: TollgateDoor | undefined;
    const listener = await Listener.open({
      host: options.host,
      port: options.port,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }),
      handler: (req, res) => {
        door!.handle(req, res).catch((err: unknown) => {
          options.log?.warn('tollgate handler failed', { reason: toSluiceError(err).message });
          if (!res.headersSent) res.writeHead(500).end();
        });
      },
    });
    door = new TollgateDoor(listener, options);
    return door;
  }

  get port(): number {
    return this.listener.port;
  }

  /** To another address while it runs: the new socket first (a bind that fails leaves it where it was, thrown). */
  async moveTo(host: string, port: number): Promise<void> {
    await this.listener.rebind(host, port);
    this.host = host;
  }

  private now(): number {
    return this.options.services.now();
  }

  private sign(body: EventBody): NostrEvent {
    return signEvent(body, this.options.key.secretKey);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = clientIpOf(req.socket);
    const path = (req.url ?? '/').split('?')[0]!;
    const cors = this.corsHeaders(req);
    const reply = (a: Answer): void => {
      const type = a.type === 'json' ? 'application/json' : 'text/plain; charset=utf-8';
      res
        .writeHead(a.status, {
          'content-type': type,
          'cache-control': ANSWER_CACHING,
          ...cors,
          ...a.headers,
          ...(bodyLeftUnread(req) && { connection: 'close' }),
        })
        .end(a.body);
    };
    if (req.method === 'OPTIONS') {
      req.resume();
      res
        .writeHead(204, {
          ...cors,
          ...(cors['access-control-allow-origin'] && {
            'access-control-allow-methods': 'GET, POST, OPTIONS',
            'access-control-allow-headers': 'Content-Type',
            'access-control-max-age': '600',
          }),
        })
        .end();
      return;
    }
    const paying = req.method === 'POST' && path === '/';
    if (!this.limits.admit(ip, paying)) {
      this.options.log?.debug('tollgate rate limited', { ip, path });
      return reply(this.limitedAnswer());
    }
    if (paying) return reply(await this.pay(req, ip));
    req.resume();
    if (req.method !== 'GET')
      return reply({ status: 405, type: 'text', body: 'GET or POST /', headers: { allow: 'GET, POST, OPTIONS' } });
    try {
      if (path === '/') return reply(this.advertise());
      if (path === '/whoami') return reply({ status: 200, type: 'text', body: `mac=${await this.macOrThrow(ip)}` });
      if (path === '/usage') return reply(await this.usage(ip));
      if (path === '/balance') return reply(await this.balance(ip));
    } catch (err) {
      const e = toSluiceError(err);
      return reply(this.notice(e.code, e.message, null));
    }
    return reply({ status: 404, type: 'text', body: 'GET /, /whoami, /usage, /balance; POST /' });
  }

  /**
   * CORS for a page of this router on another port (TollGate's browser clients): its Origin names the address the
   * door listens on. The Host header is not compared: a rebinding name would match it.
   */
  private corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return {};
    let hostname: string;
    try {
      hostname = new URL(origin).hostname.replace(/^\[|\]$/g, '');
    } catch {
      return {};
    }
    const own = this.host.toLowerCase();
    return hostname.toLowerCase() === own
      ? { 'access-control-allow-origin': origin, vary: 'Origin' }
      : { vary: 'Origin' };
  }

  private settingsAndPlan(): { settings: TollgateConfig; plan: PricingPlan } {
    const settings = this.options.settings();
    const plan = settings && this.options.services.pricing().find((p) => p.id === settings.plan);
    if (!settings || !plan)
      throw new SluiceError(
        'ERR_UNKNOWN_PLAN',
        'TollGate is not selling right now (tollgate section off, or its plan gone): the operator is told in the log',
      );
    return { settings, plan };
  }

  private json(status: number, event: NostrEvent, headers?: Record<string, string>): Answer {
    return { status, type: 'json', body: JSON.stringify(event), ...(headers && { headers }) };
  }

  private notice(code: string, message: string, payer: string | null, headers?: Record<string, string>): Answer {
    const r = refusalOf(code);
    return this.json(r.status, this.sign(noticeEvent(r.level, r.code, message, payer, this.now())), headers);
  }

  /** The 429's notice, signed once a minute at most: a flood past the limit must not cost a signature per request. */
  private limitedAnswer(): Answer {
    const now = this.now();
    if (!this.limited || now - this.limited.at > 60_000) {
      this.limited = {
        at: now,
        answer: this.notice('ERR_HTTP_RATE_LIMITED', 'too many requests from this address: wait a few seconds', null, {
          'retry-after': '10',
        }),
      };
    }
    return this.limited.answer;
  }

  private advertise(): Answer {
    const { settings, plan } = this.settingsAndPlan();
    const mints = this.options.mintsUp();
    const key = JSON.stringify([
      settings.pricePerStep.toString(),
      settings.unit,
      settings.minSteps.toString(),
      plan.metric,
      plan.stepSize.toString(),
      mints,
    ]);
    const now = this.now();
    if (!this.advert || this.advert.mints !== key || now - this.advert.at > ADVERT_MAX_AGE_MS) {
      this.advert = { mints: key, at: now, event: this.sign(advertisement(settings, plan, mints, now)) };
    }
    return this.json(200, this.advert.event);
  }

  private async macOrThrow(ip: string): Promise<string> {
    const mac = await this.options.services.macOf(ip);
    if (!mac)
      throw new SluiceError(
        'ERR_HTTP_CLIENT_UNKNOWN',
        `the WiFi does not list a device with address ${ip} yet: open any web page, then try again`,
      );
    return mac;
  }

  private async pay(req: IncomingMessage, ip: string): Promise<Answer> {
    let mac: string | null = null;
    let payer: string | null = null;
    try {
      const payment = parseTollgatePayment(await readBodyBytes(req, MAX_TOLLGATE_BODY, 'ERR_TOLLGATE_REQUEST'));
      payer = payment.payer;
      const { settings } = this.settingsAndPlan();
      mac = await this.macOrThrow(ip);
      const purchase = this.options.services.purchase({
        mac,
        ip,
        plan: settings.plan,
        payment: { method: 'cashu', token: payment.token },
      });
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        purchase,
        new Promise<typeof PENDING>((r) => {
          timer = setTimeout(() => r(PENDING), ANSWER_WITHIN_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      if (outcome === PENDING) {
        const who = mac;
        purchase.then(
          (o) =>
            this.options.log?.info('tollgate purchase landed after its answer', {
              mac: who,
              ip,
              session: o.session.id,
            }),
          (err: unknown) =>
            this.options.log?.info('tollgate purchase refused after its answer', {
              mac: who,
              ip,
              code: toSluiceError(err).code,
            }),
        );
        throw new SluiceError(
          'ERR_TOLLGATE_PENDING',
          'the payment is still being processed; GET /usage shows the session when it lands',
        );
      }
      this.pending.delete(mac);
      this.options.log?.info('tollgate purchase', {
        mac,
        ip,
        session: outcome.session.id,
        topped_up: outcome.toppedUp,
      });
      return this.json(200, this.sign(sessionEvent(outcome.session, payer, this.now())));
    } catch (err) {
      const e = toSluiceError(err);
      const outcomeUnknown = PENDING_CODES.has(e.code);
      if (mac !== null && outcomeUnknown) this.rememberPending(mac);
      this.options.log?.info('tollgate purchase refused', { mac, ip, code: e.code, reason: e.message });
      const pending = outcomeUnknown
        ? 'The payment is pending: do not pay again; GET /usage shows the session when it lands. '
        : '';
      if (typeof e.details?.httpStatus === 'number') {
        const r = refusalOf(e.code);
        return this.json(e.details.httpStatus, this.sign(noticeEvent(r.level, r.code, e.message, payer, this.now())));
      }
      return this.notice(e.code, `${pending}${e.message}`, payer);
    }
  }

  private rememberPending(mac: string): void {
    this.pending.delete(mac);
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(mac, this.now() + PENDING_MEMORY_MS);
  }

  /** The device's live session, or null when sluice knows it has none (no live session and no payment pending). */
  private async live(ip: string): Promise<{ mac: string; session: Session | null }> {
    const mac = await this.macOrThrow(ip);
    const s = this.options.services.session({ mac });
    if (s && isLive(s)) {
      this.pending.delete(mac);
      return { mac, session: s };
    }
    const until = this.pending.get(mac);
    if (until !== undefined && until > this.now()) {
      throw new SluiceError(
        'ERR_TOLLGATE_PENDING',
        'a payment from this device is still being processed: its session shows here when it lands',
      );
    }
    this.pending.delete(mac);
    return { mac, session: null };
  }

  /** Used and allotted so far in TollGate's units; a time session's from its deadline (top-ups move it). */
  private figures(s: Session): { used: bigint; allotment: bigint; remaining: bigint } {
    const allotment = toTollgateUnits(s.metric, s.allotment);
    let used: bigint;
    if (s.metric === 'seconds') {
      const leftMs = s.expiresAt === null ? allotment : BigInt(Math.max(0, s.expiresAt - this.now()));
      used = allotment - (leftMs > allotment ? allotment : leftMs);
    } else {
      used = BigInt(Math.min(s.used, Number.MAX_SAFE_INTEGER));
      if (used > allotment) used = allotment;
    }
    return { used, allotment, remaining: allotment - used };
  }

  private async usage(ip: string): Promise<Answer> {
    const { session } = await this.live(ip);
    if (!session) return { status: 200, type: 'text', body: '-1/-1' };
    const f = this.figures(session);
    return { status: 200, type: 'text', body: `${f.used}/${f.allotment}` };
  }

  private async balance(ip: string): Promise<Answer> {
    const { session } = await this.live(ip);
    const { plan } = this.settingsAndPlan();
    const f = session ? this.figures(session) : { used: 0n, allotment: 0n, remaining: 0n };
    const body = {
      status: 1,
      session_active: session !== null,
      metric: session ? (session.metric === 'seconds' ? 'milliseconds' : 'bytes') : tollgateMetric(plan),
      usage: Number(f.used),
      allotment: Number(f.allotment),
      remaining: Number(f.remaining),
      start_time: session ? Math.floor((session.startedAt ?? session.createdAt) / 1000) : 0,
    };
    return { status: 200, type: 'json', body: JSON.stringify(body) };
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}
