/**
 * Small pieces the portal tests share: a raw ndsctl socket server that records each request's exact bytes and
 * answers what the test says (or holds the request until the test answers it), one that drops the connection of the
 * requests the test names before answering them, and an IPv6 gate that records the trusted MACs it is told.
 */
import { createServer, Socket } from 'node:net';

export interface RawNdsctlServer {
  /** Every request as it arrived, CRLF CRLF included. */
  seen: string[];
  /** Answers every request held so far (as openNDS answers one it was busy with, its caller gone or not). */
  answerHeld(answer?: string): void;
  close(): Promise<void>;
}

/** Listens on `path`; answers `reply(request)` after `delayMs`, or holds the request when it gives null. */
export async function rawNdsctlServer(
  path: string,
  reply: (request: string) => string | null,
  delayMs = 0,
): Promise<RawNdsctlServer> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const held: Socket[] = [];
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      if (!buf.endsWith('\r\n\r\n')) return;
      seen.push(buf);
      const answer = reply(buf);
      if (answer === null) {
        held.push(socket);
        return;
      }
      setTimeout(() => socket.end(answer), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    seen,
    answerHeld: (answer = 'Yes') => held.splice(0).forEach((s) => s.end(answer)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface DroppingNdsctlServer {
  /** The request lines it took and dropped the connection of, unanswered. */
  dropped: string[];
  close(): Promise<void>;
}

/**
 * Listens on `path` and hands each request line to `handle` (the portal doing it); for a line `drop` names, it then
 * closes the connection before answering, with the request's last byte unread: a Unix socket closed with data unread
 * makes the caller's read fail (ECONNRESET), as openNDS dying inside a request makes ndsctl's ("error reading").
 * Other requests are answered with what `handle` gives. The request is read a byte at a time for that (a test portal).
 */
export async function droppingNdsctlServer(
  path: string,
  handle: (line: string) => string | Uint8Array | undefined,
  drop: (line: string) => boolean,
): Promise<DroppingNdsctlServer> {
  const dropped: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    let request = '';
    // The accepted connection read through a one-byte buffer (net.Socket's `onread`): it stops before the last byte.
    const socket: Socket = new Socket({
      handle: (accepted as unknown as { _handle: unknown })._handle,
      onread: {
        buffer: Buffer.alloc(1),
        callback: (n: number, buf: Uint8Array): boolean => {
          request += Buffer.from(buf.subarray(0, n)).toString('latin1');
          if (!request.endsWith('\r\n\r') && !request.endsWith('\r\n\r\n')) return true;
          const line = request.slice(0, request.search(/[\r\n]/));
          if (request.endsWith('\r\n\r') && drop(line)) {
            handle(line);
            dropped.push(line);
            setImmediate(() => socket.destroy());
            return false;
          }
          if (request.endsWith('\r\n\r\n')) socket.end(handle(line) ?? '');
          return true;
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    dropped,
    // Not waiting for the server's close callback: the connections it counts were handed to the one-byte readers.
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** An IPv6 gate that opens and closes nothing and records each list of trusted MACs it is given. */
export function ipv6Recorder() {
  const told: string[][] = [];
  return {
    told,
    open: async () => {},
    // Reported open: the valve makes no opening ahead of its auths (valve.test.ts tests that).
    isOpen: () => true,
    withdraw: async () => {},
    close: async () => {},
    trusted: async (m: readonly string[]) => void told.push([...m]),
  };
}
