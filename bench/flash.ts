// `npm run bench -- flash [--seconds S] [--clients N] [--runs R] [--fs ext4|dir] [--bundle dist/sluice.mjs]`
// Bytes an hour that reach the block device under sluice's state dir: the real daemon (dist/sluice.mjs) with the
// package's config (poll every 2 s, checkpoint every 300 s, RADIUS interim every 300 s), N clients (default 32) each
// with a data session and traffic on the simulated openNDS every second, MQTT on (a real mosquitto, test/peers) and
// RADIUS accounting on (a real FreeRADIUS where installed, else said). The state dir is a fresh file system on a loop
// device of each kind OpenWrt's overlay uses that this machine can make (bench/lib/loop-fs.ts: F2FS where the kernel
// has it, else ext4; as root), read at `/sys/block/loopN/stat` around a window of S seconds (default 300: one
// checkpoint interval, so one checkpoint and one interim per session fall in it; it starts 65 s after the grants,
// once their own writes are done) after a sync, and after a sync again at its end (what was dirtied in the window is
// counted, nothing from before it). Per file, from strace (where installed) over the same window: the bytes asked,
// the writes, the fsyncs, the renames onto it. Also what the process
// had the kernel write (/proc/<pid>/io write_bytes: pages dirtied, the file system's own metadata and journal not
// included). R runs (default 3) per file system, then each run's figures and the load average. Not root: a plain
// temp dir, without the block device's figure.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { UbusClient } from '../src/ubus/index.ts';
import { UbusBroker } from '../src/ubus/broker/index.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler } from '../src/sim/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { Mosquitto } from '../test/peers/mosquitto.ts';
import { FreeRadius } from '../test/peers/freeradius.ts';
import { radiusSection } from '../test/helpers/uci-sections.ts';
import { idleConfig } from './rss.ts';
import { shippedEnv, shippedNodeArgs } from './lib/shipped-node-args.ts';
import { loopFsKinds, mountLoopFs, type LoopFs } from './lib/loop-fs.ts';
import { attachStrace, type FileAsks } from './lib/strace-writes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function writeBytes(pid: number): number {
  return Number(/^write_bytes: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Run {
  fs: string;
  hours: number;
  /** Bytes that reached the block device (null: no loop device). */
  device: number | null;
  dirtied: number;
  files: Map<string, FileAsks> | null;
  load: string;
}

interface Options {
  seconds: number;
  clients: number;
  bundle: string;
  fs: string;
  strace: boolean;
}

async function runOnce(o: Options): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-flash-'));
  const state = join(dir, 'state');
  mkdirSync(join(dir, 'portal'));
  mkdirSync(state);
  let loop: LoopFs | null = null;
  const model = new PortalModel({ flavour: 'opennds' });
  for (let i = 0; i < o.clients; i++) model.addClient(simulatedMac(i), `10.0.${i >> 8}.${i & 255}`);
  const portal = await listenNdsctlSocket(join(dir, 'portal', 'ndsctl.sock'), portalRequestHandler(model));
  const ubusSocket = join(dir, 'ubus.sock');
  const broker = await UbusBroker.listen({ socketPath: ubusSocket });
  const mosquitto = await Mosquitto.create();
  const radius = FreeRadius.available() ? await FreeRadius.start({ debug: false }) : null;
  let child: ReturnType<typeof spawn> | null = null;
  try {
    if (o.fs !== 'dir') loop = mountLoopFs(o.fs, dir, state);
    const configPath = join(dir, 'sluice.uci');
    let config = idleConfig(dir, portal.path, false, 20000 + (process.pid % 20000));
    config = config.replace(/config mqtt 'mqtt'\n\toption enabled '0'\n\toption url '[^']*'/, (m) =>
      m.replace("enabled '0'", "enabled '1'").replace(/url '[^']*'/, `url '${mosquitto.url}'`),
    );
    config = config.replace(/\nconfig radius 'radius'[\s\S]*?(?=\n\n|\n#)/, '\n');
    if (radius)
      config += radiusSection({ authPort: radius.authPort, acctPort: radius.acctPort, secret: radius.secret });
    writeFileSync(configPath, config);
    child = spawn(
      process.execPath,
      [...shippedNodeArgs(), o.bundle, 'daemon', '--config', configPath, '--ubus-socket', ubusSocket],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...shippedEnv() } },
    );
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    while (!output.includes('sluice running')) {
      if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}\n${output}`);
      await sleep(50);
    }
    const ubus = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 30_000 });
    for (let i = 0; i < o.clients; i++) await ubus.call('sluice', 'grant', { mac: simulatedMac(i), bytes: 1 << 30 });
    await ubus.close();
    // The grants' own writes are not the steady state: their journal records and seal (10 s), the outboxes' cursors
    // over the Start and session records (30 s), RADIUS's sessions.json a minute after the sessions started.
    await sleep(65_000);
    const trace = o.strace ? await attachStrace(child.pid!, state, join(dir, 'strace.out')) : null;
    const device0 = loop?.bytesWritten() ?? null;
    const io0 = writeBytes(child.pid!);
    const t0 = Date.now();
    let nextTraffic = t0;
    while (Date.now() - t0 < o.seconds * 1000) {
      if (Date.now() >= nextTraffic) {
        for (let i = 0; i < o.clients; i++) model.addTraffic(simulatedMac(i), 40_000 + (i % 7) * 1000, 4_000);
        nextTraffic += 1000;
      }
      await sleep(200);
    }
    const hours = (Date.now() - t0) / 3_600_000;
    const dirtied = writeBytes(child.pid!) - io0;
    const files = (await trace?.stop()) ?? null;
    const device = loop && device0 !== null ? loop.bytesWritten() - device0 : null;
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    return { fs: o.fs, hours, device, dirtied, files, load };
  } finally {
    child?.kill('SIGKILL');
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    await broker.close();
    await portal.close();
    await mosquitto.close();
    await radius?.close();
    loop?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const kib = (b: number, hours: number): string => (b / hours / 1024).toFixed(0);

function print(run: Run, n: number): void {
  const h = run.hours;
  const device = run.device === null ? 'no block device (not root)' : `${kib(run.device, h)} KiB/h at the block device`;
  console.log(`  run ${n} on ${run.fs}: ${device}, ${kib(run.dirtied, h)} KiB/h dirtied, load avg ${run.load}`);
  if (!run.files) return;
  const rows = [...run.files].sort((a, b) => b[1].bytes - a[1].bytes || b[1].fsyncs - a[1].fsyncs);
  const per = (x: number): string => (x / h).toFixed(0).padStart(7);
  console.log(
    `    ${'file (per hour)'.padEnd(40)} ${['KiB', 'writes', 'fsyncs', 'renames'].map((c) => c.padStart(7)).join(' ')}`,
  );
  const total = { bytes: 0, writes: 0, fsyncs: 0, renames: 0 };
  for (const [path, f] of rows) {
    console.log(
      `    ${path.padEnd(40)} ${kib(f.bytes, h).padStart(7)} ${per(f.writes)} ${per(f.fsyncs)} ${per(f.renames)}`,
    );
    total.bytes += f.bytes;
    total.writes += f.writes;
    total.fsyncs += f.fsyncs;
    total.renames += f.renames;
  }
  console.log(
    `    ${'total asked'.padEnd(40)} ${kib(total.bytes, h).padStart(7)} ` +
      `${per(total.writes)} ${per(total.fsyncs)} ${per(total.renames)}`,
  );
}

export default async function flash(argv: string[]): Promise<void> {
  const opt = (name: string, d: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const bi = argv.indexOf('--bundle');
  const fi = argv.indexOf('--fs');
  const kinds = fi >= 0 ? [argv[fi + 1]!] : loopFsKinds();
  const base = {
    seconds: opt('--seconds', 300),
    clients: opt('--clients', 32),
    bundle: bi >= 0 ? argv[bi + 1]! : join(ROOT, 'dist', 'sluice.mjs'),
    strace: hasStrace(),
  };
  if (!existsSync(base.bundle)) throw new Error(`no ${base.bundle}: npm run build`);
  const runs = opt('--runs', 3);
  console.log(
    `flash: ${base.bundle}, ${base.clients} clients with traffic, MQTT → mosquitto, RADIUS ` +
      `${FreeRadius.available() ? '→ FreeRADIUS' : 'off (FreeRADIUS not installed)'}, ${base.seconds} s a run, ` +
      `per file ${base.strace ? 'from strace' : 'not shown (no strace)'}`,
  );
  for (const fs of kinds.length ? kinds : ['dir']) {
    const all: Run[] = [];
    for (let n = 1; n <= runs; n++) {
      const run = await runOnce({ ...base, fs });
      all.push(run);
      print(run, n);
    }
    const device = all.filter((r) => r.device !== null).map((r) => Number(kib(r.device!, r.hours)));
    if (device.length) console.log(`  ${fs}: ${device.join(' / ')} KiB/h at the block device (${all.length} runs)`);
  }
}
