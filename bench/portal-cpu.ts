// `npm run bench -- portal-cpu [--clients 8,32,64] [--seconds 30] [--modes portal] [--json]`
// What metering costs a router, in the real openNDS lab (test/e2e/lab.sh; root, Debian's opennds): for each client
// count, a lab with that many client namespaces, each fetching a small file every few seconds (light traffic), every
// client granted a data session; then, from /proc, the CPU time (utime + stime + reaped children's) per second of wall
// time of openNDS and of the sluice daemon:
//   idle     openNDS with the clients authenticated and sluice stopped (its own checkinterval work);
//   <mode>   sluice running at the package's defaults (poll 2 s, the control socket, kernel quota on) with
//            main.meter '<mode>'; metering CPU = openNDS above its idle + sluice.
// The modes run one after the other in the same lab (the same clients and sessions), so today's figure ('portal':
// every tick lists the portal) can stand beside another ('kernel': per-client counters in sluice's nft table, once
// the meter reads them: issue 40; until then `main.meter` is an unknown option the daemon warns about and ignores).
// SLUICE_E2E_BUNDLE runs another build of sluice.mjs (e.g. a copy of dist/ from before a change).
// The load average (uptime) is printed beside each figure: the machine may be shared. Prints figures; asserts nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab, labUnavailableReason, sleep, waitFor, UPSTREAM_IP } from '../test/e2e/lab.ts';
import { daemonUnavailableReason, Sluice } from '../test/e2e/sluice.ts';

const arg = (argv: string[], name: string, fallback: string): string => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1]! : fallback; };
const TICKS = 100; // USER_HZ on Linux

/** utime + stime + cutime + cstime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state(0) ppid … utime is field 14 of the whole line, i.e. index 11 here.
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / TICKS;
}

/** CPU ms per wall second of each pid over `seconds`, and the 1-minute load average at the end. */
async function sample(pids: Record<string, number>, seconds: number): Promise<{ perS: Record<string, number>; load: number }> {
  const t0 = performance.now();
  const c0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const perS = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, Math.round(((cpuMs(p) - c0[k]!) / wall) * 10) / 10]));
  return { perS, load: Math.round(loadavg()[0]! * 100) / 100 };
}

/** Each client fetches 20 kB every 4 s (staggered): light, steady traffic. */
function traffic(lab: Lab): ChildProcess[] {
  return lab.clients.map((c, i) => spawn('ip', ['netns', 'exec', c.ns, 'sh', '-c',
    `sleep ${(i % 40) / 10}; while :; do curl -s -o /dev/null --max-time 3 http://${UPSTREAM_IP}/bytes/20000; sleep 4; done`], { stdio: 'ignore' }));
}

interface Row { clients: number; phase: string; opennds_ms_s: number; sluice_ms_s: number; metering_ms_s: number; load: number }

export default async function main(argv: string[]): Promise<void> {
  const why = labUnavailableReason() ?? daemonUnavailableReason();
  if (why !== null) {
    console.log(`SKIP portal-cpu: needs the real openNDS lab as root (${why})`);
    return;
  }
  const sizes = arg(argv, '--clients', '8,32,64').split(',').map(Number);
  const seconds = Number(arg(argv, '--seconds', '30'));
  const modes = arg(argv, '--modes', 'portal').split(',');
  const rows: Row[] = [];
  for (const n of sizes) {
    const lab = await Lab.up({ clients: n, rate: null });
    const loops: ChildProcess[] = [];
    try {
      // openNDS lists a client once it has seen its traffic: one request each, then one listing until all are there.
      // No loops before the gates open: 64 preauthenticated clients each hitting the splash page every few seconds
      // made openNDS 9.10 exit ("Fatal error in GNU libmicrohttpd daemon.c:3831: Failed to remove FD from epoll set").
      await Promise.all(lab.clients.map((c) => lab.fetch(c, '/ping', 2)));
      await waitFor(`openNDS to list ${n} clients`, 60_000 + n * 1000, async () => {
        const r = await lab.ndsctl('json');
        const listed = r.code === 0 ? Object.keys((JSON.parse(r.stdout) as { clients?: object }).clients ?? {}).length : 0;
        return listed >= n ? true : undefined;
      }, 2000);
      const s = await Sluice.start(lab, { pollInterval: 2, mainOptions: [`\toption meter '${modes[0]}'`] });
      for (const c of lab.clients) await s.call('grant', { mac: c.mac, bytes: 1024 * 1024 * 1024 });
      await waitFor('every gate open', 60_000 + n * 2000, async () => {
        const r = await lab.ndsctl('json');
        if (r.code !== 0) return undefined;
        const clients = Object.values((JSON.parse(r.stdout) as { clients: Record<string, { state: string }> }).clients);
        return clients.filter((c) => c.state === 'Authenticated').length >= n ? true : undefined;
      }, 2000);
      loops.push(...traffic(lab));
      const nds = Number(readFileSync(join(lab.dir, 'opennds.pid'), 'utf8').trim());
      await s.stopDaemon();
      await sleep(3000);
      const idle = await sample({ nds }, seconds);
      rows.push({ clients: n, phase: 'idle', opennds_ms_s: idle.perS.nds!, sluice_ms_s: 0, metering_ms_s: 0, load: idle.load });
      for (const mode of modes) {
        const conf = readFileSync(s.config, 'utf8').replace(/option meter '[^']*'/, `option meter '${mode}'`);
        writeFileSync(s.config, conf);
        await s.startDaemon();
        await sleep(8000); // past the start-up reconcile and the first listing
        const pid = s.daemonPid;
        if (pid === null) throw new Error('the sluice daemon is not running');
        const m = await sample({ nds, sluice: pid }, seconds);
        const above = Math.max(0, m.perS.nds! - idle.perS.nds!);
        rows.push({ clients: n, phase: mode, opennds_ms_s: m.perS.nds!, sluice_ms_s: m.perS.sluice!, metering_ms_s: Math.round((above + m.perS.sluice!) * 10) / 10, load: m.load });
        console.log(`# portal-cpu ${n} clients, meter '${mode}': openNDS ${m.perS.nds} ms/s (idle ${idle.perS.nds}), sluice ${m.perS.sluice} ms/s → metering ${rows.at(-1)!.metering_ms_s} ms/s (load ${m.load})`);
        await s.stopDaemon();
      }
      await s.stop();
    } finally {
      for (const l of loops) l.kill('SIGKILL');
      await lab.down();
    }
  }
  if (argv.includes('--json')) console.log(JSON.stringify(rows));
  else console.table(rows);
}
