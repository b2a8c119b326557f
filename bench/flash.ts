// `npm run bench -- flash [--seconds S] [--clients N] [--bundle dist/sluice.mjs]`
// Bytes written to the state dir per hour: the real daemon (dist/sluice.mjs) with the package's config (poll every
// 2 s, checkpoint every 300 s, RADIUS interim every 300 s), N clients (default 32) each with a data session and
// traffic on the simulated openNDS every second, MQTT on (a real mosquitto, test/peers) and RADIUS accounting on (a
// real FreeRADIUS where installed, else said). Runs S seconds (default 180) and scales to an hour. Measures what
// sluice asks, per kind of file (the state dir sampled every 200 ms: an appended file's growth, an atomically
// replaced file's size each time its inode changes — a lower bound when one is replaced twice within a sample), and
// what the process had the kernel write (/proc/<pid>/io write_bytes: pages dirtied, the file system's own metadata
// and journal not included). Prints a table and the load average.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UbusClient } from '../src/ubus/index.ts';
import { UbusBroker } from '../src/ubus/broker/index.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler } from '../src/sim/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { Mosquitto } from '../test/peers/mosquitto.ts';
import { FreeRadius } from '../test/peers/freeradius.ts';
import { radiusSection } from '../test/helpers/uci-sections.ts';
import { idleConfig } from './rss.ts';
import { shippedEnv, shippedNodeArgs } from './lib/shipped-node-args.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The kind of a file under the state dir, for the table. */
function kindOf(path: string): string {
  if (path.startsWith('mqtt-outbox/')) return /seg-/.test(path) ? 'mqtt outbox segments' : 'mqtt outbox marks';
  if (path.startsWith('radius/outbox/')) return /seg-/.test(path) ? 'radius outbox segments' : 'radius outbox marks';
  if (path.startsWith('radius/')) return 'radius state';
  if (/journal/.test(path)) return 'journal';
  if (/snapshot|checkpoint/.test(path)) return 'snapshot/checkpoints';
  if (path.endsWith('.json')) return 'JSON tables';
  return `other (${path})`;
}

function walk(dir: string, root = dir, out = new Map<string, { ino: number; size: number }>()) {
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    try {
      if (name.isDirectory()) walk(p, root, out);
      else if (name.isFile()) {
        const s = statSync(p);
        out.set(relative(root, p), { ino: s.ino, size: s.size });
      }
    } catch {
      /* gone between readdir and stat */
    }
  }
  return out;
}

function writeBytes(pid: number): number {
  return Number(/^write_bytes: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

export default async function flash(argv: string[]): Promise<void> {
  const opt = (name: string, d: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const seconds = opt('--seconds', 180);
  const clients = opt('--clients', 32);
  const bi = argv.indexOf('--bundle');
  const bundle = bi >= 0 ? argv[bi + 1]! : join(ROOT, 'dist', 'sluice.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-flash-'));
  mkdirSync(join(dir, 'portal'));
  const model = new PortalModel({ flavour: 'opennds' });
  for (let i = 0; i < clients; i++) model.addClient(simulatedMac(i), `10.0.${i >> 8}.${i & 255}`);
  const portal = await listenNdsctlSocket(join(dir, 'portal', 'ndsctl.sock'), portalRequestHandler(model));
  const ubusSocket = join(dir, 'ubus.sock');
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  const mosquitto = await Mosquitto.create();
  const radius = FreeRadius.available() ? await FreeRadius.start({ debug: false }) : null;
  const configPath = join(dir, 'sluice.uci');
  let config = idleConfig(dir, portal.path, false, 20000 + (process.pid % 20000));
  config = config.replace(/config mqtt 'mqtt'\n\toption enabled '0'\n\toption url '[^']*'/, (m) =>
    m.replace("enabled '0'", "enabled '1'").replace(/url '[^']*'/, `url '${mosquitto.url}'`),
  );
  config = config.replace(/\nconfig radius 'radius'[\s\S]*?(?=\n\n|\n#)/, '\n');
  if (radius) config += radiusSection({ authPort: radius.authPort, acctPort: radius.acctPort, secret: radius.secret });
  writeFileSync(configPath, config);
  const child = spawn(
    process.execPath,
    [...shippedNodeArgs(), bundle, 'daemon', '--config', configPath, '--ubus-socket', ubusSocket],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...shippedEnv() } },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const state = join(dir, 'state');
  try {
    while (!output.includes('sluice running')) {
      if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}\n${output}`);
      await sleep(50);
    }
    const ubus = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 30_000 });
    for (let i = 0; i < clients; i++) await ubus.call('sluice', 'grant', { mac: simulatedMac(i), bytes: 1 << 30 });
    await ubus.close();
    await sleep(3000); // the grants' own journal records are not part of the steady state
    const asked = new Map<string, number>();
    let files = walk(state);
    const io0 = writeBytes(child.pid!);
    const t0 = Date.now();
    let nextTraffic = t0;
    while (Date.now() - t0 < seconds * 1000) {
      if (Date.now() >= nextTraffic) {
        for (let i = 0; i < clients; i++) model.addTraffic(simulatedMac(i), 40_000 + (i % 7) * 1000, 4_000);
        nextTraffic += 1000;
      }
      await sleep(200);
      const now = walk(state);
      for (const [p, f] of now) {
        const was = files.get(p);
        const grew = !was ? f.size : was.ino !== f.ino ? f.size : Math.max(0, f.size - was.size);
        if (grew > 0) asked.set(kindOf(p), (asked.get(kindOf(p)) ?? 0) + grew);
      }
      files = now;
    }
    const elapsedH = (Date.now() - t0) / 3_600_000;
    const io = writeBytes(child.pid!) - io0;
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(
      `flash: ${bundle}, ${clients} clients with traffic, MQTT → mosquitto, RADIUS ` +
        `${radius ? '→ FreeRADIUS' : 'off (FreeRADIUS not installed)'}, ${seconds} s, load avg ${load}`,
    );
    const kb = (b: number): string => (b / elapsedH / 1024).toFixed(0).padStart(9);
    let total = 0;
    for (const [k, b] of [...asked].sort()) {
      console.log(`  ${k.padEnd(28)} ${kb(b)} KiB/h asked`);
      total += b;
    }
    console.log(`  ${'total asked'.padEnd(28)} ${kb(total)} KiB/h`);
    console.log(`  ${'/proc/pid/io write_bytes'.padEnd(28)} ${kb(io)} KiB/h (pages the daemon dirtied)`);
  } finally {
    child.kill('SIGKILL');
    await broker.close();
    await portal.close();
    await mosquitto.close();
    await radius?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
