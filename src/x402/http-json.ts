/**
 * One JSON request to a facilitator-style HTTP API, for the clients that speak to one (x402's /verify and /settle,
 * the escrow sessions API, the chain's JSON-RPC). The answer is either a JSON object with its HTTP status, or `none`
 * with why: no answer, a timeout, a body that is not a bounded JSON object. What a status means is the caller's
 * business. The exchange is the bounded one of src/http-client.ts: headers and body under `timeoutMs`, the body cut
 * (and the connection closed) past `maxBytes`.
 */
import { boundedFetch } from '../http-client.ts';

/** Bodies larger than this are not facilitator answers. */
export const MAX_RESPONSE_BYTES = 65_536;

/** `unsent`: the connection was refused or the host not found, so the request never reached the peer. */
export type JsonAnswer =
  { kind: 'json'; status: number; body: Record<string, unknown> } | { kind: 'none'; message: string; unsent?: true };

export interface JsonClientOptions {
  /** Base URL; trailing slashes are dropped. */
  url: string;
  /** The whole exchange, body included. */
  timeoutMs: number;
  /** The longest answer read (default MAX_RESPONSE_BYTES). */
  maxBytes?: number;
  /** Ends the client's exchanges in flight (its owner closing). */
  signal?: AbortSignal;
}

/**
 * Makes `call(method, path, body?)` for one base URL. Redirects are refused (an answer must come from the URL
 * configured).
 */
export function jsonClient(
  options: JsonClientOptions,
): (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<JsonAnswer> {
  const base = options.url.replace(/\/+$/, '');
  const maxBytes = options.maxBytes ?? MAX_RESPONSE_BYTES;
  return async (method, path, body) => {
    const a = await boundedFetch(`${base}${path}`, {
      method,
      timeoutMs: options.timeoutMs,
      maxBytes,
      headers:
        body === undefined
          ? { accept: 'application/json' }
          : { 'content-type': 'application/json', accept: 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(options.signal && { signal: options.signal }),
    });
    if (a.kind === 'none')
      return { kind: 'none', message: a.message, ...(a.why === 'unsent' && { unsent: true as const }) };
    if (a.kind === 'cut')
      return { kind: 'none', message: a.why === 'too-large' ? a.message : `reading the answer failed: ${a.message}` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(a.body.toString('utf8'));
    } catch {
      return { kind: 'none', message: `HTTP ${a.status} without a JSON body` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return { kind: 'none', message: `HTTP ${a.status}: not a JSON object` };
    return { kind: 'json', status: a.status, body: parsed as Record<string, unknown> };
  };
}
