/**
 * A real HTTP receiver for the session-event hook (node:http) that misbehaves on demand, as a hostile receiver or
 * anyone on the path of a plain http:// hook could: answers 200 and streams forever, answers 200 and trickles a byte
 * every 200 ms, or never answers. It records every POST and how its connection ended: `cutByClient` when the
 * connection closed while the receiver was still sending (or still silent), i.e. sluice hung up.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import '../helpers/kept-connections.ts';

export type ReceiverMode = 'ok' | 'stream' | 'trickle' | 'silent';

export interface ReceivedPost {
  mode: ReceiverMode;
  body: Record<string, any>;
  /**
   * Resolves once the connection closed: whether the receiver was still sending or silent then, and what it had sent.
   */
  closed: Promise<{ cutByClient: boolean; bytesSent: number }>;
}

const CHUNK = Buffer.alloc(65_536, 0x61);

export class HookReceiver {
  mode: ReceiverMode = 'ok';
  readonly posts: ReceivedPost[] = [];
  /** Body bytes all answers have put on the wire so far. */
  bytesSent = 0;

  private constructor(private readonly server: Server) {}

  static async listen(mode: ReceiverMode = 'ok'): Promise<HookReceiver> {
    const server = createServer();
    const receiver = new HookReceiver(server);
    receiver.mode = mode;
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const mode = receiver.mode;
        const closed = receiver.answer(mode, res);
        receiver.posts.push({
          mode,
          body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, any>,
          closed,
        });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  private answer(mode: ReceiverMode, res: ServerResponse): ReceivedPost['closed'] {
    let sent = 0;
    let ended = false;
    const closed = new Promise<{ cutByClient: boolean; bytesSent: number }>((resolve) => {
      res.on('close', () => resolve({ cutByClient: !ended, bytesSent: sent }));
    });
    if (mode === 'ok') {
      ended = true;
      res.writeHead(204).end();
    } else if (mode === 'stream') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (!res.destroyed) {
          sent += CHUNK.length;
          this.bytesSent += CHUNK.length;
          if (!res.write(CHUNK)) return;
        }
      };
      res.on('drain', pump);
      pump();
    } else if (mode === 'trickle') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      const timer = setInterval(() => {
        sent++;
        this.bytesSent++;
        res.write('x');
      }, 200);
      res.on('close', () => clearInterval(timer));
    }
    // 'silent': no status, no body, ever.
    return closed;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
