/**
 * Small pieces the portal tests share: a raw ndsctl socket server that records each request's exact bytes and
 * answers what the test says (or hangs), and an IPv6 gate that records the trusted MACs it is told.
 */
import { createServer, type Socket } from 'node:net';

export interface RawNdsctlServer {
  /** Every request as it arrived, CRLF CRLF included. */
  seen: string[];
  close(): Promise<void>;
}

/** Listens on `path`; answers `reply(request)` after `delayMs`, or never when it gives null. */
export async function rawNdsctlServer(
  path: string,
  reply: (request: string) => string | null,
  delayMs = 0,
): Promise<RawNdsctlServer> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      if (!buf.endsWith('\r\n\r\n')) return;
      seen.push(buf);
      const answer = reply(buf);
      if (answer === null) return;
      setTimeout(() => socket.end(answer), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An IPv6 gate that opens and closes nothing and records each list of trusted MACs it is given. */
export function ipv6Recorder() {
  const told: string[][] = [];
  return {
    told,
    open: async () => {},
    close: async () => {},
    trusted: async (m: readonly string[]) => void told.push([...m]),
  };
}
