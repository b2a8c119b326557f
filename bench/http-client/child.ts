// One process of bench/http-client.ts: `<design> <url> <requests>`; prints one JSON line of figures.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { boundedFetch } from '../../src/http-client.ts';

const [design = '', url = '', count = '200'] = process.argv.slice(2);
const requests = Number(count);
const body = JSON.stringify({ paymentPayload: { x: 'a'.repeat(150) }, paymentRequirements: { amount: '10000' } });
const headers = { 'content-type': 'application/json', accept: 'application/json' };

/** fetch with the read loop boundedFetch had on it: a reader, a byte count, the whole under one abort signal. */
async function viaFetch(): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(5000) });
  const reader = res.body!.getReader();
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
  }
  return res.status;
}

const closing = url.startsWith('https:') ? new HttpsAgent({ keepAlive: false }) : new HttpAgent({ keepAlive: false });

/** node:http with a new connection for each exchange (`Connection: close`; TLS sessions resumed): the alternative. */
function viaNewConnection(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      agent: closing,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.end(body);
  });
}

async function viaBounded(): Promise<number> {
  const a = await boundedFetch(url, { method: 'POST', headers, body, timeoutMs: 5000, maxBytes: 65_536 });
  if (a.kind !== 'answer') throw new Error(a.message);
  return a.status;
}

const one = { fetch: viaFetch, boundedFetch: viaBounded, 'node-http-close': viaNewConnection }[design];
if (!one) throw new Error(`unknown design ${design}`);
const rss = () => process.memoryUsage().rss;
const rssBefore = rss();
const cpu = process.cpuUsage();
const started = performance.now();
for (let i = 0; i < requests; i++) if ((await one()) !== 200) throw new Error('not 200');
const used = process.cpuUsage(cpu);
const wall = performance.now() - started;
console.log(
  JSON.stringify({
    design,
    cpuMs: (used.user + used.system) / 1000 / requests,
    wallMs: wall / requests,
    rssBefore,
    rssAfter: rss(),
  }),
);
closing.destroy();
