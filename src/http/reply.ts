/**
 * How the LAN endpoint answers: JSON never cached (bigints as strings), a refusal with the status its details, its
 * route or the endpoint's table say, and the 503 of a payment method configured but down.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpStatusOf, SluiceError, toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { LanRoute } from '../payments/index.ts';

/** What a page load past the request bound shows (no script: it may be the script that was refused). */
const BUSY_PAGE =
  '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, ' +
  'initial-scale=1">' +
  '<title>WiFi access</title></head><body style="font-family: sans-serif; padding: 1em"><p>The WiFi access ' +
  'page is busy. ' +
  'Please wait a few seconds, then reload this page.</p></body></html>';

function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(plain(body));
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(text);
}

/** The HTTP status of a refusal on a method's `route`, or (none) on the endpoint's own routes. */
export function refusalStatus(code: string, route?: Pick<LanRoute, 'statusOf'>): number {
  return route?.statusOf?.(code) ?? httpStatusOf(code);
}

export function methodUnavailable(method: string): SluiceError {
  return new SluiceError(
    'ERR_PAYMENT_METHOD_UNAVAILABLE',
    `payment method ${method} is unavailable on this router: its state file cannot be read back (the operator ` +
      'is told; docs/operations.md)',
    { details: { method, httpStatus: 503 } },
  );
}

/**
 * The portal client sending from `ip` (the endpoint knows a device by its source address alone), or the one refusal of
 * a request from an address the portal does not list: ERR_HTTP_CLIENT_UNKNOWN (403).
 */
export async function portalClientMac(macOf: (ip: string) => Promise<string | null>, ip: string): Promise<string> {
  const mac = await macOf(ip);
  if (!mac)
    throw new SluiceError('ERR_HTTP_CLIENT_UNKNOWN', `no portal client has IP ${ip}: connect to the WiFi first`);
  return mac;
}

/** The first of `methods` that is configured but down (in `unavailable`), or null. */
export function firstUnavailable(
  unavailable: readonly string[] | undefined,
  methods: readonly string[],
): string | null {
  return methods.find((m) => unavailable?.includes(m)) ?? null;
}

/**
 * A refused POST or method route: the status its details or its route say, else the endpoint's table. A body the
 * endpoint stopped reading: answer, then close (a keep-alive would read the rest as a request). A refusal's
 * `details.next_at` (when the same may be had again) is passed on: the page tells the customer.
 */
export function refused(req: IncomingMessage, res: ServerResponse, err: unknown, route?: LanRoute): void {
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

/** A request to one of the endpoint's own routes: the exchange and who sent it. */
export interface RouteCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** The client's IP (the listener's clientIpOf). */
  ip: string;
  /** The request's path, without its query. */
  path: string;
}

/**
 * 429: JSON for the API (the page maps ERR_HTTP_RATE_LIMITED to its own calm words); a page load gets a small HTML
 * page instead, since a browser would show JSON as it is.
 */
export function limited({ req, res, path, ip }: RouteCall, log?: Log): void {
  log?.debug('http rate limited', { ip, path });
  const headers = { 'retry-after': '10', ...(req.complete ? {} : { connection: 'close' }) };
  if (path === '/portal') {
    res
      .writeHead(429, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers })
      .end(BUSY_PAGE);
    return;
  }
  return send(res, 429, { error: { code: 'ERR_HTTP_RATE_LIMITED', message: 'too many requests; slow down' } }, headers);
}
