// `npm run bench -- http-client [--requests N] [--runs N] [--tls]`
// The outbound HTTP client (src/http-client.ts, node:http, a connection kept for the next exchange) against fetch
// (undici, with the read loop boundedFetch had on it) and node:http with a new connection for each exchange: each
// design in a fresh process (designs alternating, `--runs` rounds) POSTs a facilitator-sized JSON body (~220 bytes)
// `--requests` times in a row to a loopback server of this process that answers ~1 kB of JSON. Prints each process's
// CPU per request (user + system, the first request included: it loads what the design loads), wall per request, and
// RSS before the first request and after the last (the process runs under tsx: the RSS figures carry its loader, the
// same for every design). --tls: https, the server's certificate a fresh self-signed one given to the child as
// NODE_EXTRA_CA_CERTS (openssl needed).
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./http-client/child.ts', import.meta.url));
const DESIGNS = ['fetch', 'boundedFetch', 'node-http-close'] as const;

interface Figures {
  design: string;
  cpuMs: number;
  wallMs: number;
  rssBefore: number;
  rssAfter: number;
}

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  return i < 0 ? fallback : Number(argv[i + 1]);
}

const ANSWER = JSON.stringify({ isValid: true, payer: `0x${'1'.repeat(40)}`, extra: 'x'.repeat(900) });

function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER));
}

function run(design: string, url: string, requests: number, env: NodeJS.ProcessEnv): Promise<Figures> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, design, url, String(requests)], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Figures) : reject(new Error(`${design}: ${code}`)),
    ),
  );
}

export default async function main(argv: string[]): Promise<void> {
  const requests = option(argv, '--requests', 200);
  const runs = option(argv, '--runs', 3);
  const tls = argv.includes('--tls');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-http-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  let server;
  if (tls) {
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
        ...['-addext', 'subjectAltName=DNS:localhost'],
      ],
      { stdio: 'ignore' },
    );
    env.NODE_EXTRA_CA_CERTS = cert;
    server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, answer);
  } else server = createHttpServer(answer);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `${tls ? 'https' : 'http'}://localhost:${(server.address() as AddressInfo).port}/verify`;
  console.log(
    `http-client: ${requests} POSTs a process to ${url}, ${runs} rounds; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const all = new Map<string, Figures[]>(DESIGNS.map((d) => [d, []]));
  for (let r = 0; r < runs; r++)
    for (const design of DESIGNS) {
      const f = await run(design, url, requests, env);
      all.get(design)!.push(f);
      const mb = (b: number) => (b / 1048576).toFixed(1);
      console.log(
        `  ${design.padEnd(20)} cpu ${f.cpuMs.toFixed(2)} ms/request, wall ${f.wallMs.toFixed(2)} ms/request, ` +
          `rss ${mb(f.rssBefore)} → ${mb(f.rssAfter)} MB (+${mb(f.rssAfter - f.rssBefore)})`,
      );
    }
  for (const [design, list] of all) {
    const cpu = list.map((f) => f.cpuMs).sort((a, b) => a - b);
    const grown = list.map((f) => (f.rssAfter - f.rssBefore) / 1048576).sort((a, b) => a - b);
    console.log(
      `${design.padEnd(20)} cpu/request min ${cpu[0]!.toFixed(2)} median ${cpu[cpu.length >> 1]!.toFixed(2)} ms; ` +
        `rss grown median ${grown[grown.length >> 1]!.toFixed(1)} MB`,
    );
  }
  console.log(
    `load after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
