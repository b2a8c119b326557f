// Child process of `npm run bench -- meter`: the embedded ubus broker (a separate process, like ubusd) and a caller
// that invokes `sluice stats` every few ms, measuring how long the daemon's main thread takes to answer.
// stdin commands: "start" begins probing, "stop" prints {n, p50, p99, max} as one JSON line.
import { createInterface } from 'node:readline';
import { UbusClient } from '../../src/ubus/index.ts';
import { UbusBroker } from '../../src/ubus/broker/index.ts';

const [socketPath, everyArg] = process.argv.slice(2);
const everyMs = Number(everyArg ?? 5);
const broker = await UbusBroker.listen({ socketPath: socketPath! });
const client = await UbusClient.connect({ socketPath: socketPath!, timeoutMs: 30_000 });
let latencies: number[] = [];
let timer: NodeJS.Timeout | undefined;
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'start') {
    latencies = [];
    timer = setInterval(() => {
      const t0 = performance.now();
      client.call('sluice', 'stats', {}).then(
        () => latencies.push(performance.now() - t0),
        () => latencies.push(performance.now() - t0),
      );
    }, everyMs);
  } else if (line === 'stop') {
    clearInterval(timer);
    await new Promise((r) => setTimeout(r, 50));
    const s = [...latencies].sort((a, b) => a - b);
    const q = (p: number): number => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(p * s.length))]!);
    process.stdout.write(JSON.stringify({ n: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? 0 }) + '\n');
  }
}
await client.close();
await broker.close();
