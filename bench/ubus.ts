// `npm run bench -- ubus [--calls N] [--inflight K] [--ubusd /path/to/ubusd] [--same-process]`
// A call from a TS client through the broker to a TS object, measured like the C reference (real ubusd + C server,
// ~120 µs median on this machine): broker, server and client each in their own process unless --same-process.
// With --ubusd the broker is that binary (e.g. a real ubusd) instead of the embedded one.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UbusClient } from '../src/ubus/index.ts';
import { UbusBroker } from '../src/ubus/broker/index.ts';

const ROLE_ENV = 'SLUICE_BENCH_UBUS_ROLE';
const PAYLOAD = { mac: 'aa:bb:cc:dd:ee:ff', amount: 1000, note: 'benchmark call' };

async function serve(socketPath: string): Promise<UbusClient> {
  const client = await UbusClient.connect({ socketPath });
  await client.addObject({
    path: 'bench',
    methods: { echo: { policy: { mac: 3, amount: 5, note: 3 }, handler: (args) => ({ data: args }) } },
  });
  return client;
}

// Child roles: the module is started again as a plain script with ROLE_ENV set.
const role = process.env[ROLE_ENV];
if (role === 'broker') {
  const broker = await UbusBroker.listen({ socketPath: process.argv[2]! });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void broker.close().then(() => process.exit(0)));
} else if (role === 'server') {
  await serve(process.argv[2]!);
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => process.exit(0));
}

function startChild(args: string[], env: Record<string, string>, readyLine: boolean): Promise<ChildProcess> {
  const child = spawn(args[0]!, args.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (!readyLine) return Promise.resolve(child);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(label: string, latenciesNs: bigint[], wallNs: bigint): void {
  const us = latenciesNs.map((n) => Number(n) / 1000).sort((a, b) => a - b);
  const perSec = (latenciesNs.length / (Number(wallNs) / 1e9)).toFixed(0);
  console.log(
    `  ${label.padEnd(16)} ${perSec.padStart(7)} calls/s   p50 ${percentile(us, 50).toFixed(0).padStart(5)} µs ` +
      `  p99 ${percentile(us, 99).toFixed(0).padStart(5)} µs`,
  );
}

async function measure(client: UbusClient, calls: number, inflight: number): Promise<[bigint[], bigint]> {
  const latencies: bigint[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < calls) {
      next++;
      const t0 = process.hrtime.bigint();
      await client.call('bench', 'echo', PAYLOAD);
      latencies.push(process.hrtime.bigint() - t0);
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inflight }, worker));
  return [latencies, process.hrtime.bigint() - start];
}

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export default async function ubusBench(argv: string[]): Promise<void> {
  const calls = Number(option(argv, '--calls') ?? 5000);
  const inflight = Number(option(argv, '--inflight') ?? 16);
  const ubusd = option(argv, '--ubusd');
  const sameProcess = argv.includes('--same-process');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-ubus-'));
  const socketPath = join(dir, 'ubus.sock');
  const self = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  let broker: UbusBroker | undefined;
  let server: UbusClient | undefined;
  let client: UbusClient | undefined;
  try {
    if (ubusd !== undefined) {
      children.push(await startChild([ubusd, '-s', socketPath], {}, false));
      for (let i = 0; i < 200 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
    } else if (sameProcess) {
      broker = await UbusBroker.listen({ socketPath });
    } else {
      children.push(
        await startChild([process.execPath, '--import', 'tsx', self, socketPath], { [ROLE_ENV]: 'broker' }, true),
      );
    }
    if (sameProcess) server = await serve(socketPath);
    else
      children.push(
        await startChild([process.execPath, '--import', 'tsx', self, socketPath], { [ROLE_ENV]: 'server' }, true),
      );
    client = await UbusClient.connect({ socketPath });

    const processes = sameProcess ? 'one process' : 'broker/server/client in separate processes';
    const where = `${ubusd === undefined ? 'embedded broker' : ubusd}, ${processes}`;
    console.log(`ubus call bench → TS object (${where}), ${calls} calls`);
    await measure(client, Math.min(1000, calls), 1); // warm-up: JIT, id cache
    const [seq, seqWall] = await measure(client, calls, 1);
    report('sequential', seq, seqWall);
    const [par, parWall] = await measure(client, calls, inflight);
    report(`${inflight} in flight`, par, parWall);
  } finally {
    client?.destroy();
    server?.destroy();
    await broker?.close();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
