/**
 * A real HTTP peer on loopback (node:http) whose answers a test writes: each request's method, path and body go to
 * `answer`, whose status and body (a string as it is, anything else as JSON) are sent back. It stands for a
 * facilitator or a mint that answers what a test needs (garbage, a race), where sluice must be seen talking HTTP to
 * it, not to a function put in the place of its client.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import '../helpers/kept-connections.ts';

export interface PeerRequest {
  method: string;
  path: string;
  body: string;
}

export type PeerAnswer = { status: number; body: unknown };

export class JsonPeer {
  private constructor(private readonly server: Server) {}

  static async listen(answer: (req: PeerRequest) => PeerAnswer | Promise<PeerAnswer>): Promise<JsonPeer> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const asked = { method: req.method ?? '', path: req.url ?? '', body: Buffer.concat(chunks).toString() };
        void Promise.resolve(answer(asked)).then(({ status, body }) => {
          const text = typeof body === 'string' ? body : JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json' }).end(text);
        });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new JsonPeer(server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
