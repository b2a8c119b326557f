// `npm run bench -- leak [--runs 1] [--purchases 1000] [--sessions 200] [--ticks 1800] [--poll 0.2] [--round 0]
//   [--idle 60] [--clients 20] [--node-args "--flag …"] [--env "NAME=value …"] [--snapshots DIR]
//   [--bundle dist/sluice.mjs] [--arenas FILE]`
// The leak check: does the real daemon give its memory back after 1,000 purchases and an hour of 200
// sessions? One run: the real bundle (dist/sluice.mjs) on the embedded ubus broker and a simulated openNDS over its
// control socket, with bench/rss.ts's config (the package's + x402 + the LAN endpoint), except that the hour is
// compressed:
// - `poll_interval` 0.2 s (the loader's minimum) instead of 2 s, so the hour's 1,800 ticks of 200+ clients (each read,
//   accounted, billed, reported as a usage batch) run in 6 minutes; the bench waits for the meter's own tick count.
// - `checkpoint_interval` 5 s (the minimum) instead of 300, so the compressed hour writes 72 checkpoints, more than
//   the real hour's 12.
// - the 200 sessions (half data, half time, on clients of their own) live through the whole hour with traffic to each
//   client every poll; `--round S` makes them churn instead: every S seconds all are terminated through ubus and
//   granted again (a purchase each: the gate closed and opened, journal records), 200 × (hour / S) lifetimes.
// What the compression does not exercise: timers that fire by the clock alone (a session's own expiry minutes away,
// the daily journal compaction), and V8's GC over an hour of wall time (it runs by allocation, which scales with the
// ticks, not with the clock). The purchases are 1,000 admin grants of 2 s time sessions for 1,000 new portal clients,
// which end by themselves.
// RSS is "settled": the median of VmRSS read once a second over the second half of each idle time (60 s: past the
// pool's 30 s idle timeout, so its worker thread has ended; bench/rss.ts: one
// reading moves by ±1 MB with GC). At the end of each idle time the daemon (started with --expose-gc and
// bench/leak/heap-probe.mjs) also runs a full GC on SIGUSR2 and reports its live heap: memory that is still
// referenced, the part of a growth that is a leak rather than heap V8 has not given back. It prints RSS idle, after the
// purchases, after the hour, and whether the last came back within 10% of the one after the purchases (the 1,000 ended
// sessions stay in memory and in the journal until compaction, and the portal lists 1,000 more clients, so the idle
// figure is not the reference), with the load average.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UbusClient } from '../src/ubus/index.ts';
import { UbusBroker } from '../src/ubus/broker/index.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler } from '../src/sim/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { idleConfig } from './rss.ts';
import { envPrefix, parseEnv, shippedEnv, shippedNodeArgs } from './lib/shipped-node-args.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Options {
  runs: number;
  purchases: number;
  sessions: number;
  ticks: number;
  pollS: number;
  roundS: number;
  idleS: number;
  clients: number;
  nodeArgs: string[];
  /** What the daemon's environment adds: the launcher's exports (files/usr/bin/sluice) unless `--env` says. */
  env: Record<string, string>;
  snapshots: string;
  bundle: string;
  /** `--arenas FILE`: gdb walks the daemon's malloc arenas at each settled figure (bench/leak/arenas.py) into FILE. */
  arenas: string;
}

function parse(argv: string[]): Options {
  // idleS 60: past the pool's 30 s idle timeout, so the settled RSS (the second half) is read once the worker thread
  // that the load started has ended; with 30 s it was read as the thread ended, in some runs before and in some after.
  const o: Options = {
    runs: 1,
    purchases: 1000,
    sessions: 200,
    ticks: 1800,
    pollS: 0.2,
    roundS: 0,
    idleS: 60,
    clients: 20,
    nodeArgs: shippedNodeArgs(),
    env: shippedEnv(),
    snapshots: '',
    bundle: join(ROOT, 'dist', 'sluice.mjs'),
    arenas: '',
  };
  const num: Record<string, keyof Options> = {
    '--runs': 'runs',
    '--purchases': 'purchases',
    '--sessions': 'sessions',
    '--ticks': 'ticks',
    '--poll': 'pollS',
    '--round': 'roundS',
    '--idle': 'idleS',
    '--clients': 'clients',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = num[argv[i]!];
    const v = argv[i + 1];
    if (key && v !== undefined) {
      (o as unknown as Record<string, number>)[key] = Number(v);
      i++;
    } else if (argv[i] === '--node-args' && v !== undefined) {
      o.nodeArgs = v.split(' ').filter((a) => a !== '');
      i++;
    } else if (argv[i] === '--env' && v !== undefined) {
      o.env = parseEnv(v);
      i++;
    }
    // A heap snapshot at each live-heap probe (idle, after the purchases, after the hour) into DIR, to compare
    // retainers.
    else if (argv[i] === '--snapshots' && v) {
      o.snapshots = v;
      i++;
    }
    // Another build (a copy of dist/, so that a build during a run does not change the files the daemon loads late).
    else if (argv[i] === '--bundle' && v) {
      o.bundle = v;
      i++;
    }
    // What holds each glibc arena's free memory resident, as each settled figure is read (gdb and libc6-dbg).
    else if (argv[i] === '--arenas' && v) {
      o.arenas = v;
      i++;
    }
  }
  return o;
}

function compressed(config: string, pollS: number): string {
  const set = (text: string, option: string, value: string): string => {
    const re = new RegExp(`(config \\w+ 'main'[\\s\\S]*?\\toption ${option} )'[^']*'`);
    if (re.test(text)) return text.replace(re, `$1'${value}'`);
    return text.replace(/(config \w+ 'main'\n)/, `$1\toption ${option} '${value}'\n`);
  };
  return set(set(config, 'poll_interval', String(pollS)), 'checkpoint_interval', '5');
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/**
 * The daemon's threads: the pool's worker thread ends 30 s after its last task (meter/pool.ts POOL_IDLE_TIMEOUT_MS).
 */
function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number): string => (kb / 1024).toFixed(1);
const load = (): string => loadavg()[0]!.toFixed(1);

/** Median VmRSS over the second half of `seconds` of idling. */
async function settled(pid: number, seconds: number): Promise<number> {
  const samples: number[] = [];
  for (let t = 0; t < seconds; t++) {
    await sleep(1000);
    if (t >= seconds / 2) samples.push(rssKb(pid));
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor((samples.length - 1) / 2)]!;
}

/**
 * `--arenas`: gdb attached for a moment (the daemon stopped meanwhile, after its settled figure and before its probe)
 * runs bench/leak/arenas.py, which appends what holds each malloc arena to `file` under `label`.
 */
function walkArenas(pid: number, file: string, label: string): void {
  const gdb = spawnSync('gdb', ['-q', '-p', String(pid), '-batch', '-x', join(ROOT, 'bench/leak/arenas.py')], {
    env: { ...process.env, SLUICE_ARENAS_OUT: file, SLUICE_ARENAS_LABEL: label },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (gdb.status !== 0 || /Traceback|Error/.test(gdb.stderr ?? ''))
    console.error(`    --arenas: gdb ${gdb.status ?? gdb.signal}: ${(gdb.stderr ?? gdb.error?.message ?? '').trim()}`);
}

/** What one probe reports (bench/leak/heap-probe.mjs). */
interface Probe {
  heapUsed: number;
  rss: number;
  /** Where the resident memory was before the probe's GC: V8's spaces, malloc's brk heap and arenas, all anonymous. */
  before?: { spacesKb: Record<string, number>; brkKb: number; arenaKb?: number; anonKb: number };
}

/** Live heap after a full GC in the daemon: bench/leak/heap-probe.mjs answers SIGUSR2 into `file`. */
async function probe(pid: number, file: string): Promise<Probe | undefined> {
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  // A heap snapshot (--snapshots) takes seconds.
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Probe;
    } catch {
      /* not yet */
    }
  }
  return undefined;
}

/**
 * The resident memory split as the probe saw it (MB): V8's young generation, the rest of V8's heap, malloc's brk
 * heap, the other threads' malloc arenas, the other anonymous memory (threads' stacks, V8's code range…), the mapped
 * files.
 */
function split(p: Probe | undefined, fileKb: number): string {
  if (!p?.before) return '?';
  const s = p.before.spacesKb;
  const young = (s['new_space'] ?? 0) + (s['new_large_object_space'] ?? 0);
  const v8 = Object.values(s).reduce((a, b) => a + b, 0);
  const arenas = p.before.arenaKb ?? 0;
  const other = p.before.anonKb - v8 - p.before.brkKb - arenas;
  const brk = p.before.brkKb;
  return (
    `young ${mb(young)} + old ${mb(v8 - young)} + brk ${mb(brk)} + arenas ${mb(arenas)} + other anon ${mb(other)} + ` +
    `file ${mb(fileKb)}`
  );
}

function fileKb(pid: number): number {
  return Number(/^RssFile:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

interface Figures {
  /** The daemon's threads at the end of each settled time: idle, after the purchases, after the hour. */
  threads: number[];
  idleKb: number;
  purchasesKb: number;
  hourKb: number;
  peakKb: number;
  heapMb: number[];
  /** Where the RSS was at each probe (split()). */
  splits: string[];
  rssAfterGc: string[];
  ticks: number;
  lifetimes: number;
  hourS: number;
  loads: string[];
  /**
   * Ended sessions the daemon retains after the purchases and after the hour (sessions/store.ts: DEFAULT_RETENTION).
   */
  retained: number[];
}

async function meterTicks(ubus: UbusClient): Promise<number> {
  const s = (await ubus.call('sluice', 'stats', {})) as { meter?: { ticks?: number } };
  return s.meter?.ticks ?? NaN;
}

/** Ended sessions still held (the retention keeps the last 1,000, pruned once 100 past that: sessions/manager.ts). */
async function retainedEnded(ubus: UbusClient): Promise<number> {
  const s = (await ubus.call('sluice', 'stats', {})) as { sessions?: { retainedEnded?: number } };
  return s.sessions?.retainedEnded ?? NaN;
}

async function oneRun(o: Options): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-leak-'));
  mkdirSync(join(dir, 'portal'));
  const model = new PortalModel({ flavour: 'opennds' });
  for (let i = 0; i < o.clients; i++) model.addClient(simulatedMac(i), `10.0.${i >> 8}.${i & 255}`);
  const portal = await listenNdsctlSocket(join(dir, 'portal', 'ndsctl.sock'), portalRequestHandler(model));
  const ubusSocket = join(dir, 'ubus.sock');
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  const configPath = join(dir, 'sluice.uci');
  writeFileSync(configPath, compressed(idleConfig(dir, portal.path, false, await freePort()), o.pollS));
  const probeFile = join(dir, 'heap.json');
  const child = spawn(
    process.execPath,
    [
      ...o.nodeArgs,
      '--expose-gc',
      '--import',
      join(ROOT, 'bench/leak/heap-probe.mjs'),
      o.bundle,
      'daemon',
      '--config',
      configPath,
      '--ubus-socket',
      ubusSocket,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...o.env,
        SLUICE_LEAK_PROBE: probeFile,
        SLUICE_LEAK_SNAPSHOTS: o.snapshots,
      },
    },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-20_000)));
  let ubus: UbusClient | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (output.includes('sluice running')) {
          clearInterval(check);
          resolve();
        }
        if (child.exitCode !== null) {
          clearInterval(check);
          reject(new Error(`daemon exited ${child.exitCode}\n${output}`));
        }
      }, 50);
    });
    const pid = child.pid!;
    const loads = [load()];
    const idleKb = await settled(pid, o.idleS);
    const threadCounts = [threads(pid)];
    if (o.arenas) walkArenas(pid, o.arenas, `pid ${pid} idle`);
    const probes = [await probe(pid, probeFile)];
    const splits = [split(probes[0], fileKb(pid))];
    ubus = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 30_000 });
    const macs: string[] = [];
    // Each phase's clients join the portal when the phase starts. openNDS forgets a client it deauths, so after each
    // phase the portal lists the 20 idle clients again, and the two figures compared are read in the same state.
    // (Until 2026-11-25 the hour's 200 clients were listed from the start: after the purchases the portal listed 220,
    // past the listing size that stays on the main thread, so the pool's worker thread still ran while that figure
    // was read and had ended when the hour's was: ~10–17 MB between the two that were not the hour's.)
    const enter = (from: number, to: number): void => {
      for (let i = o.clients + from; i < o.clients + to; i++) {
        const mac = simulatedMac(i);
        model.addClient(mac, `10.1.${(i >> 8) & 255}.${i & 255}`);
        macs.push(mac);
      }
    };
    enter(0, o.purchases);
    // 1,000 purchases: short time sessions that end by themselves.
    for (let i = 0; i < o.purchases; i++) await ubus.call('sluice', 'grant', { mac: macs[i]!, seconds: 2 });
    const purchasesKb = await settled(pid, Math.max(o.idleS, 10));
    threadCounts.push(threads(pid));
    if (o.arenas) walkArenas(pid, o.arenas, `pid ${pid} after the purchases`);
    probes.push(await probe(pid, probeFile));
    splits.push(split(probes[1], fileKb(pid)));
    const retained = [await retainedEnded(ubus)];
    loads.push(load());
    // The compressed hour: 200 sessions on their own clients, traffic every poll, re-bought every round.
    enter(o.purchases, o.purchases + o.sessions);
    const soak = macs.slice(o.purchases);
    const grantAll = async (): Promise<void> => {
      for (const [i, mac] of soak.entries()) {
        await ubus!.call('sluice', 'grant', i % 2 === 0 ? { mac, bytes: 1 << 30 } : { mac, seconds: 3600 });
      }
    };
    const started = Date.now();
    const ticks0 = await meterTicks(ubus);
    let lifetimes = 0;
    let roundStarted = Date.now();
    await grantAll();
    lifetimes += soak.length;
    let t = 0;
    while ((await meterTicks(ubus)) - ticks0 < o.ticks) {
      for (const mac of soak) model.addTraffic(mac, 4_000 + (t % 7) * 200, 400);
      t++;
      await sleep(o.pollS * 1000);
      if (o.roundS > 0 && Date.now() - roundStarted >= o.roundS * 1000) {
        for (const mac of soak) await ubus.call('sluice', 'terminate', { mac }).catch(() => undefined);
        roundStarted = Date.now();
        await grantAll();
        lifetimes += soak.length;
      }
    }
    const ticks = (await meterTicks(ubus)) - ticks0;
    const hourS = (Date.now() - started) / 1000;
    for (const mac of soak) await ubus.call('sluice', 'terminate', { mac }).catch(() => undefined);
    loads.push(load());
    const hourKb = await settled(pid, Math.max(o.idleS, 10));
    threadCounts.push(threads(pid));
    if (o.arenas) walkArenas(pid, o.arenas, `pid ${pid} after the hour`);
    probes.push(await probe(pid, probeFile));
    splits.push(split(probes[2], fileKb(pid)));
    retained.push(await retainedEnded(ubus));
    const peakKb = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    loads.push(load());
    return {
      idleKb,
      purchasesKb,
      hourKb,
      peakKb,
      heapMb: probes.map((p) => (p ? p.heapUsed / 1048576 : NaN)),
      rssAfterGc: probes.map((p) => (p ? (p.rss / 1048576).toFixed(1) : '?')),
      splits,
      ticks,
      lifetimes,
      hourS,
      loads,
      retained,
      threads: threadCounts,
    };
  } finally {
    await ubus?.close();
    child.kill('SIGKILL');
    await broker.close();
    await portal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function leak(argv: string[]): Promise<void> {
  const o = parse(argv);
  console.log(
    `leak: ${envPrefix(o.env)}node ${o.nodeArgs.join(' ')} ${o.bundle}, ` +
      `bench/rss.ts's config at poll ${o.pollS} s and ` +
      `checkpoint 5 s; ${o.purchases} purchases, then ${o.sessions} ` +
      `sessions ${o.roundS > 0 ? `re-bought every ${o.roundS} s` : 'live'} for ${o.ticks} ticks ` +
      `(${((o.ticks * 2) / 3600).toFixed(1)} h at poll 2 s), ${o.runs} run(s)`,
  );
  for (let i = 0; i < o.runs; i++) {
    const r = await oneRun(o);
    const vsPurchases = (r.hourKb / r.purchasesKb - 1) * 100;
    console.log(
      `  run ${i + 1}: settled RSS idle ${mb(r.idleKb)} MB, after ${o.purchases} ` +
        `purchases ${mb(r.purchasesKb)} MB, after the hour ${mb(r.hourKb)} MB (${r.ticks} ticks ` +
        `in ${r.hourS.toFixed(0)} s, ${r.lifetimes} session lifetimes), peak ${mb(r.peakKb)} MB; load ` +
        `avg ${r.loads.join(' → ')}`,
    );
    console.log(
      `    live heap after a full GC: idle ${r.heapMb[0]!.toFixed(1)} MB, after the ` +
        `purchases ${r.heapMb[1]!.toFixed(1)} MB, after the hour ${r.heapMb[2]!.toFixed(1)} MB; ended sessions ` +
        `retained ${r.retained.join(' → ')}; threads ${r.threads.join(' / ')}`,
    );
    console.log(`    RSS after each probe's GC: ${r.rssAfterGc.join(' / ')} MB`);
    console.log(`    RSS before each probe's GC: idle ${r.splits[0]}`);
    console.log(`      after the purchases ${r.splits[1]}`);
    console.log(`      after the hour ${r.splits[2]}`);
    console.log(
      `    after the hour vs after the purchases: ${vsPurchases >= 0 ? '+' : ''}${vsPurchases.toFixed(1)}% ` +
        `(${vsPurchases <= 10 ? 'within' : 'PAST'} 10%); vs idle: ` +
        `+${((r.hourKb / r.idleKb - 1) * 100).toFixed(1)}%`,
    );
  }
}
