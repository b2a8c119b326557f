// `npm run bench -- tollgate [--payments 100] [--runs 1]`
// TollGate's purchase as the Android app and the reseller make it (docs/tollgate.md, "Which clients work"): POST / with
// the raw token as text/plain → the signed kind 1022, through the real daemon (dist/sluice.mjs, DaemonLab) with
// TollGate's door on and the lab Cashu mint (test/peers/cashu-mint.ts) on loopback. Each payment is its own device (a
// loopback source address the portal stand-in lists with a MAC) paying one step with a fresh token funded before the
// clock starts, so what is timed is the door's checks, the intent and the swap's outputs on flash, the mint's swap
// (NUT-03) on loopback, the new proofs on flash, the session opened (gate included) and the 1022 signed. One payment
// at a time. Prints p50 / p99 / min / max of the wall-clock time from the request's first byte to the answer's last,
// with the 1-minute load average before and after (the machine is shared: at load above ~2 wall-clock figures are
// inflated). Asserts nothing, but stops at an answer that is not a 1022.
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { DaemonLab } from '../test/daemon/harness.ts';
import { freePort } from '../test/helpers/net.ts';
import { startCashuMint } from '../test/peers/cashu-mint.ts';

const PRICE = 21;
const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
};
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function post(port: number, from: string, token: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        localAddress: from,
        headers: { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(token)) },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => (text += d))
          .on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(token);
  });
}

async function oneRun(payments: number): Promise<{ ms: number[]; loadBefore: string; loadAfter: string }> {
  const mint = await startCashuMint();
  const port = await freePort();
  const lab = await DaemonLab.create({
    pollInterval: 2,
    portalSocket: true,
    extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${port}'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption unit 'sat'
\toption price_per_step '${PRICE}'
\toption min_steps '1'
`,
  });
  try {
    const devices = Array.from({ length: payments }, (_, i) => ({
      ip: `127.0.${10 + (i >> 8)}.${(i & 255) + 1}`,
      mac: `02:00:00:39:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    }));
    for (const d of devices) lab.portal.addClient(d.mac, d.ip);
    await lab.startDaemon();
    const tokens: string[] = [];
    for (let i = 0; i < payments; i++) tokens.push(await mint.fundToken(PRICE));
    const loadBefore = load();
    const ms: number[] = [];
    for (let i = 0; i < payments; i++) {
      const t0 = performance.now();
      const a = await post(port, devices[i]!.ip, tokens[i]!);
      ms.push(performance.now() - t0);
      if (a.status !== 200 || (JSON.parse(a.text) as { kind?: number }).kind !== 1022)
        throw new Error(`payment ${i}: ${a.status} ${a.text.slice(0, 300)}`);
    }
    return { ms, loadBefore, loadAfter: load() };
  } finally {
    await lab.close();
    await mint.stop();
  }
}

export default async function tollgate(argv: string[]): Promise<void> {
  const payments = Number(arg(argv, '--payments', '100'));
  const runs = Number(arg(argv, '--runs', '1'));
  console.log(
    `tollgate: POST / (text/plain token) → 1022 through dist/sluice.mjs, lab mint on loopback, ${payments} ` +
      `payments one at a time, ${runs} run(s)`,
  );
  for (let r = 0; r < runs; r++) {
    const { ms, loadBefore, loadAfter } = await oneRun(payments);
    const f = (x: number): string => x.toFixed(1);
    console.log(
      `  run ${r + 1}: p50 ${f(pct(ms, 50))} ms, p99 ${f(pct(ms, 99))} ms, min ${f(Math.min(...ms))}, ` +
        `max ${f(Math.max(...ms))} (n=${ms.length}); load avg before ${loadBefore}, after ${loadAfter}`,
    );
  }
}
