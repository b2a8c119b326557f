// `npm run bench -- hook [--seconds S] [--modes ok,stream,trickle,silent] [--timeout S] [--bundle dist/sluice.mjs]
// [--rss-cap-mb N]`
// The daemon's resident memory while its session-event hook posts to a receiver that misbehaves:
// the real bundle on the embedded ubus broker, the hook pointed at test/peers/hook-receiver.ts answering every post
// `ok` (204, the baseline), `stream` (200 and a body that never ends), `trickle` (200 and a byte every 200 ms) or
// `silent` (never answers). For each mode a fresh daemon runs `--seconds` while a grant or a terminate comes every
// 500 ms (an event each); VmRSS is read from /proc every second. Prints per mode: RSS at the start, median and max
// over the run, at the end; the posts the receiver got, the events still queued, the bytes the receiver put on the
// wire; then the time from SIGTERM to the exit. `--rss-cap-mb` (default 1024) kills a daemon that grows past it (an
// unbounded read, e.g. with `--bundle` of an older build) so the bench cannot take a shared machine's memory.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { DaemonLab } from '../test/daemon/harness.ts';
import { HookReceiver, type ReceiverMode } from '../test/peers/hook-receiver.ts';

interface Options {
  seconds: number;
  modes: ReceiverMode[];
  timeoutS: number;
  bundle?: string;
  capMb: number;
}

function parse(argv: string[]): Options {
  const o: Options = { seconds: 30, modes: ['ok', 'stream', 'trickle', 'silent'], timeoutS: 3, capMb: 1024 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--seconds' && v) {
      o.seconds = Number(v);
      i++;
    } else if (argv[i] === '--modes' && v) {
      o.modes = v.split(',') as ReceiverMode[];
      i++;
    } else if (argv[i] === '--timeout' && v) {
      o.timeoutS = Number(v);
      i++;
    } else if (argv[i] === '--bundle' && v) {
      o.bundle = v;
      i++;
    } else if (argv[i] === '--rss-cap-mb' && v) {
      o.capMb = Number(v);
      i++;
    }
  }
  return o;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const mb = (x: number): string => `${x.toFixed(1)} MB`;

async function run(mode: ReceiverMode, o: Options): Promise<void> {
  const receiver = await HookReceiver.listen(mode);
  const lab = await DaemonLab.create({
    pollInterval: 1,
    portalSocket: true,
    ...(o.bundle && { bundle: o.bundle }),
    extraConfig: `
config hook 'hook'
\toption enabled '1'
\toption url '${receiver.url}'
\toption secret 'bench-hook-secret-0123456789'
\toption timeout '${o.timeoutS}'
\toption backoff_max '1'
`,
  });
  const macs = Array.from({ length: 8 }, (_, i) => `02:00:00:00:1b:${i.toString(16).padStart(2, '0')}`);
  macs.forEach((mac, i) => lab.portal.addClient(mac, `10.0.9.${i + 1}`));
  try {
    await lab.startDaemon();
    const pid = lab.daemon!.pid!;
    const start = rssMb(pid);
    const samples: number[] = [];
    let events = 0;
    let capped = false;
    const open = new Set<string>();
    const deadline = Date.now() + o.seconds * 1000;
    let nextSample = Date.now();
    while (Date.now() < deadline) {
      const mac = macs[events % macs.length]!;
      if (open.has(mac)) {
        await lab.call('terminate', { mac });
        open.delete(mac);
      } else {
        await lab.call('grant', { mac, seconds: 3600 });
        open.add(mac);
      }
      events++;
      if (Date.now() >= nextSample) {
        const r = rssMb(pid);
        samples.push(r);
        nextSample += 1000;
        if (r > o.capMb) {
          capped = true;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const end = rssMb(pid);
    const stats =
      ((await lab.call('stats').catch(() => ({ upstream: {} }))).upstream as Record<string, Record<string, unknown>>)[
        'hook'
      ] ?? {};
    let stopMs = NaN;
    if (capped) lab.daemon!.kill('SIGKILL');
    else {
      const child = lab.daemon!;
      const exited = new Promise((r) => child.once('exit', r));
      const t0 = Date.now();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      stopMs = Date.now() - t0;
      lab.daemon = undefined;
    }
    console.log(
      `${mode.padEnd(8)} rss start ${mb(start)}, median ${mb(median(samples))}, ` +
        `max ${mb(Math.max(...samples, end))}, end ${mb(end)}` +
        `${capped ? ` (CAPPED: killed past ${o.capMb} MB)` : ''}; ${events} events, ${receiver.posts.length} ` +
        `posts, pending ${String(stats['pending'] ?? '?')},` +
        ` receiver sent ${mb(receiver.bytesSent / 1048576)}; SIGTERM to ` +
        `exit ${Number.isNaN(stopMs) ? '-' : `${stopMs} ms`}`,
    );
  } finally {
    await lab.close();
    await receiver.close();
  }
}

export default async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(
    `hook receiver RSS: ${o.seconds} s per mode, hook.timeout ${o.timeoutS} s, an event every 500 ms, ` +
      `bundle ${o.bundle ?? 'dist/sluice.mjs'}, load ${load}`,
  );
  for (const mode of o.modes) await run(mode, o);
}
