/**
 * A page's own origin for browser tests: a static file server as a router's uhttpd would be (TollGate's page is
 * served on :2051 of the router, beside TollGate's door on :2121). Serves `dir`'s files (a directory's `index`), or
 * one blank HTML page when `dir` is null; GET and HEAD only; nothing outside `dir`.
 */
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};
const BLANK =
  '<!DOCTYPE html><html><head><meta charset="utf-8"><title>another origin</title></head><body></body></html>';

export interface StaticSite {
  /** `http://host:port` */
  origin: string;
  close(): Promise<void>;
}

export async function startStaticSite(options: {
  host: string;
  port: number;
  dir: string | null;
  index?: string;
}): Promise<StaticSite> {
  const root = options.dir === null ? null : normalize(options.dir);
  const server: Server = createServer((req, res) => {
    const send = (status: number, type: string, body: Buffer | string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET only');
    if (root === null) return send(200, TYPES['.html']!, BLANK);
    void (async () => {
      let path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      if (path !== root && !path.startsWith(root + sep)) return send(404, 'text/plain', 'not found');
      try {
        if ((await stat(path)).isDirectory()) path = join(path, options.index ?? 'index.html');
        send(200, TYPES[extname(path)] ?? 'application/octet-stream', await readFile(path));
      } catch {
        send(404, 'text/plain', 'not found');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${options.host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
