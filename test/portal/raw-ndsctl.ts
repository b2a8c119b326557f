/**
 * Small pieces the portal tests share: a raw ndsctl socket server that records each request's exact bytes and
 * answers what the test says (or holds the request until the test answers it), and an IPv6 gate that records the
 * trusted MACs it is told.
 */
import { createServer, type Socket } from 'node:net';

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
