/**
 * The Cashu test files' HTTP to the lab mint on node:http rather than fetch: their cashu-ts Wallets (`customRequest`)
 * and their raw requests. fetch is undici, which a thread compiles on its first request and which costs more per
 * exchange than node:http, and a thread that fetched waits for undici's clock as its file ends; sluice itself never
 * fetches. The errors are those of cashu-ts's own transport (RequestFn's contract): a NUT-00 error body is a
 * MintOperationError with its code, a 429 a RateLimitError, another status an HttpResponseError, no answer a
 * NetworkError. What this leaves out of cashu-ts's transport is its NUT-19 retry of a cached endpoint after a network
 * error, which no fast file relies on (the faults, with real time, are in cashu-mint-faults.test.ts, over cashu-ts's
 * own fetch).
 */
import {
  HttpResponseError,
  JSONInt,
  MintOperationError,
  NetworkError,
  RateLimitError,
  type RequestFn,
  type RequestOptions,
} from '@cashu/cashu-ts';
import { request } from 'node:http';

/**
 * One exchange with a lab peer on a connection of its own (none kept: a mint the test restarts would leave a kept one
 * dead, and a POST sent on it fails): its status and its body as text.
 */
export function exchange(
  url: string,
  o: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new NetworkError(`${url}: ${err.message}`)));
    });
    req.on('error', (err) => reject(new NetworkError(`${url}: ${err.message}`)));
    req.end(o.body);
  });
}

/** A JSON request and its JSON answer, whatever the status. */
export async function jsonExchange(
  url: string,
  o: { method?: 'GET' | 'POST'; body?: unknown; rawBody?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const { status, text } = await exchange(url, {
    method: o.method ?? (body === undefined ? 'GET' : 'POST'),
    ...(body !== undefined && { body, headers: { 'content-type': 'application/json' } }),
  });
  return { status, json: JSON.parse(text) as Record<string, unknown> };
}

/** cashu-ts's RequestFn on node:http, for `new Wallet(url, { customRequest: labRequest })`. */
export const labRequest: RequestFn = async <T>(args: RequestOptions): Promise<T> => {
  const body = args.requestBody === undefined ? undefined : JSONInt.stringify(args.requestBody);
  const { status, text } = await exchange(args.endpoint, {
    method: (args.method ?? 'GET').toUpperCase() as 'GET' | 'POST',
    headers: {
      accept: 'application/json, text/plain, */*',
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...args.headers,
    },
    ...(body !== undefined && { body }),
  });
  if (status >= 200 && status < 300) return JSONInt.parse(text) as T;
  let error: unknown;
  try {
    error = JSONInt.parse(text);
  } catch {
    error = { detail: text };
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; detail?: unknown };
  if (status === 429) throw new RateLimitError('429 Too Many Requests');
  if (status === 400 && typeof e.code === 'number' && typeof e.detail === 'string')
    throw new MintOperationError(e.code, e.detail);
  throw new HttpResponseError(typeof e.detail === 'string' ? e.detail : 'HTTP request failed', status);
};
