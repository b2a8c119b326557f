// `npm run bench -- meter [--clients 1000,10000,100000] [--format opennds|nodogsplash|both] [--ticks N] [--json]`
// Ticks back to back against a simulated portal in another process (fetch over its ndsctl.sock), for the Meter
// (worker pool fetches + scans + accounts in shared memory) and the main-thread JSON.parse baseline, while a ubus
// caller in a third process measures how fast the main thread answers `sluice stats`. See docs/performance.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Meter, type MeteredSession, type SessionsPort } from '../src/meter/index.ts';
import { UbusClient } from '../src/ubus/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { MainThreadJsonMeter } from './meter/baseline.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');
const WORKER = join(root, 'dist', 'usage-worker.mjs');

interface Row {
  design: string; baseline: boolean; format: string; clients: number; snapshot_mb: number;
  tick_p50_ms: number; tick_p90_ms: number; probe_p50_ms: number; probe_p99_ms: number; probe_max_ms: number;
  probe_calls: number; rss_peak_mb: number;
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Every simulated device has an old data session with a large allotment: every delta is billed. */
class BenchSessions implements SessionsPort {
  private readonly sessions = new Map<string, MeteredSession>();
  private readonly remaining = new Map<string, number>();
  constructor(devices: number) {
    for (let i = 0; i < devices * 1.2; i++) {
      const mac = simulatedMac(i);
      this.sessions.set(mac, { id: `s${i}`, mac, metric: 'bytes', startedAt: 0 });
      this.remaining.set(`s${i}`, 1e15);
    }
  }
  active(mac: string): MeteredSession | undefined { return this.sessions.get(mac); }
  activeSessions(): Iterable<MeteredSession> { return this.sessions.values(); }
  applyUsage(deltas: Iterable<readonly [string, number]>): void {
    for (const [mac, bytes] of deltas) {
      const s = this.sessions.get(mac);
      if (s) this.remaining.set(s.id, (this.remaining.get(s.id) ?? 0) - bytes);
    }
  }
  remainingBytes(id: string): number { return this.remaining.get(id) ?? 0; }
}

function lines(child: ChildProcess): () => Promise<string> {
  const rl = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  rl.on('line', (l) => { const w = waiters.shift(); if (w) w(l); else queue.push(l); });
  return () => new Promise((resolve) => { const l = queue.shift(); if (l !== undefined) resolve(l); else waiters.push(resolve); });
}

function tsxChild(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(here, 'meter', script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], cwd: root });
}

/** Peak RSS since the last reset (Linux: writing 5 to clear_refs resets VmHWM). */
function resetPeakRss(): void { try { writeFileSync('/proc/self/clear_refs', '5'); } catch { /* not Linux */ } }
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch { /* fall through */ }
  return process.memoryUsage.rss() / 1024 / 1024;
}

const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0; };
const r1 = (x: number): number => Math.round(x * 10) / 10;

export default async function (argv: string[]): Promise<void> {
  const sizes = (arg(argv, '--clients') ?? '1000,10000').split(',').map(Number);
  const formatArg = arg(argv, '--format') ?? 'opennds';
  const formats = formatArg === 'both' ? ['opennds', 'nodogsplash'] : [formatArg];
  const asJson = argv.includes('--json');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-meter-'));
  const probe = tsxChild('probe.ts', [join(dir, 'ubus.sock'), '5']);
  const probeLine = lines(probe);
  await probeLine();
  const ubus = await UbusClient.connect({ socketPath: join(dir, 'ubus.sock') });
  let currentStats: () => Record<string, number> = () => ({});
  await ubus.addObject({ path: 'sluice', methods: { stats: { handler: () => ({ data: currentStats() }) } } });
  if (!asJson) console.log('design        format       clients  snap MB  tick p50  tick p90  probe p50  probe p99  probe max  RSS peak MB');
  try {
    for (const clients of sizes) {
      const ticks = Number(arg(argv, '--ticks') ?? (clients >= 100_000 ? 8 : clients >= 10_000 ? 20 : 40));
      for (const format of formats) {
        for (const design of ['worker', 'main-json'] as const) {
          const row = await measure(design, format, clients, ticks, dir, probe, probeLine, (f) => { currentStats = f; });
          if (asJson) console.log(JSON.stringify(row));
          else console.log(`${row.design.padEnd(13)} ${row.format.padEnd(12)} ${String(row.clients).padStart(7)}  ${row.snapshot_mb.toFixed(1).padStart(7)}  ${row.tick_p50_ms.toFixed(1).padStart(8)}  ${row.tick_p90_ms.toFixed(1).padStart(8)}  ${row.probe_p50_ms.toFixed(2).padStart(9)}  ${row.probe_p99_ms.toFixed(2).padStart(9)}  ${row.probe_max_ms.toFixed(1).padStart(9)}  ${row.rss_peak_mb.toFixed(0).padStart(11)}`);
        }
      }
    }
    const idle = await idleRssMb(dir);
    if (asJson) console.log(JSON.stringify({ design: 'idle-daemon-pool', rss_mb: idle }));
    else console.log(`idle: a Meter with its worker pool (bundled, plain node) after one tick: RSS ${idle.toFixed(0)} MB`);
  } finally {
    await ubus.close();
    probe.stdin!.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function idleRssMb(dir: string): Promise<number> {
  const { build } = await import('esbuild');
  const out = join(dir, 'idle.mjs');
  // Piscina starts its threads on `resolve(__dirname, 'worker.js')`: an ESM bundle needs a __dirname and that file next
  // to it (scripts/build.mjs must do the same for dist/sluice.mjs).
  await build({
    entryPoints: [join(here, 'meter', 'idle.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    logLevel: 'warning', external: ['msgpackr-extract'],
    banner: { js: "import { createRequire as __r } from 'node:module'; import { fileURLToPath as __f } from 'node:url'; import { dirname as __d } from 'node:path'; const require = __r(import.meta.url); const __dirname = __d(__f(import.meta.url));" },
  });
  await build({
    entryPoints: [join(root, 'node_modules', 'piscina', 'dist', 'worker.js')], outfile: join(dir, 'worker.js'), bundle: true,
    platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning', external: ['@napi-rs/nice'],
  });
  const child = spawn(process.execPath, [out, WORKER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<string>((resolve) => child.once('exit', () => resolve('NaN')));
  return Number(await Promise.race([lines(child)(), exited]));
}

async function measure(design: 'worker' | 'main-json', format: string, clients: number, ticks: number, dir: string,
  probe: ChildProcess, probeLine: () => Promise<string>, setStats: (f: () => Record<string, number>) => void): Promise<Row> {
  const warmup = 3;
  const socketPath = join(dir, `ndsctl-${design}.sock`);
  const server = tsxChild('portal-server.ts', [socketPath, String(clients), format, String(ticks + warmup + 1), '1']);
  const serverLine = lines(server);
  const ready = (await serverLine()).split(' ');
  const snapshotBytes = Number(ready[1]);
  const sessions = new BenchSessions(clients);
  let tickOnce: () => Promise<unknown>;
  let close: () => Promise<void>;
  if (design === 'worker') {
    const meter = new Meter({ source: { kind: 'socket', path: socketPath }, pollIntervalMs: 10_000, sessions, workerPath: WORKER, fetchTimeoutMs: 30_000, initialCapacity: clients * 1.3 });
    setStats(() => meter.stats() as unknown as Record<string, number>);
    tickOnce = async () => { const r = await meter.tick(); if (!r.ok) throw new Error(`tick skipped: ${r.skipped} ${r.message}`); };
    close = () => meter.close();
  } else {
    const base = new MainThreadJsonMeter(socketPath, sessions);
    let n = 0;
    setStats(() => ({ ticks: n }));
    tickOnce = async () => { await base.tick(); n++; };
    close = async () => {};
  }
  for (let i = 0; i < warmup; i++) await tickOnce();
  (globalThis as { gc?: () => void }).gc?.();
  resetPeakRss();
  probe.stdin!.write('start\n');
  const durations: number[] = [];
  for (let i = 0; i < ticks; i++) {
    const t0 = performance.now();
    await tickOnce();
    durations.push(performance.now() - t0);
  }
  probe.stdin!.write('stop\n');
  const p = JSON.parse(await probeLine()) as { n: number; p50: number; p99: number; max: number };
  const rss = peakRssMb();
  await close();
  server.stdin!.end();
  await new Promise((r) => server.once('exit', r));
  return {
    design: design === 'worker' ? 'worker-socket' : 'main-json', baseline: design === 'main-json', format, clients,
    snapshot_mb: r1(snapshotBytes / 1e6), tick_p50_ms: r1(q(durations, 0.5)), tick_p90_ms: r1(q(durations, 0.9)),
    probe_p50_ms: Math.round(p.p50 * 100) / 100, probe_p99_ms: Math.round(p.p99 * 100) / 100, probe_max_ms: r1(p.max),
    probe_calls: p.n, rss_peak_mb: Math.round(rss),
  };
}
