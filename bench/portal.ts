// `npm run bench -- portal [--clients 1000,10000] [--socket-ops N] [--command-ops N] [--json]`
// What one portal operation costs each way, through the production NdsctlRunner (src/portal/runner.ts): over the
// portal's control socket (a simulated openNDS in another process, src/sim/socket.ts: the socket protocol byte for
// byte over a live PortalModel) and through the ndsctl command (the test stand-in test/peers/ndsctl: a node process
// over a state file). Per portal size: `json` (all clients), `json <mac>`, `auth <mac> …` (the valve's openNDS
// arguments with a safety net), `deauth <mac>`; operations run back to back, one at a time (the portal serves one
// request at a time). Also the floor of the command way: spawning /bin/true and Debian's openNDS 9.10 /usr/bin/ndsctl
// (no portal running: its start and tmpfs lookup, before it would connect). Prints figures; asserts nothing.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines } from './lib/child-lines.ts';
import { NdsctlRunner, openNdsAuthArgs } from '../src/portal/index.ts';
import { TrafficSimulator } from '../src/sim/traffic.ts';
import { PortalStateFile } from '../test/peers/ndsctl-state.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');
const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

interface Row {
  channel: string;
  clients: number | null;
  op: string;
  n: number;
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Runs `op` for each item back to back; a rejected call counts as done (the floor rows expect it). */
async function measure(
  channel: string,
  clients: number | null,
  op: string,
  items: readonly string[],
  call: (item: string) => Promise<unknown>,
): Promise<Row> {
  const ms: number[] = [];
  for (const item of items) {
    const t0 = performance.now();
    await call(item).catch(() => undefined);
    ms.push(performance.now() - t0);
  }
  const total = ms.reduce((a, b) => a + b, 0);
  return {
    channel,
    clients,
    op,
    n: ms.length,
    ops_per_s: r2((ms.length * 1000) / total),
    p50_ms: r2(q(ms, 0.5)),
    p99_ms: r2(q(ms, 0.99)),
    max_ms: r2(Math.max(...ms)),
  };
}

/** The four operations against one portal; `preauth` are MACs the portal lists as Preauthenticated. */
async function operations(
  channel: string,
  clients: number,
  runner: NdsctlRunner,
  preauth: readonly string[],
  n: number,
  jsonAllN: number,
): Promise<Row[]> {
  const strict = async (args: string[]): Promise<void> => {
    await runner.run(args);
  };
  for (let i = 0; i < 2; i++) await strict(['json']); // warm-up (connection path, JIT)
  const rows: Row[] = [];
  const times = (k: number): string[] => Array.from({ length: k }, () => '');
  rows.push(await measure(channel, clients, 'json (all)', times(jsonAllN), () => strict(['json'])));
  const macs = preauth.slice(0, n);
  if (macs.length < n) throw new Error(`only ${macs.length} preauthenticated clients for ${n} operations`);
  rows.push(await measure(channel, clients, 'json <mac>', macs, (mac) => strict(['json', mac])));
  // A failed auth or deauth would make the figures meaningless: count them and refuse the run.
  let failed = 0;
  const counted = (args: string[]): Promise<void> =>
    strict(args).catch((err: unknown) => {
      failed++;
      throw err;
    });
  rows.push(
    await measure(channel, clients, 'auth <mac> …', macs, (mac) =>
      counted(openNdsAuthArgs(mac, { sessionMinutes: 60, downloadQuotaKiB: 3072 })),
    ),
  );
  rows.push(await measure(channel, clients, 'deauth <mac>', macs, (mac) => counted(['deauth', mac])));
  if (failed > 0) throw new Error(`${failed} auth/deauth calls failed on ${channel} at ${clients} clients`);
  return rows;
}

async function viaSocket(
  dir: string,
  clients: number,
  n: number,
  jsonAllN: number,
): Promise<{ rows: Row[]; jsonBytes: number }> {
  const path = join(dir, `ndsctl-${clients}.sock`);
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'portal', 'socket-server.ts'), path, String(clients), '1'],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: root },
  );
  try {
    const [, bytes, macs] = (await lines(server)()).split(' ');
    const runner = new NdsctlRunner({ command: ['/usr/bin/ndsctl'], socketPath: () => path, timeoutMs: 30_000 });
    const rows = await operations('socket', clients, runner, (macs ?? '').split(','), n, jsonAllN);
    await runner.shutdown();
    return { rows, jsonBytes: Number(bytes) };
  } finally {
    server.stdin!.end();
    await new Promise((r) => server.once('exit', r));
  }
}

async function viaCommand(dir: string, clients: number, n: number, jsonAllN: number): Promise<Row[]> {
  const state = PortalStateFile.create({ dir: mkdtempSync(join(dir, 'cmd-')), config: { flavour: 'opennds' } });
  const preauth = state.update((model) => {
    const sim = new TrafficSimulator(model, { clients, seed: 1, authenticatedShare: 0.6 });
    sim.populate();
    sim.step(10_000);
    return model
      .clients()
      .filter((c) => c.state === 'Preauthenticated')
      .map((c) => c.mac);
  });
  const runner = new NdsctlRunner({ command: state.command, timeoutMs: 30_000 });
  try {
    return await operations('command (stand-in)', clients, runner, preauth, n, jsonAllN);
  } finally {
    await runner.shutdown();
  }
}

async function floors(n: number): Promise<Row[]> {
  const rows: Row[] = [];
  const trueRunner = new NdsctlRunner({ command: ['/bin/true'], timeoutMs: 30_000 });
  rows.push(
    await measure(
      'spawn /bin/true',
      null,
      'any',
      Array.from({ length: n }, () => ''),
      () => trueRunner.run(['json']),
    ),
  );
  await trueRunner.shutdown();
  if (existsSync('/usr/bin/ndsctl')) {
    // Read-only `json`; with no portal running it exits 3 after its start-up (the rejection is expected).
    const real = new NdsctlRunner({ command: ['/usr/bin/ndsctl'], timeoutMs: 30_000 });
    rows.push(
      await measure(
        '/usr/bin/ndsctl, no portal',
        null,
        'json (start-up only)',
        Array.from({ length: Math.min(n, 20) }, () => ''),
        () => real.run(['json']),
      ),
    );
    await real.shutdown();
  }
  return rows;
}

export default async function main(argv: string[]): Promise<void> {
  const sizes = arg(argv, '--clients', '1000,10000').split(',').map(Number);
  const socketOps = Number(arg(argv, '--socket-ops', '300'));
  const commandOps = Number(arg(argv, '--command-ops', '15'));
  const asJson = argv.includes('--json');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-portal-'));
  const print = (row: Row): void => {
    if (asJson) console.log(JSON.stringify(row));
    else
      console.log(
        `${row.channel.padEnd(28)} ${String(row.clients ?? '').padStart(7)}  ${row.op.padEnd(20)} ` +
          `${String(row.n).padStart(5)} ${row.ops_per_s.toFixed(1).padStart(9)} ${row.p50_ms.toFixed(2).padStart(9)} ` +
          `${row.p99_ms.toFixed(2).padStart(9)} ${row.max_ms.toFixed(2).padStart(9)}`,
      );
  };
  try {
    if (!asJson) {
      console.log(
        `portal operations through NdsctlRunner, back to back; load avg at start ${(await loadavg()).join(' ')}`,
      );
      console.log(
        `${'channel'.padEnd(28)} ${'clients'.padStart(7)}  ${'operation'.padEnd(20)} ${'n'.padStart(5)} ` +
          `${'ops/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'max ms'.padStart(9)}`,
      );
    }
    for (const clients of sizes) {
      const s = await viaSocket(dir, clients, socketOps, clients >= 10_000 ? Math.max(20, socketOps / 6) : socketOps);
      if (!asJson) console.log(`  (json-all at ${clients} clients: ${(s.jsonBytes / 1e6).toFixed(2)} MB)`);
      s.rows.forEach(print);
      (await viaCommand(dir, clients, commandOps, commandOps)).forEach(print);
    }
    (await floors(50)).forEach(print);
    const rss = process.memoryUsage.rss() / 1048576;
    if (asJson) console.log(JSON.stringify({ bench_rss_mb: Math.round(rss), loadavg_end: await loadavg() }));
    else
      console.log(
        `bench process RSS ${rss.toFixed(0)} MB (a spawn's cost grows with the caller's RSS); load avg at ` +
          `end ${(await loadavg()).join(' ')}`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loadavg(): Promise<string[]> {
  const { loadavg: la } = await import('node:os');
  return la().map((x) => x.toFixed(2));
}
