/**
 * The alerts tests' webhook receiver: a real HTTP server on 127.0.0.1 that checks each post's HMAC as docs/hook.md's
 * receiver does, then answers 503 while it is `down` or for the next `refuseNext` posts, else accepts the post (204)
 * and keeps its JSON in order.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { freePort } from '../helpers/net.ts';

export interface AlertReceiver {
  /** Where the dashboard posts (the Settings page's webhook URL). */
  url: string;
  /** Posts accepted (signature right, not refused), in order. */
  accepted: Array<Record<string, unknown>>;
  /** Every post that came, whatever it was answered. */
  tries: number;
  /** Posts refused on purpose (down or refuseNext). */
  refused: number;
  /** Posts whose signature was wrong (401). */
  forged: number;
  /** While true, every signed post is answered 503. */
  down: boolean;
  /** The next n signed posts are answered 503. */
  refuseNext: number;
  /** "router: alert state" of each accepted post. */
  told(): string[];
  close(): Promise<void>;
}

export async function startAlertReceiver(secret: string): Promise<AlertReceiver> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.tries++;
      const body = Buffer.concat(chunks);
      const ts = String(req.headers['x-sluice-timestamp']);
      const nonce = String(req.headers['x-sluice-nonce']);
      const mac = createHmac('sha256', secret).update(`${ts}.${nonce}.`).update(body).digest('hex');
      const expected = Buffer.from(`v1=${mac}`);
      const given = Buffer.from(String(req.headers['x-sluice-signature'] ?? ''));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        r.forged++;
        return void res.writeHead(401).end('bad signature');
      }
      if (r.down || r.refuseNext > 0) {
        if (r.refuseNext > 0) r.refuseNext--;
        r.refused++;
        return void res.writeHead(503).end('busy');
      }
      r.accepted.push(JSON.parse(body.toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  const r: AlertReceiver = {
    url: `http://127.0.0.1:${port}/sluice-alerts`,
    accepted: [],
    tries: 0,
    refused: 0,
    forged: 0,
    down: false,
    refuseNext: 0,
    told: () => r.accepted.map((a) => `${String(a['router'])}: ${String(a['alert'])} ${String(a['state'])}`),
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
  return r;
}
