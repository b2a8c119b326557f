// The measured process of `npm run bench -- meter`, bundled with esbuild and run with plain node (as the daemon runs
// from dist/), so its RSS and GC are the product's, not the TypeScript loader's. Both designs run here the same way.
// It serves `sluice stats` on the bench's ubus broker (the probe calls it), holds the real SessionManager (memory
// store) with a data session for every simulated device, warms up, then on "go" runs ticks back to back and prints
// one JSON line: tick durations, per-phase figures, event-loop delay and its own peak RSS.
// argv: <worker|main-json|kernel|kernel-json> <ndsctl.sock> <ubus.sock> <clients> <ticks> <usage-worker.mjs> [nft argv,
// JSON] kernel: the Meter on the kernel's counters (the product's default), reading a stand-in nft's dump each tick
// (bench/meter/nft-dump.ts) and listing the portal only when its listing policy says so; kernel-json: its baseline.
import { readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Meter, sessionManagerPort } from '../../src/meter/index.ts';
import { holdOptimizer } from '../../src/optimizer.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { simulatedMac } from '../../src/sim/traffic.ts';
import { UbusClient, type BlobmsgTable } from '../../src/ubus/index.ts';
import type { KernelCountersPort } from '../../src/meter/ports.ts';
import { MainThreadJsonMeter, MainThreadNftMeter } from './baseline.ts';

const [design, socketPath, ubusPath, clientsArg, ticksArg, workerPath, nftArgv] = process.argv.slice(2);
// The Meter's designs start as the daemon does (main.ts): V8's optimizing compiler held until the pool has work.
if (design === 'worker' || design === 'kernel') holdOptimizer();
const clients = Number(clientsArg);
const ticks = Number(ticksArg);
const WARMUP = 3;

function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    /* not Linux */
  }
}
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* fall through */
  }
  return process.memoryUsage.rss() / 1024 / 1024;
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

// Every simulated device (arrivals included: their indices run past `clients`) has a data session bought long before
// the measurement with an allotment it never reaches, so every delta is billed and nothing ends.
const manager = await SessionManager.open({ store: new MemoryStore(), checkpointIntervalMs: 3_600_000 });
for (let i = 0; i < clients * 1.2; i++) {
  await manager.activate({
    mac: simulatedMac(i),
    metric: 'bytes',
    allotment: 1n << 60n,
    payment: { method: 'grant', reference: `bench-${i}`, amount: 1n, asset: 'X', at: Date.now() },
  });
}
const port = sessionManagerPort(manager);
const debug = (what: string): void => {
  if (process.env['SLUICE_BENCH_DEBUG']) {
    const m = process.memoryUsage();
    process.stderr.write(
      `${design} ${what}: rss ${(m.rss / 1048576).toFixed(0)} ` +
        `heap ${(m.heapUsed / 1048576).toFixed(0)}/${(m.heapTotal / 1048576).toFixed(0)} ` +
        `ext ${(m.external / 1048576).toFixed(0)} ab ${(m.arrayBuffers / 1048576).toFixed(0)} ` +
        `hwm ${peakRssMb().toFixed(0)}\n`,
    );
  }
};
debug('sessions');
let usageRows = 0;
// Only the figures: keeping whole TickReports (each with its usage batch) would grow the heap the bench measures.
const reports: Array<{ fetchMs: number; scanMs: number; applyMs: number }> = [];

let tickOnce: () => Promise<void>;
let stats: () => BlobmsgTable;
let close: () => Promise<void>;
/** Counters that exist for every client and never change (the bench buys nothing while it measures). */
const kernelCounters = (argv: string[]): KernelCountersPort => ({
  enabled: true,
  dumpArgv: argv,
  changes: 0,
  has: () => true,
  count: async () => {},
  rebuild: async () => {},
});
if (design === 'worker' || design === 'kernel') {
  const meter = new Meter({
    source: { kind: 'socket', path: socketPath! },
    pollIntervalMs: 10_000,
    sessions: port,
    workerPath: workerPath!,
    ...(design === 'kernel' && { kernelCounters: kernelCounters(JSON.parse(nftArgv!) as string[]) }),
    // A 100k-client snapshot (~90 MB) is past the router default cap (main.portal_output_max 32 MiB).
    fetchTimeoutMs: 30_000,
    initialCapacity: clients * 1.3,
    maxSnapshotBytes: 1 << 30,
  });
  manager.on('usage', (batch) => {
    usageRows += batch.length;
  });
  tickOnce = async () => {
    const r = await meter.tick();
    if (!r.ok) throw new Error(`tick skipped: ${r.skipped} ${r.message}`);
    reports.push({ fetchMs: r.fetchMs, scanMs: r.scanMs, applyMs: r.applyMs });
  };
  stats = () => meter.stats() as unknown as BlobmsgTable;
  close = () => meter.close();
} else if (design === 'kernel-json') {
  const base = new MainThreadNftMeter(JSON.parse(nftArgv!) as string[], port, (batch) => {
    usageRows += batch.length;
  });
  tickOnce = async () => {
    await base.tick();
  };
  stats = () => base.stats();
  close = async () => {};
} else {
  const base = new MainThreadJsonMeter(socketPath!, port, (batch) => {
    usageRows += batch.length;
  });
  tickOnce = async () => {
    await base.tick();
  };
  stats = () => base.stats();
  close = async () => {};
}

const ubus = await UbusClient.connect({ socketPath: ubusPath!, timeoutMs: 30_000 });
await ubus.addObject({ path: 'sluice', methods: { stats: { handler: () => ({ data: stats() }) } } });

for (let i = 0; i < WARMUP; i++) await tickOnce();
debug('warm');
reports.length = 0;
usageRows = 0;
(globalThis as { gc?: () => void }).gc?.();
resetPeakRss();
process.stdout.write('ready\n');
const input = createInterface({ input: process.stdin });
for await (const line of input) if (line === 'go') break;

const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
// Main-thread GC pauses during the measured ticks (the worker's isolate has its own heap and does not block ubus).
const gcPauses: number[] = [];
const gcKinds: string[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcPauses.push(e.duration);
    gcKinds.push(`${(e as unknown as { detail?: { kind?: number } }).detail?.kind ?? '?'}:${e.duration.toFixed(1)}`);
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
const durations: number[] = [];
for (let i = 0; i < ticks; i++) {
  const t0 = performance.now();
  await tickOnce();
  durations.push(performance.now() - t0);
}
loopDelay.disable();
gcObserver.disconnect();
const rss = peakRssMb();
debug('end');
if (process.env['SLUICE_BENCH_DEBUG'])
  process.stderr.write(`gc kind:ms (1 minor, 2 major, 4 incremental, 8 weakcb) ${gcKinds.join(' ')}\n`);
process.stdout.write(
  JSON.stringify({
    durations,
    rss_peak_mb: rss,
    usage_rows_per_tick: usageRows / ticks,
    // The kernel path lists the portal only when something changed: how many of the measured ticks did.
    listings: (stats() as { portal_listings?: number }).portal_listings ?? null,
    fetch_ms: reports.length ? median(reports.map((r) => r.fetchMs)) : null,
    scan_ms: reports.length ? median(reports.map((r) => r.scanMs)) : null,
    apply_ms: reports.length ? median(reports.map((r) => r.applyMs)) : null,
    loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
    loop_delay_max_ms: loopDelay.max / 1e6,
    gc_count: gcPauses.length,
    gc_total_ms: gcPauses.reduce((a, b) => a + b, 0),
    gc_max_ms: Math.max(0, ...gcPauses),
  }) + '\n',
);
input.close();
await close();
await ubus.close();
await manager.close();
process.exit(0);
