/**
 * One ndsctl request over the portal's control socket instead of a spawned ndsctl: exactly what ndsctl itself does
 * (openNDS and nodogsplash src/ndsctl.c `ndsctl_do`): connect to the unix stream socket, send
 * `<cmd> <args joined by ','>\r\n\r\n` (or `<cmd>\r\n\r\n`), read until the portal closes. The portal
 * (src/ndsctl_thread.c) answers `Yes` / `No` (the whole reply, no newline) for the yes/no commands and the raw text
 * for `json` / `status`. The outcome is mapped to the exit code ndsctl would have returned, so the runner's one error
 * mapping serves both transports: cannot connect → 3, `Yes` → 0, `No` → 1, anything else to a yes/no command → 2.
 * No ndsctl lock is taken: the lock only serializes ndsctl processes, the portal serves its socket one connection
 * at a time by itself.
 */
import { createConnection, type Socket } from 'node:net';
import { statSync } from 'node:fs';

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

export interface SocketCall {
  promise: Promise<SocketOutcome>;
  /** Drops the connection; the promise then rejects with `reason`. */
  abort(reason: Error): void;
}

/**
 * Sends one request. Connection failures resolve as exit 3 (what ndsctl returns when it cannot connect); `maxBytes`
 * bounds the reply (the promise rejects with a RangeError past it).
 */
export function socketCall(path: string, args: readonly string[], maxBytes: number): SocketCall {
  const request = socketRequest(args);
  let socket: Socket | undefined;
  let abort: (reason: Error) => void = () => {};
  const promise = new Promise<SocketOutcome>((resolve, reject) => {
    if (Buffer.byteLength(request) > MAX_SOCKET_REQUEST) {
      reject(new RangeError(`ndsctl request longer than ${MAX_SOCKET_REQUEST} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      socket?.destroy();
      fn();
    };
    abort = (reason) => done(() => reject(reason));
    socket = createConnection({ path });
    socket.on('connect', () => socket?.write(request));
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) done(() => reject(new RangeError(`portal reply over ${maxBytes} bytes`)));
      else chunks.push(chunk);
    });
    socket.on('end', () => done(() => resolve(socketOutcome(args, Buffer.concat(chunks, size).toString('utf8')))));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (size === 0 && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EACCES' || err.code === 'ENOTSOCK')) {
        done(() => resolve({ code: 3, stdout: '', stderr: `ndsctl: cannot connect to ${path}: ${err.code}` }));
      } else {
        done(() => resolve({ code: 3, stdout: '', stderr: `ndsctl: error reading ${path}: ${err.message}` }));
      }
    });
  });
  return { promise, abort: (reason) => abort(reason) };
}
