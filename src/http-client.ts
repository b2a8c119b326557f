/**
 * The one way sluice reads an answer from an HTTP peer it calls: the hook's receiver, the x402 and escrow
 * facilitators, the chain's JSON-RPC, the Cashu mints, Lightning addresses. An unbounded read takes all the peer
 * sends, for as long as it sends it (a receiver streaming forever would grow the daemon without end; a trickling one
 * would hold the hook's one delivery forever). Here the whole exchange, headers and body, runs under one deadline,
 * the body is read up to `maxBytes`, and at either limit the request is destroyed, which closes its socket: nothing
 * of the peer's stays in memory or keeps the process alive.
 *
 * Built on node:http and node:https rather than fetch: fetch (undici) cost 2–4 times the CPU of node:http per exchange
 * and some 20 MB more RSS over 200 exchanges (bench/http-client.ts), and a router pays both. TLS is verified as fetch
 * verifies it: Node's CA store (NODE_EXTRA_CA_CERTS added), the host name checked. A connection is kept for the next
 * exchange with the same peer, idle at most KEEP_IDLE_MS, as fetch kept them: a router polls a mint or a facilitator
 * every few seconds, and a new TLS connection each time cost ~5 times the CPU of a kept one (bench/http-client.ts
 * --tls); after a few idle seconds it is closed, so an idle router holds no socket. A connection cut at a limit is
 * never kept.
 *
 * Redirects are not followed: a 3xx is an answer like any other status, from the URL configured.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

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
}

/** Errors of the connection before any byte of the request could reach the peer. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * How long a kept connection may idle (undici's default, which fetch used). Below the 5 s servers built on Node close
 * theirs at: the router closes first, so a request is seldom sent on a connection the peer is closing (a peer's
 * shorter `Keep-Alive: timeout=` hint is followed). A few kept per peer: sluice's calls to one peer are few at once.
 */
const KEEP_IDLE_MS = 4000;
const kept = { keepAlive: true, timeout: KEEP_IDLE_MS, maxFreeSockets: 4 };
const agents = { 'http:': new HttpAgent(kept), 'https:': new HttpsAgent(kept) };

/** Closes the connections kept idle now (what stops with nothing more to ask: a test file ending). */
export function closeKeptConnections(): void {
  for (const agent of Object.values(agents))
    for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

/** Whether `err` (or, for a host with several addresses tried in turn, each of its errors) left the peer unasked. */
function unsent(err: unknown): boolean {
  const e = err as { code?: unknown; errors?: unknown };
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.every(unsent);
  return typeof e.code === 'string' && NOT_SENT.has(e.code);
}

/** The request's headers: the caller's, a Content-Length for a body, and an Accept and User-Agent unless given. */
function headersOf(request: BoundedRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  const given = new Set<string>();
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    headers[name] = value;
    given.add(name.toLowerCase());
  }
  if (!given.has('accept')) headers.accept = '*/*';
  if (!given.has('user-agent')) headers['user-agent'] = 'sluice';
  const body = request.body;
  if (body !== undefined || request.method === 'POST')
    headers['content-length'] = String(
      body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
    );
  return headers;
}

/** One request and its answer, bounded in time and size (never throws). */
export function boundedFetch(url: string, request: BoundedRequest): Promise<BoundedAnswer> {
  const outer = request.signal;
  if (outer?.aborted) return Promise.resolve({ kind: 'none', why: 'aborted', message: 'aborted before it was sent' });
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ kind: 'none', why: 'failed', message: 'not a URL' });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    return Promise.resolve({ kind: 'none', why: 'failed', message: `${target.protocol} is not http: or https:` });
  const https = target.protocol === 'https:';
  return new Promise<BoundedAnswer>((resolve) => {
    let status: number | undefined;
    let settled = false;
    let req: ClientRequest | undefined;
    const settle = (answer: BoundedAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outer?.removeEventListener('abort', fromOutside);
      resolve(answer);
    };
    /** Ends the exchange where it is: the request destroyed closes its socket, connecting or reading. */
    const stop = (why: 'too-large' | ExchangeFailure, message: string): void => {
      if (settled) return;
      settle(
        status === undefined
          ? { kind: 'none', why: why as ExchangeFailure, message }
          : { kind: 'cut', status, why, message },
      );
      req?.destroy();
    };
    const fromOutside = (): void => stop('aborted', 'aborted: sluice is closing');
    const timer = setTimeout(() => stop('timeout', `no complete answer in ${request.timeoutMs} ms`), request.timeoutMs);
    outer?.addEventListener('abort', fromOutside, { once: true });
    let res: IncomingMessage | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const read = (answer: IncomingMessage): void => {
      res = answer;
      status = res.statusCode ?? 0;
      const tooLarge = `answer larger than ${request.maxBytes} bytes (HTTP ${status})`;
      const declared = Number(res.headers['content-length'] ?? '');
      if (Number.isFinite(declared) && declared > request.maxBytes) return stop('too-large', tooLarge);
      res.on('data', (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > request.maxBytes) stop('too-large', tooLarge);
        else chunks.push(chunk);
      });
      res.on('end', () => settle({ kind: 'answer', status: status!, body: Buffer.concat(chunks, size) }));
      // A body that stops short of its length or its last chunk: the peer closed the connection mid-answer.
      res.on('error', (err) => stop('failed', err.message));
      res.on('close', () => {
        if (!answer.complete) stop('failed', 'the connection closed before the answer ended');
      });
    };
    const send = (again: boolean): void => {
      let sent: ClientRequest;
      try {
        sent = (https ? httpsRequest : httpRequest)(target, {
          method: request.method,
          headers: headersOf(request),
          agent: agents[target.protocol as 'http:' | 'https:'],
        });
      } catch (err) {
        // An invalid header name or value, refused before anything is sent.
        return stop('failed', (err as Error).message);
      }
      req = sent;
      sent.on('error', (err) => {
        // A peer sending more than it declared: the parser errs on the extra bytes once the declared body is complete,
        // and Node destroys the socket; the body's 'end' still comes, and it is the answer (the rest is never read).
        if (res?.complete || settled) return;
        // A kept connection the peer closed as it was reused. A GET is asked again once on a new connection (RFC 9110
        // §9.2.2: a client may retry an idempotent request); a POST may have reached the peer, so it fails.
        if (!again && res === undefined && sent.reusedSocket && request.method === 'GET') return send(true);
        stop(unsent(err) ? 'unsent' : 'failed', err.message);
      });
      sent.on('response', read);
      sent.end(request.body);
    };
    send(false);
  });
}
