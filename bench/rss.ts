// `npm run bench -- rss [--runs N] [--idle S] [--clients N] [--bundle dist/sluice.mjs] [--node-args "--flag …"]
// [--env "NAME=value …"] [--all-methods]
//   [--tollgate] [--purchases N] [--soak-sessions N] [--soak-seconds S]`
// The idle daemon's resident memory: the real bundle (dist/sluice.mjs) on the embedded ubus broker and a simulated
// openNDS over its control socket, with the package's own config (files/etc/config/sluice) plus x402 enabled and
// the LAN endpoint listening — what an idle router with every built-in method on carries. Each run starts a fresh
// daemon, lets it idle `--idle` seconds (ticks at the package's poll interval, nobody buys), then reads VmRSS (and its
// RssAnon / RssFile parts), VmHWM (peak) and Threads from /proc/<pid>/status, and the median of VmRSS read once a
// second over the second half of the idle time ("settled": one reading moves by ±1 MB with GC). Prints each run and min
// / median / max, with the load average. With --purchases / --soak-sessions (the leak check), each run then goes on: N
// admin grants through ubus (short time sessions for N portal clients, which end by themselves), idle again, RSS; then
// a soak of M live sessions (half data, half time) with traffic on the portal every second for S seconds, ended, idle
// again, RSS; and says whether RSS came back within 10% of the figure after the purchases (the pool's thread has run by
// then: docs/performance.md). --tollgate: the tollgate section on too (TollGate's door on a free port, the cashu
// method, the lab mint of test/peers on loopback as its one mint): what loading dist/cashu.mjs costs an idle router
// that sells over TollGate.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UbusClient } from '../src/ubus/index.ts';
import { UbusBroker } from '../src/ubus/broker/index.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler } from '../src/sim/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { batchSettlementSection } from '../test/helpers/uci-sections.ts';
import { startCashuMint } from '../test/peers/cashu-mint.ts';
import { envPrefix, parseEnv, shippedEnv, shippedNodeArgs } from './lib/shipped-node-args.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Options {
  runs: number;
  idleS: number;
  clients: number;
  bundle: string;
  nodeArgs: string[];
  /** What the daemon's environment adds: the launcher's exports (files/usr/bin/sluice) unless `--env` says. */
  env: Record<string, string>;
  purchases: number;
  soakSessions: number;
  soakS: number;
  allMethods: boolean;
  tollgate: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = {
    runs: 3,
    idleS: 30,
    clients: 20,
    bundle: join(ROOT, 'dist', 'sluice.mjs'),
    nodeArgs: shippedNodeArgs(),
    env: shippedEnv(),
    purchases: 0,
    soakSessions: 0,
    soakS: 60,
    allMethods: false,
    tollgate: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--runs' && v) {
      o.runs = Number(v);
      i++;
    } else if (argv[i] === '--idle' && v) {
      o.idleS = Number(v);
      i++;
    } else if (argv[i] === '--clients' && v) {
      o.clients = Number(v);
      i++;
    } else if (argv[i] === '--bundle' && v) {
      o.bundle = v;
      i++;
    } else if (argv[i] === '--purchases' && v) {
      o.purchases = Number(v);
      i++;
    } else if (argv[i] === '--soak-sessions' && v) {
      o.soakSessions = Number(v);
      i++;
    } else if (argv[i] === '--soak-seconds' && v) {
      o.soakS = Number(v);
      i++;
    }
    // Node flags for the daemon, instead of the package's own (files/usr/bin/sluice: bench/lib/shipped-node-args.ts).
    else if (argv[i] === '--node-args' && v !== undefined) {
      o.nodeArgs = v.split(' ').filter((a) => a !== '');
      i++;
    } else if (argv[i] === '--env' && v !== undefined) {
      o.env = parseEnv(v);
      i++;
    } else if (argv[i] === '--all-methods') o.allMethods = true;
    else if (argv[i] === '--tollgate') o.tollgate = true;
  }
  return o;
}

/** The package's config, its paths pointed into `dir`, x402 on and the LAN endpoint listening. */
export function idleConfig(dir: string, ndsctlSocket: string, allMethods = false, httpPort = 2122): string {
  const shipped = readFileSync(join(ROOT, 'files/etc/config/sluice'), 'utf8');
  const set = (text: string, section: string, option: string, value: string): string => {
    const re = new RegExp(`(config \\w+ '${section}'[\\s\\S]*?\\toption ${option} )'[^']*'`);
    if (!re.test(text)) throw new Error(`no option ${section}.${option} in the package config`);
    return text.replace(re, `$1'${value}'`);
  };
  let c = shipped;
  c = set(c, 'main', 'state_dir', join(dir, 'state'));
  c = set(c, 'main', 'ndsctl_socket', ndsctlSocket);
  c = set(c, 'main', 'portal', 'opennds');
  // No kernel quota off a router (no nft here); it is set per purchase, so an idle router does not use it anyway.
  c = set(c, 'main', 'kernel_quota', '0');
  c = set(c, 'x402', 'enabled', '1');
  c = set(c, 'x402', 'pay_to', '0x' + '11'.repeat(20));
  // A real port: the loader refuses port 0 (until 2026-11-23 20:50 this bench asked for it, so its LAN endpoint was
  // off).
  c = set(c, 'http', 'listen', `127.0.0.1:${httpPort}`);
  // --all-methods: x402 batch-settlement and upto on too (their facilitator unreachable: nobody buys while idle).
  if (allMethods) {
    c += `${batchSettlementSection({ facilitatorUrl: 'http://127.0.0.1:4021' })}
config upto 'upto'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:4021'
\toption network 'eip155:84532'
\toption pay_to '0x${'11'.repeat(20)}'
`;
  }
  return c;
}

/** TollGate's door on 127.0.0.1:`port`, the time plan sold at 21 sat a step, `mintUrl` its one mint. */
export function tollgateSection(mintUrl: string, port: number): string {
  return `
config tollgate 'tollgate'
\toption enabled '1'
\toption listen '127.0.0.1:${port}'
\toption plan 'time'
\tlist mint '${mintUrl}'
\toption unit 'sat'
\toption price_per_step '21'
\toption min_steps '1'
`;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * RssAnon is the process's own memory (heap, stacks, buffers); RssFile the mapped files it touched (node's binary,
 * libs).
 */
function status(pid: number): { rssKb: number; hwmKb: number; threads: number; anonKb: number; fileKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssKb: field('VmRSS'),
    hwmKb: field('VmHWM'),
    threads: field('Threads'),
    anonKb: field('RssAnon'),
    fileKb: field('RssFile'),
  };
}

interface RunFigures {
  rssKb: number;
  hwmKb: number;
  threads: number;
  anonKb: number;
  fileKb: number;
  settledKb: number;
  load: string;
  phases: Array<{ name: string; rssKb: number; threads: number }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The load phases of one run (--purchases, --soak-sessions), against the running daemon; RSS after each. */
async function loadPhases(
  o: Options,
  pid: number,
  ubusSocket: string,
  model: PortalModel,
): Promise<RunFigures['phases']> {
  const phases: RunFigures['phases'] = [];
  const ubus = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 30_000 });
  try {
    const macs: string[] = [];
    const need = Math.max(o.purchases, o.soakSessions);
    for (let i = o.clients; i < o.clients + need; i++) {
      const mac = simulatedMac(i);
      model.addClient(mac, `10.1.${(i >> 8) & 255}.${i & 255}`);
      macs.push(mac);
    }
    if (o.purchases > 0) {
      // Short time sessions: each opens its gate and ends by itself within a few seconds.
      for (let i = 0; i < o.purchases; i++) await ubus.call('sluice', 'grant', { mac: macs[i]!, seconds: 2 });
      await sleep(Math.max(5, o.idleS) * 1000);
      const s = status(pid);
      phases.push({ name: `after ${o.purchases} purchases (ended) + idle`, rssKb: s.rssKb, threads: s.threads });
    }
    if (o.soakSessions > 0) {
      const soak = macs.slice(0, o.soakSessions);
      for (const [i, mac] of soak.entries()) {
        await ubus.call('sluice', 'grant', i % 2 === 0 ? { mac, bytes: 1 << 30 } : { mac, seconds: o.soakS + 3600 });
      }
      for (let t = 0; t < o.soakS; t++) {
        for (const mac of soak) model.addTraffic(mac, 20_000 + (t % 7) * 1000, 2_000);
        await sleep(1000);
      }
      const live = status(pid);
      phases.push({
        name: `soak: ${o.soakSessions} live sessions after ${o.soakS} s`,
        rssKb: live.rssKb,
        threads: live.threads,
      });
      for (const mac of soak) await ubus.call('sluice', 'terminate', { mac }).catch(() => undefined);
      await sleep(Math.max(5, o.idleS) * 1000);
      const s = status(pid);
      phases.push({ name: 'soak ended + idle', rssKb: s.rssKb, threads: s.threads });
    }
  } finally {
    await ubus.close();
  }
  return phases;
}

async function oneRun(o: Options): Promise<RunFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rss-'));
  mkdirSync(join(dir, 'portal'));
  const model = new PortalModel({ flavour: 'opennds' });
  for (let i = 0; i < o.clients; i++) model.addClient(simulatedMac(i), `10.0.${i >> 8}.${i & 255}`);
  const portal = await listenNdsctlSocket(join(dir, 'portal', 'ndsctl.sock'), portalRequestHandler(model));
  const ubusSocket = join(dir, 'ubus.sock');
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  const configPath = join(dir, 'sluice.uci');
  const mint = o.tollgate ? await startCashuMint() : null;
  writeFileSync(
    configPath,
    idleConfig(dir, portal.path, o.allMethods, await freePort()) +
      (mint ? tollgateSection(mint.url, await freePort()) : ''),
  );
  const child = spawn(
    process.execPath,
    [...o.nodeArgs, o.bundle, 'daemon', '--config', configPath, '--ubus-socket', ubusSocket],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
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
    // VmRSS once a second over the second half of the idle time: one reading moves by ±1 MB with where V8's GC
    // happens to be (2026-11-23, the same build read 54.7 and 55.5 MB); their median ("settled") is the steadier
    // figure.
    const samples: number[] = [];
    for (let t = 0; t < o.idleS; t++) {
      await sleep(1000);
      if (t >= o.idleS / 2) samples.push(status(child.pid!).rssKb);
    }
    const s = { ...status(child.pid!), settledKb: median(samples) };
    const phases = o.purchases > 0 || o.soakSessions > 0 ? await loadPhases(o, child.pid!, ubusSocket, model) : [];
    return {
      ...s,
      load: loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
      phases,
    };
  } finally {
    child.kill('SIGKILL');
    await broker.close();
    await portal.close();
    await mint?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (kb: number): string => (kb / 1024).toFixed(1);
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

export default async function rss(argv: string[]): Promise<void> {
  const o = parse(argv);
  const more = `${o.allMethods ? ' + batch_settlement + upto' : ''}${o.tollgate ? ' + tollgate (lab mint)' : ''}`;
  console.log(
    `rss: ${envPrefix(o.env)}node ${o.nodeArgs.join(' ')} ${o.bundle}, ` +
      `the package config + x402 + http.listen${more}, ` +
      `${o.clients} portal clients, idle ${o.idleS} s, ${o.runs} runs`,
  );
  const runs = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await oneRun(o);
    runs.push(r);
    console.log(
      `  run ${i + 1}: RSS ${mb(r.rssKb)} MB (settled ${mb(r.settledKb)}; anon ${mb(r.anonKb)}, ` +
        `file ${mb(r.fileKb)}), peak ${mb(r.hwmKb)} MB, ${r.threads} threads, load avg ${r.load}`,
    );
    for (const p of r.phases) console.log(`    ${p.name}: RSS ${mb(p.rssKb)} MB, ${p.threads} threads`);
    if (r.phases.length >= 2) {
      const base = r.phases[0]!.rssKb;
      const last = r.phases[r.phases.length - 1]!.rssKb;
      console.log(
        `    leak check: RSS after the soak ${mb(last)} MB vs after the purchases ${mb(base)} ` +
          `MB: ${((last / base - 1) * 100).toFixed(1)}% (${last <= base * 1.1 ? 'no growth past' : 'GREW past'} ` +
          `10%); vs idle: ${((last / r.rssKb - 1) * 100).toFixed(1)}%`,
      );
    }
  }
  const spread = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `${mb(s[0]!)} / ${mb(s[Math.floor((s.length - 1) / 2)]!)} / ${mb(s[s.length - 1]!)}`;
  };
  console.log(
    `  idle RSS min / median / max: ${spread(runs.map((r) => r.rssKb))} MB; ` +
      `settled ${spread(runs.map((r) => r.settledKb))} MB; peak ${spread(runs.map((r) => r.hwmKb))} MB`,
  );
}
