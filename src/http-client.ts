/**
 * The one way sluice reads an answer from an HTTP peer it calls: the hook's receiver, the x402 and escrow
 * facilitators, the chain's JSON-RPC. fetch bounds neither the size nor the time of a body: `res.arrayBuffer()` or
 * `res.text()` takes all the peer sends, for as long as it sends it (a receiver streaming forever grew the daemon to
 * 20 GB; a trickling one held the hook's one delivery forever). Here the whole exchange, headers and body, runs under
 * one deadline, the body is read up to `maxBytes`, and at either limit the exchange is aborted, which closes the
 * connection (undici destroys the socket): nothing of the peer's stays in memory or keeps the process alive.
 *
 * Redirects are refused: an answer must come from the URL configured.
 */

/**
 * Why no complete answer came. `unsent`: the connection was refused or the host not found, so the peer never saw it.
 */
export type ExchangeFailure = 'timeout' | 'aborted' | 'unsent' | 'failed';

export type BoundedAnswer =
  /** The whole body, within the bounds. */
  | { kind: 'answer'; status: number; body: Buffer }
  /** A status came, the body did not fit (`too-large`) or did not end in time: the connection was closed. */
  | { kind: 'cut'; status: number; why: 'too-large' | ExchangeFailure; message: string }
  /** No status. */
  | { kind: 'none'; why: ExchangeFailure; message: string };

export interface BoundedRequest {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** The deadline of the whole exchange, body included. */
  timeoutMs: number;
  /** The longest body read; a longer one is cut (a declared Content-Length over it is refused before reading). */
  maxBytes: number;
  /** Ends the exchange from outside (a sink or a payment method closing). */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

class ExchangeTimeout extends Error {
  override readonly name = 'TimeoutError';
}

/** One request and its answer, bounded in time and size (never throws). */
export async function boundedFetch(url: string, request: BoundedRequest): Promise<BoundedAnswer> {
  const outer = request.signal;
  if (outer?.aborted) return { kind: 'none', why: 'aborted', message: 'aborted before it was sent' };
  const controller = new AbortController();
  let stopped: { why: 'timeout' | 'aborted'; message: string } | null = null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let wake: (() => void) | undefined;
  const stopsHere = new Promise<void>((resolve) => {
    wake = resolve;
  });
  /**
   * Ends the exchange. After the headers the fetch signal alone was not enough (Node 20.20, undici 6.24): now and
   * then a body read the signal aborted never ended and its socket stayed open (a trickling receiver, cut at the
   * deadline: the 8th exchange in a row hung, every run; the daemon then never posted again and ignored SIGTERM).
   * Cancelling the body stream itself ends the read and aborts the fetch, which closes the connection.
   */
  const stop = (why: 'timeout' | 'aborted', message: string): void => {
    if (stopped) return;
    stopped = { why, message };
    controller.abort(why === 'timeout' ? new ExchangeTimeout(message) : outer?.reason);
    reader?.cancel(message).catch(() => undefined);
    wake?.();
  };
  const fromOutside = (): void => stop('aborted', 'aborted: sluice is closing');
  outer?.addEventListener('abort', fromOutside, { once: true });
  const timer = setTimeout(() => stop('timeout', `no complete answer in ${request.timeoutMs} ms`), request.timeoutMs);
  const failure = (err: unknown): { why: ExchangeFailure; message: string } => {
    if (stopped) return stopped;
    const e = err as Error & { cause?: { code?: unknown; message?: unknown } };
    // fetch refuses the "bad ports" of the Fetch standard (9, 25, …) before connecting.
    const unsent = (typeof e.cause?.code === 'string' && NOT_SENT.has(e.cause.code)) || e.cause?.message === 'bad port';
    return { why: unsent ? 'unsent' : 'failed', message: e.message };
  };
  try {
    const sent = (request.fetch ?? fetch)(url, {
      method: request.method,
      ...(request.headers && { headers: request.headers }),
      ...(request.body !== undefined && { body: request.body }),
      signal: controller.signal,
      redirect: 'error',
    });
    let res: Response | null;
    try {
      // The race: an answer whose headers come after the stop is not waited for (its body is cancelled below).
      res = await Promise.race([sent, stopsHere.then(() => null)]);
    } catch (err) {
      return { kind: 'none', ...failure(err) };
    }
    if (res === null) {
      sent.then(
        (late) => late.body?.cancel().catch(() => undefined),
        () => undefined,
      );
      return { kind: 'none', ...stopped! };
    }
    const status = res.status;
    const tooLarge = (): BoundedAnswer => {
      const message = `answer larger than ${request.maxBytes} bytes (HTTP ${status})`;
      controller.abort();
      (reader ? reader.cancel(message) : res!.body?.cancel(message))?.catch(() => undefined);
      return { kind: 'cut', status, why: 'too-large', message };
    };
    const declared = Number(res.headers.get('content-length') ?? '');
    if (Number.isFinite(declared) && declared > request.maxBytes) return tooLarge();
    if (!res.body) return { kind: 'answer', status, body: Buffer.alloc(0) };
    reader = res.body.getReader();
    if (stopped) reader.cancel().catch(() => undefined);
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        // A cancelled read ends as `done`: the stop, not the end of the body.
        if (stopped) return { kind: 'cut', status, ...(stopped as { why: 'timeout' | 'aborted'; message: string }) };
        if (done) break;
        size += value.byteLength;
        if (size > request.maxBytes) return tooLarge();
        chunks.push(value);
      }
    } catch (err) {
      reader.cancel().catch(() => undefined);
      return { kind: 'cut', status, ...failure(err) };
    }
    return { kind: 'answer', status, body: Buffer.concat(chunks, size) };
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', fromOutside);
  }
}
