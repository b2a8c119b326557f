/**
 * The socket transport: ndsctl requests over the portal's control socket instead of a spawned ndsctl, for the
 * runner's calls and the usage worker's snapshot alike. It does exactly what ndsctl itself does (openNDS and
 * nodogsplash src/ndsctl.c `ndsctl_do`): connect to the unix stream socket, send `<cmd> <args joined by ','>\r\n\r\n`
 * (or `<cmd>\r\n\r\n`), read until the portal closes. The portal (src/ndsctl_thread.c) answers `Yes` / `No` (the
 * whole reply, no newline) for the yes/no commands and the raw text for `json` / `status`. For the runner the outcome
 * is mapped to the exit code ndsctl would have returned, so its one error mapping serves both transports: cannot
 * connect → 3, `Yes` → 0, `No` → 1, anything else to a yes/no command → 2. No ndsctl lock is taken: the lock only
 * serializes ndsctl processes, the portal serves its socket one connection at a time by itself.
 */
import { createConnection } from 'node:net';
import { statSync } from 'node:fs';
import { nudgeWhileSilent, type NudgePolicy } from './accept-nudge.ts';

/** Commands ndsctl treats as yes/no questions (openNDS: auth deauth trust untrust; nodogsplash adds block/allow). */
const YES_NO = new Set(['auth', 'deauth', 'trust', 'untrust', 'block', 'unblock', 'allow', 'unallow']);

/** ndsctl's request buffer is MAX_BUF*4/3 with MAX_BUF 4096 (openNDS); a longer request would be cut silently. */
export const MAX_SOCKET_REQUEST = 4096;

export interface SocketOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** The request line ndsctl would send for these arguments. */
export function socketRequest(args: readonly string[]): string {
  const [cmd, ...params] = args;
  if (cmd === undefined || cmd === '') throw new RangeError('empty ndsctl command');
  return params.length > 0 ? `${cmd} ${params.join(',')}\r\n\r\n` : `${cmd}\r\n\r\n`;
}

/** Maps the portal's reply to ndsctl's exit code and output. */
export function socketOutcome(args: readonly string[], reply: string): SocketOutcome {
  const cmd = args[0] ?? '';
  if (!YES_NO.has(cmd)) return { code: 0, stdout: reply, stderr: '' };
  if (reply === 'Yes') return { code: 0, stdout: 'Yes', stderr: '' };
  if (reply === 'No') return { code: 1, stdout: 'No', stderr: '' };
  return { code: 2, stdout: '', stderr: 'ndsctl: Error: the portal sent an abnormal reply.' };
}

/** True when `path` is a unix socket now (the portal creates it at start and removes it on a clean stop). */
export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Default places of the control socket: openNDS puts `ndsctl.sock` on the first tmpfs of /tmp, /run, /var
 * (libopennds.sh `tmpfs`; option ndsctlsocket renames it), nodogsplash at /tmp/ndsctl.sock.
 */
export const DEFAULT_SOCKET_PATHS = ['/tmp/ndsctl.sock', '/run/ndsctl.sock', '/var/ndsctl.sock'] as const;

export function findPortalSocket(candidates: readonly string[] = DEFAULT_SOCKET_PATHS): string | undefined {
  return candidates.find(isSocket);
}

export type ExchangeEnd =
  | { kind: 'end' }
  /** `received`: bytes read before the error (0: the portal was never reached). */
  | { kind: 'error'; error: NodeJS.ErrnoException; received: number }
  | { kind: 'refused'; why: string }
  | { kind: 'aborted'; reason: Error };

export interface Exchange {
  /** Settles once; never rejects. */
  end: Promise<ExchangeEnd>;
  /** Drops the connection; `end` then settles as 'aborted' with `reason`. */
  abort(reason: Error): void;
}

/**
 * Reads land here and are handed on at once (a snapshot is ~90 MB at 100k clients, a yes/no reply 3 bytes). One buffer
 * per thread, allocated on first use: every read is consumed synchronously by onChunk before the next read of any
 * connection, so connections can share it, and a call costs no 256 KiB allocation (hundreds of auths would be GC work).
 */
const READ_CHUNK = 256 * 1024;
let readBuffer: Buffer | undefined;

/**
 * The socket transport, for the runner's calls and the usage worker's snapshot alike: connect, write `request`, hand
 * every chunk read to `onChunk` (valid only during the call) until the portal closes. A string from `onChunk`
 * refuses the reply and drops the connection. `readInto`, when given, says where each read lands (called before every
 * read; the chunk handed to `onChunk` is then the start of that view): the snapshot reads straight into its kept
 * buffer instead of the shared one, saving a copy of every byte.
 */
export function socketExchange(
  path: string,
  request: string,
  onChunk: (chunk: Uint8Array) => string | undefined,
  readInto?: () => Uint8Array,
): Exchange {
  let finish: (end: ExchangeEnd) => void = () => {};
  const end = new Promise<ExchangeEnd>((resolve) => {
    let received = 0;
    let settled = false;
    if (readInto === undefined) readBuffer ??= Buffer.allocUnsafe(READ_CHUNK);
    const socket = createConnection({
      path,
      onread: {
        buffer: readInto ?? readBuffer!,
        callback: (n: number, chunk: Uint8Array): boolean => {
          if (settled) return false;
          received += n;
          const why = onChunk(chunk.subarray(0, n));
          if (why !== undefined) {
            finish({ kind: 'refused', why });
            return false;
          }
          return true;
        },
      },
    });
    finish = (result) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.on('connect', () => socket.write(request));
    socket.on('end', () => finish({ kind: 'end' }));
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'error', error, received }));
  });
  return { end, abort: (reason) => finish({ kind: 'aborted', reason }) };
}

export interface SocketCall {
  promise: Promise<SocketOutcome>;
  /** Drops the connection; the promise then rejects with `reason`. */
  abort(reason: Error): void;
}

/**
 * Sends one request as ndsctl would. Connection failures resolve as exit 3 (what ndsctl returns when it cannot
 * connect); `maxBytes` bounds the reply (the promise rejects with a RangeError past it). `nudge`: while no byte of the
 * answer has come, the portal's accept is nudged (accept-nudge.ts).
 */
export function socketCall(path: string, args: readonly string[], maxBytes: number, nudge?: NudgePolicy): SocketCall {
  const request = socketRequest(args);
  if (Buffer.byteLength(request) > MAX_SOCKET_REQUEST) {
    return {
      promise: Promise.reject(new RangeError(`ndsctl request longer than ${MAX_SOCKET_REQUEST} bytes`)),
      abort: () => {},
    };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const nudging = nudge === undefined ? undefined : nudgeWhileSilent(path, nudge);
  const exchange = socketExchange(path, request, (chunk) => {
    nudging?.stop();
    size += chunk.length;
    if (size > maxBytes) return `portal reply over ${maxBytes} bytes`;
    chunks.push(Buffer.from(chunk));
    return undefined;
  });
  const promise = exchange.end.then((end): SocketOutcome => {
    nudging?.stop();
    switch (end.kind) {
      case 'end':
        return socketOutcome(args, Buffer.concat(chunks, size).toString('utf8'));
      case 'refused':
        throw new RangeError(end.why);
      case 'aborted':
        throw end.reason;
      case 'error': {
        const { code, message } = end.error;
        const cannotConnect =
          end.received === 0 &&
          (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ENOTSOCK');
        return {
          code: 3,
          stdout: '',
          stderr: cannotConnect
            ? `ndsctl: cannot connect to ${path}: ${code}`
            : `ndsctl: error reading ${path}: ${message}`,
        };
      }
    }
  });
  return { promise, abort: (reason) => exchange.abort(reason) };
}
