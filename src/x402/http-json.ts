/**
 * One JSON request to a facilitator-style HTTP API, for the clients that speak to one (x402's /verify and /settle,
 * the escrow sessions API). The answer is either a JSON object with its HTTP status, or `none` with why: no answer,
 * a timeout, a body that is not a bounded JSON object. What a status means is the caller's business.
 */

/** Bodies larger than this are not facilitator answers. */
export const MAX_RESPONSE_BYTES = 65_536;

/** `unsent`: the connection was refused or the host not found, so the request never reached the peer. */
export type JsonAnswer = { kind: 'json'; status: number; body: Record<string, unknown> } | { kind: 'none'; message: string; unsent?: true };

const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export interface JsonClientOptions {
  /** Base URL; trailing slashes are dropped. */
  url: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Makes `call(method, path, body?)` for one base URL. Redirects are refused (an answer must come from the URL configured). */
export function jsonClient(options: JsonClientOptions): (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<JsonAnswer> {
  const base = options.url.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? fetch;
  return async (method, path, body) => {
    let res: Response;
    try {
      res = await fetchImpl(`${base}${path}`, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', accept: 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(options.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: unknown; message?: unknown } };
      // fetch refuses the "bad ports" of the Fetch standard (9, 25, …) before connecting.
      const unsent = (typeof e.cause?.code === 'string' && NOT_SENT.has(e.cause.code)) || e.cause?.message === 'bad port';
      return { kind: 'none', message: e.name === 'TimeoutError' ? `no answer in ${options.timeoutMs} ms` : e.message, ...(unsent && { unsent: true as const }) };
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      return { kind: 'none', message: `reading the answer failed: ${(err as Error).message}` };
    }
    if (text.length > MAX_RESPONSE_BYTES) return { kind: 'none', message: `answer larger than ${MAX_RESPONSE_BYTES} bytes (HTTP ${res.status})` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { kind: 'none', message: `HTTP ${res.status} without a JSON body` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { kind: 'none', message: `HTTP ${res.status}: not a JSON object` };
    return { kind: 'json', status: res.status, body: parsed as Record<string, unknown> };
  };
}
