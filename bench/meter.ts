// `npm run bench -- meter [--clients 1000,10000,100000] [--format opennds|nodogsplash|both] [--ticks N] [--json]
//   [--designs worker,main-json] [--no-idle] [--purchases 500] [--purchase-clients 10000] [--purchase-seconds 10]
//   [--no-purchases] [--only-purchases] [--live N] [--realistic]`
// --designs kernel,kernel-json: the kernel path (the product's default): the Meter reading every client's counters from
// one `nft -j list table netdev sluice_count` dump a tick (a stand-in nft printing the simulator's counters:
// bench/meter/nft-dump.ts), against a main-thread baseline that runs the same command and JSON.parses it.
// --realistic: the simulated portal burns what a real openNDS 9.10 would per call (≈ 11 ms + 22 ms per client for
// `json`: test/peers/ndsctl-cost.ts) before it answers; the tick rows then show what polling the portal really costs.
// --live N: the purchases row with only N live sessions before the window, half data, half time (the scale row).
// Ticks back to back against a simulated portal in another process (fetch over its ndsctl.sock), for the Meter
// (worker pool fetches + scans + accounts in shared memory) and the main-thread JSON.parse baseline, while a ubus
// caller in a third process measures how fast the main thread answers `sluice stats`. See docs/performance.md.
// The purchases row: the Meter on its own schedule (poll_interval 1 s) while purchases arrive and open gates through
// the Valve on the same portal socket (bench/meter/purchases.ts against a live simulated portal).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines } from './lib/child-lines.ts';
import { nftStandIn } from './meter/nft-dump.ts';
import { shippedEnv } from './lib/shipped-node-args.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');
const WORKER = join(root, 'dist', 'usage-worker.mjs');

type Design = 'worker' | 'main-json' | 'kernel' | 'kernel-json';
const DESIGN_NAMES: Record<Design, string> = {
  worker: 'worker-socket',
  'main-json': 'main-json',
  kernel: 'worker-kernel',
  'kernel-json': 'kernel-json',
};

interface Row {
  design: string;
  baseline: boolean;
  format: string;
  clients: number;
  snapshot_mb: number;
  tick_p50_ms: number;
  tick_p90_ms: number;
  probe_p50_ms: number;
  probe_p99_ms: number;
  probe_max_ms: number;
  probe_calls: number;
  rss_peak_mb: number;
  fetch_ms: number | null;
  scan_ms: number | null;
  apply_ms: number | null;
  loop_delay_p99_ms: number;
  loop_delay_max_ms: number;
  gc_count: number;
  gc_total_ms: number;
  gc_max_ms: number;
  /** Portal listings read over the whole run, warm-up included (the kernel path's; null on the others). */
  listings: number | null;
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function tsxChild(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(here, 'meter', script), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: root,
  });
}

/** --realistic: the simulated portal costs what openNDS 9.10 costs per call. */
let realistic = false;
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;

const BANNER =
  "import { createRequire as __r } from 'node:module'; import { fileURLToPath as __f } from 'node:url'; import " +
  "{ dirname as __d } from 'node:path'; const require = __r(import.meta.url); const __dirname = " +
  '__d(__f(import.meta.url));';

/**
 * Bundles a bench entry as the product is bundled (esbuild, ESM, plain node), with Piscina's worker bootstrap next to
 * it: Piscina starts its threads on `resolve(__dirname, 'worker.js')` (scripts/build.mjs does the same for dist/).
 */
async function bundle(entry: string, dir: string): Promise<string> {
  const { build } = await import('esbuild');
  const out = join(dir, `${entry.replace(/\.ts$/, '')}.mjs`);
  await build({
    entryPoints: [join(here, 'meter', entry)],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    external: ['msgpackr-extract'],
    banner: { js: BANNER },
  });
  if (!existsSync(join(dir, 'worker.js'))) {
    await build({
      entryPoints: [join(root, 'node_modules', 'piscina', 'dist', 'worker.js')],
      outfile: join(dir, 'worker.js'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      logLevel: 'warning',
      external: ['@napi-rs/nice'],
    });
  }
  return out;
}

export default async function (argv: string[]): Promise<void> {
  const sizes = (arg(argv, '--clients') ?? '1000,10000').split(',').map(Number);
  const formatArg = arg(argv, '--format') ?? 'opennds';
  const formats = formatArg === 'both' ? ['opennds', 'nodogsplash'] : [formatArg];
  const designs = (arg(argv, '--designs') ?? 'worker,main-json').split(',') as Design[];
  const asJson = argv.includes('--json');
  realistic = argv.includes('--realistic');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-meter-'));
  const runner = await bundle('run.ts', dir);
  const probe = tsxChild('probe.ts', [join(dir, 'ubus.sock'), '5']);
  const probeLine = lines(probe);
  await probeLine();
  if (!asJson && !argv.includes('--only-purchases'))
    console.log(
      'design        format       clients  snap MB  tick p50  tick p90  probe p50  probe p99  probe max  RSS peak MB',
    );
  try {
    for (const clients of argv.includes('--only-purchases') ? [] : sizes) {
      const ticks = Number(arg(argv, '--ticks') ?? (clients >= 100_000 ? 12 : clients >= 10_000 ? 60 : 80));
      for (const format of formats) {
        for (const design of designs) {
          const row = await measure(runner, design, format, clients, ticks, dir, probe, probeLine);
          if (asJson) console.log(JSON.stringify(row));
          else
            console.log(
              `${row.design.padEnd(13)} ${row.format.padEnd(12)} ${String(row.clients).padStart(7)}  ` +
                `${row.snapshot_mb.toFixed(1).padStart(7)}  ${row.tick_p50_ms.toFixed(1).padStart(8)}  ` +
                `${row.tick_p90_ms.toFixed(1).padStart(8)}  ${row.probe_p50_ms.toFixed(2).padStart(9)}  ` +
                `${row.probe_p99_ms.toFixed(2).padStart(9)}  ${row.probe_max_ms.toFixed(1).padStart(9)}  ` +
                `${row.rss_peak_mb.toFixed(0).padStart(11)}`,
            );
        }
      }
    }
    if (!argv.includes('--no-purchases')) {
      const liveArg = arg(argv, '--live');
      const row = await purchasesRow(
        dir,
        Number(arg(argv, '--purchase-clients') ?? 10_000),
        Number(arg(argv, '--purchases') ?? 500),
        Number(arg(argv, '--purchase-seconds') ?? 10),
        liveArg === undefined ? undefined : Number(liveArg),
      );
      if (asJson) console.log(JSON.stringify(row));
      else {
        console.log(
          `purchases row: ${row.purchases} purchases over ${row.window_s} s at ${row.clients} clients, ` +
            `poll_interval ${row.poll_ms} ms (goal: tick p99 ≤ ${1.5 * row.poll_ms} ms)`,
        );
        console.log(
          `  ticks ${row.ticks}: every p50 ${row.gap_p50_ms} ms, p99 ${row.gap_p99_ms} ms, ` +
            `max ${row.gap_max_ms} ms; took p50 ${row.tick_p50_ms} ms (fetch ${row.fetch_p50_ms}), ` +
            `p99 ${row.tick_p99_ms} ms, max ${row.tick_max_ms} ms; waited for the portal queue ` +
            `p50 ${row.queue_wait_p50_ms} ms, max ${row.queue_wait_max_ms} ms`,
        );
        console.log(
          `  gate open after the purchase p50 ${row.gate_p50_ms} ms, p99 ${row.gate_p99_ms} ms (${row.pending} ` +
            `pending); data-limit cuts ${row.cuts}`,
        );
        console.log(
          '  live sessions before the ' +
            `window ${row.live}${row.rss_peak_mb === null ? '' : `; RSS peak ${row.rss_peak_mb} MB`}`,
        );
      }
    }
    if (!argv.includes('--only-purchases') && !argv.includes('--no-idle')) {
      const idle = await idleRssMb(dir);
      if (asJson) console.log(JSON.stringify({ design: 'idle-daemon-pool', rss_mb: idle }));
      else
        console.log(
          `idle: a Meter with its worker pool (bundled, plain node) after one tick: RSS ${idle.toFixed(0)} MB`,
        );
    }
  } finally {
    probe.stdin!.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface PurchasesRow {
  design: string;
  clients: number;
  purchases: number;
  window_s: number;
  poll_ms: number;
  ticks: number;
  gap_p50_ms: number;
  gap_p99_ms: number;
  gap_max_ms: number;
  tick_p50_ms: number;
  tick_p99_ms: number;
  tick_max_ms: number;
  fetch_p50_ms: number;
  queue_wait_p50_ms: number;
  queue_wait_max_ms: number;
  gate_p50_ms: number;
  gate_p99_ms: number;
  pending: number;
  cuts: number;
  live: number;
  rss_peak_mb: number | null;
}

async function purchasesRow(
  dir: string,
  clients: number,
  purchases: number,
  seconds: number,
  live?: number,
): Promise<PurchasesRow> {
  const out = await bundle('purchases.ts', dir);
  const socketPath = join(dir, 'ndsctl-purchases.sock');
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'portal', 'socket-server.ts'), socketPath, String(clients), '1', 'live'],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: root },
  );
  try {
    const macs = (await lines(server)()).split(' ')[2] ?? '';
    const macsFile = join(dir, 'buyers.txt');
    writeFileSync(macsFile, macs);
    const measured = spawn(
      process.execPath,
      [
        out,
        socketPath,
        String(clients),
        macsFile,
        String(purchases),
        String(seconds),
        WORKER,
        ...(live === undefined ? [] : [String(live)]),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
    );
    const exited = new Promise<string>((resolve) => measured.once('exit', (code) => resolve(`exit ${code}`)));
    const line = await Promise.race([lines(measured)(), exited]);
    if (line.startsWith('exit ')) throw new Error(`purchases process ended early (${line})`);
    const m = JSON.parse(line) as {
      gaps: number[];
      durations: number[];
      fetches: number[];
      waits: number[];
      gateMs: number[];
      pending: number;
      cuts: number;
      windowS: number;
      poll_ms: number;
      live: number;
      rss_peak_mb: number | null;
    };
    await exited;
    return {
      design: 'worker-socket+purchases',
      clients,
      purchases,
      window_s: r1(m.windowS),
      poll_ms: m.poll_ms,
      ticks: m.durations.length,
      gap_p50_ms: r1(q(m.gaps, 0.5)),
      gap_p99_ms: r1(q(m.gaps, 0.99)),
      gap_max_ms: r1(Math.max(...m.gaps)),
      tick_p50_ms: r1(q(m.durations, 0.5)),
      tick_p99_ms: r1(q(m.durations, 0.99)),
      tick_max_ms: r1(Math.max(...m.durations)),
      fetch_p50_ms: r1(q(m.fetches, 0.5)),
      queue_wait_p50_ms: r1(q(m.waits, 0.5)),
      queue_wait_max_ms: r1(Math.max(...m.waits)),
      gate_p50_ms: r1(q(m.gateMs, 0.5)),
      gate_p99_ms: r1(q(m.gateMs, 0.99)),
      pending: m.pending,
      cuts: m.cuts,
      live: m.live,
      rss_peak_mb: m.rss_peak_mb,
    };
  } finally {
    server.stdin!.end();
    await new Promise((r) => server.once('exit', r));
  }
}

async function idleRssMb(dir: string): Promise<number> {
  const out = await bundle('idle.ts', dir);
  const child = spawn(process.execPath, [out, WORKER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<string>((resolve) => child.once('exit', () => resolve('NaN')));
  return Number(await Promise.race([lines(child)(), exited]));
}

async function measure(
  runner: string,
  design: Design,
  format: string,
  clients: number,
  ticks: number,
  dir: string,
  probe: ChildProcess,
  probeLine: () => Promise<string>,
): Promise<Row> {
  const warmup = 3;
  const socketPath = join(dir, `ndsctl-${design}.sock`);
  const frames = ticks + warmup + 1;
  const kernel = design === 'kernel' || design === 'kernel-json';
  const nftDir = join(dir, `nft-${design}`);
  if (kernel) mkdirSync(nftDir, { recursive: true });
  const server = tsxChild('portal-server.ts', [
    socketPath,
    String(clients),
    format,
    String(frames),
    '1',
    ...(realistic ? ['realistic'] : []),
    ...(kernel ? [`nft:${nftDir}`] : []),
  ]);
  const serverLine = lines(server);
  const ready = (await serverLine()).split(' ');
  // The kernel rows read nft's dump each tick (the portal's listing only when something changed): its size is theirs.
  const snapshotBytes = kernel ? statSync(join(nftDir, 'nft-0.json')).size : Number(ready[1]);
  // SLUICE_BENCH_NODE_ARGS (e.g. "--trace-gc" or "--cpu-prof") goes to the measured process, for diagnosis.
  const nodeArgs = (process.env['SLUICE_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const measured = spawn(
    process.execPath,
    [
      ...nodeArgs,
      runner,
      design,
      socketPath,
      join(dir, 'ubus.sock'),
      String(clients),
      String(ticks),
      WORKER,
      ...(kernel ? [JSON.stringify(nftStandIn(nftDir, frames))] : []),
    ],
    // The environment the package's command gives the daemon (files/usr/bin/sluice: glibc's malloc settings).
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      cwd: process.env['SLUICE_BENCH_CWD'] ?? root,
      env: { ...process.env, ...shippedEnv() },
    },
  );
  const exited = new Promise<string>((resolve) => measured.once('exit', (code) => resolve(`exit ${code}`)));
  const measuredLine = lines(measured);
  const next = async (): Promise<string> => {
    for (;;) {
      const l = await Promise.race([measuredLine(), exited]);
      if (l.startsWith('exit ')) throw new Error(`measured process ended early (${l})`);
      if (l === 'ready' || l.startsWith('{')) return l;
      process.stderr.write(`${l}\n`); // diagnostics the node flags print on stdout (--trace-gc)
    }
  };
  try {
    await next();
    probe.stdin!.write('start\n');
    measured.stdin!.write('go\n');
    const m = JSON.parse(await next()) as {
      durations: number[];
      rss_peak_mb: number;
      fetch_ms: number | null;
      scan_ms: number | null;
      apply_ms: number | null;
      loop_delay_p99_ms: number;
      loop_delay_max_ms: number;
      gc_count: number;
      gc_total_ms: number;
      gc_max_ms: number;
      listings: number | null;
    };
    probe.stdin!.write('stop\n');
    const p = JSON.parse(await probeLine()) as { n: number; p50: number; p99: number; max: number };
    await exited;
    const n = (x: number | null): number | null => (x === null ? null : r1(x));
    return {
      design: DESIGN_NAMES[design],
      baseline: design === 'main-json' || design === 'kernel-json',
      format,
      clients,
      snapshot_mb: r1(snapshotBytes / 1e6),
      tick_p50_ms: r1(q(m.durations, 0.5)),
      tick_p90_ms: r1(q(m.durations, 0.9)),
      probe_p50_ms: Math.round(p.p50 * 100) / 100,
      probe_p99_ms: Math.round(p.p99 * 100) / 100,
      probe_max_ms: r1(p.max),
      probe_calls: p.n,
      rss_peak_mb: Math.round(m.rss_peak_mb),
      fetch_ms: n(m.fetch_ms),
      scan_ms: n(m.scan_ms),
      apply_ms: n(m.apply_ms),
      loop_delay_p99_ms: r1(m.loop_delay_p99_ms),
      loop_delay_max_ms: r1(m.loop_delay_max_ms),
      gc_count: m.gc_count,
      gc_total_ms: r1(m.gc_total_ms),
      gc_max_ms: r1(m.gc_max_ms),
      listings: m.listings,
    };
  } finally {
    measured.kill();
    server.stdin!.end();
    await new Promise((r) => server.once('exit', r));
  }
}
