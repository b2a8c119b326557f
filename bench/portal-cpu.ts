// `npm run bench -- portal-cpu [--portals sluice,9.10,10.3.1] [--scenario busy|quiet] [--clients 8,32,64]
//   [--seconds 45] [--modes kernel|portal,kernel|none] [--repeat 2] [--warm 0] [--gate 32] [--first 3] [--again 2]
//   [--busy 2]
//   [--conntrack-buckets 1024|<n>|host] [--json]`
// What metering costs a router, in the real openNDS lab (test/e2e/lab.sh; root): for each portal and client count, a
// lab with that many client namespaces, each fetching a small file every few seconds (light traffic), every client
// granted a data session; then, from /proc, the CPU time (utime + stime + reaped children's, and the same of each live
// descendant: treeCpu) per second of wall time of openNDS and of the sluice daemon. Portals: Debian's openNDS 9.10,
// and 10.3.1 (what OpenWrt 24.10 ships) built from its public source outside the repo, found in
// SLUICE_OPENNDS10_PREFIX or ~/.cache/sluice-peers/opennds-10.3.1 (`make install DESTDIR=<that>`); without it the
// 10.3.1 rows are a SKIP line. `sluice`: no portal process, sluice is the gate (`main.portal 'sluice'`, lab.sh
// --sluice; its usage is always the kernel's counters, so only the 'kernel' mode; a customer is known by its first
// request, which puts it in the router's neighbour table); its idle is nothing and its whole figure is sluice's.
// The last table puts the portals side by side: the router's whole CPU for the hotspot (the portal's, its idle
// included, + sluice's), the portal's idle, sluice's part and the growth per added client (sideBySide).
// `--scenario busy` (default): customers come and go in every sampled window (bench/lib/churn.ts: five purchases on
// fresh clients, one data session reaching its allotment, one time session ending; each customer's phone asks the
// captive API before and after paying); the figure includes what their auths, deauths and captive-API checks cost
// openNDS; with `--warm N` each window's daemon serves N such windows first, unmeasured (warmUp). `quiet`: nobody
// comes or goes.
//   idle     openNDS with the clients authenticated and sluice stopped (its own checkinterval work), before and after
//            each window, a window's figure taking their mean; a window is 3 checkinterval rounds (45 s in the lab);
//   <mode>   sluice running at the package's defaults (poll 2 s, checkpoint 300 s, the control socket, kernel quota
//            on); metering CPU = openNDS above its idle + sluice. 'kernel': as the package runs (usage from sluice's
//            nft counters, the portal listed only when something changed: meter/kernel-mode.ts). 'portal': the path
//            before it, which
//            a router without nft JSON output still takes (every tick lists the portal): `main.nft` is a wrapper that
//            refuses only the counters' JSON dump, so the counters turn off at start and the kernel quota stays on.
// The modes run one after the other in the same lab (the same clients and sessions), each `--repeat` times in turn,
// so today's figure stands beside the old path's from the same run.
// SLUICE_E2E_BUNDLE runs another build of sluice.mjs (e.g. a copy of dist/ from before a change).
// SLUICE_REAL_UBUSD=<path> runs OpenWrt's own ubusd (openwrt/ubus built for this host) as the lab's bus instead of
// sluice's embedded one (test/e2e/sluice.ts).
// --gate N (default 32 when --clients has it; `none`: no gate phase): in the lab of N clients (a lab of its own when
// the metered, the busy windows' and the gate's clients are more than the lab's 99), also the gate-open latency on the
// kernel path with N listed, on 2N fresh clients
// (one at a time, then N at once: each one's from its own grant, and the last's from the first grant)
// (openNDS 9.10 did not list terminated clients again within 124 s, so the metered ones cannot be reused), and with
// --again K (default 2; `portal 'sluice'` only): the N granted at once are terminated and granted at once again, K
// times, each time's p50/p99 printed after the first's: the first burst is the first time the daemon runs that work
// so hard, and V8 compiles what it made hot (TurboFan, on V8's threads) while the replies go out; a router's daemon,
// running for days, has done that long before (docs/performance.md).
// With `portal 'sluice'` each of those figures also has the kernel's (`kernel p50 / p99`): from the grant's call until
// `nft monitor` in the router's namespace showed the device's `paid_mac` element, the moment its packets pass
// (bench/lib/gate-watch.ts); the reply comes after it (durable, then across the bus to the bench's client).
// --first K, K more fresh clients granted before openNDS lists them: their first answer from the upstream
// (gateLatency), each phase with the daemon's CPU over it (its main thread's, where every grant's own work runs one
// after another, and all its threads', V8's GC and compiler threads too: schedstat, ns). `--modes none` skips the
// metering figures (the lab then holds only the gate phase's clients: the quick way to run the gate phase alone).
// `--busy N`: N busy loops run through the gate phase (load for the goal "also at load 4").
// `--conntrack-buckets N` (default 1024: a 128 MB router's; `host`: the table as it is): the kernel's conntrack hash
// table has N buckets for the whole run and the host's size again at its end (also on SIGINT/SIGTERM). A close with
// sluice's own gate runs `conntrack -D` per address, each walking the whole table (shared by all namespaces); the
// kernel sizes it from RAM, so a 24 GB machine's 262144 buckets cost ≈ 10 ms of CPU a walk more than a router's
// (bench/lib/conntrack-buckets.ts). The size used is printed beside the figures.
// The load average (uptime) is printed beside each figure: the machine may be shared. Prints figures; asserts nothing.
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab, labUnavailableReason, sleep, waitFor, UPSTREAM_IP, type Client } from '../test/e2e/lab.ts';
import { daemonUnavailableReason, Sluice } from '../test/e2e/sluice.ts';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { churn, CHURN_CLIENTS } from './lib/churn.ts';
import { GateWatch } from './lib/gate-watch.ts';
import { HTTP_SECTION, PAY_PAGE_LISTEN } from '../test/e2e/captive-api.ts';
import { parseBuckets, ROUTER_BUCKETS, withConntrackBuckets } from './lib/conntrack-buckets.ts';

/** A window's length in openNDS checkinterval rounds (the lab's 15 s: 45 s). */
const WINDOW_ROUNDS = 3;
import { connectUbus } from '../src/ubus-link.ts';
import { silentLogger } from '../src/log.ts';
import { NdsctlRunner } from '../src/portal/index.ts';

const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const TICKS = 100; // USER_HZ on Linux

/** utime + stime + cutime + cstime of a process, in ms. */
/** A process's CPU ms (utime + stime + its reaped children's) and its parent, from /proc/<pid>/stat; null if gone. */
function procCpu(pid: number): { ms: number; ppid: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state(0) ppid(1) … utime is field 14 of the whole line, i.e. index 11 here.
  return { ms: ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / TICKS, ppid: Number(f[1]) };
}

/**
 * The CPU of a process and of every live descendant (pid → ms). A child's CPU reaches its parent's only when the
 * parent reaps it: sluice runs nft through long-lived shells (portal/command-shell.ts) and openNDS its scripts, so
 * what a live child spent so far is read from the child itself.
 */
function treeCpu(root: number): Map<number, number> {
  const all = new Map<number, { ms: number; ppid: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procCpu(Number(name));
    if (p !== null) all.set(Number(name), p);
  }
  const tree = new Map<number, number>();
  const rootCpu = all.get(root) ?? procCpu(root);
  if (rootCpu === null || rootCpu === undefined) throw new Error(`pid ${root} is gone`);
  tree.set(root, rootCpu.ms);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of all)
      if (!tree.has(pid) && tree.has(p.ppid)) {
        tree.set(pid, p.ms);
        grew = true;
      }
  }
  return tree;
}

/**
 * The CPU a process tree spent between two readings: each process's growth; one that ended in between was reaped into
 * its parent's count with what it had spent before the first reading too, which is taken off again.
 */
function treeDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, v] of after) ms += v - (before.get(pid) ?? 0);
  for (const [pid, v] of before) if (!after.has(pid)) ms -= v;
  return ms;
}

/**
 * Until openNDS has spent no CPU for a second (read every 100 ms; at most `maxMs`): the work a call or a page visit
 * gave it is done. A splash-page visit costs 10.3.1 ≈ 0.5 s of CPU (libopennds.sh run ≈ 40 times: the client's
 * interface, its cid file, syslog lines) and goes on after the visitor's request timed out, so the customers' visits
 * before a window ran on into it: a window began with up to 2.5 s of them (±12 ms/s at 32 clients between windows).
 * Returns how long it waited (ms).
 */
async function openNdsQuiet(nds: number, maxMs = 30_000): Promise<number> {
  const total = (): number => [...treeCpu(nds).values()].reduce((a, b) => a + b, 0);
  const t0 = performance.now();
  let last = total();
  let stillSince = t0;
  while (performance.now() - stillSince < 1000 && performance.now() - t0 < maxMs) {
    await sleep(100);
    const now = total();
    if (now !== last) stillSince = performance.now();
    last = now;
  }
  return performance.now() - t0;
}

/**
 * Where a process's CPU goes: each of its threads' (by name: the main thread, the usage worker, V8's and libuv's) and
 * each live descendant's by its command (the shells sluice keeps for nft, with what they reaped), in ms.
 */
function splitCpu(root: number): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, ms: number): void => void out.set(k, (out.get(k) ?? 0) + ms);
  const statOf = (path: string): { comm: string; ms: number } | null => {
    try {
      const stat = readFileSync(path, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      return { comm, ms: ((Number(f[11]) + Number(f[12])) * 1000) / TICKS };
    } catch {
      return null;
    }
  };
  for (const tid of readdirSync(`/proc/${root}/task`)) {
    const t = statOf(`/proc/${root}/task/${tid}/stat`);
    if (t !== null) add(Number(tid) === root ? 'main' : `thread ${t.comm.replace(/[\d:]+$/, '')}`, t.ms);
  }
  // The daemon's reaped children (spawned once, not through a shell).
  const self = procCpu(root);
  if (self !== null) add('reaped', self.ms - (out.get('main') ?? 0) - sumOf(out, (k) => k.startsWith('thread')));
  for (const [pid, ms] of treeCpu(root)) if (pid !== root) add(`child ${statOf(`/proc/${pid}/stat`)?.comm ?? '?'}`, ms);
  return out;
}

const sumOf = (m: Map<string, number>, keep: (k: string) => boolean): number =>
  [...m].filter(([k]) => keep(k)).reduce((a, [, v]) => a + v, 0);

/** Two splitCpu readings `wallS` apart as ms/s, largest first. */
function splitSaid(before: Map<string, number>, after: Map<string, number>, wallS: number): string {
  return [...after]
    .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / wallS] as const)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

/** CPU ms per wall second of each pid over `seconds`, and the 1-minute load average at the end. */
async function sample(
  pids: Record<string, number>,
  seconds: number,
): Promise<{ perS: Record<string, number>; load: number }> {
  const t0 = performance.now();
  const c0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, treeCpu(p)]));
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const perS = Object.fromEntries(
    Object.entries(pids).map(([k, p]) => {
      let c1: Map<number, number>;
      try {
        c1 = treeCpu(p);
      } catch {
        throw new Error(`${k} (pid ${p}) exited during the window`);
      }
      return [k, Math.round((treeDelta(c0[k]!, c1) / wall) * 10) / 10];
    }),
  );
  return { perS, load: Math.round(loadavg()[0]! * 100) / 100 };
}

/** Each client fetches 20 kB every 4 s (staggered): light, steady traffic. */
function traffic(lab: Lab, clients: Client[]): ChildProcess[] {
  return clients.map((c, i) =>
    spawn(
      'ip',
      [
        'netns',
        'exec',
        c.ns,
        'sh',
        '-c',
        `sleep ${(i % 40) / 10}; while :; do curl -s -o /dev/null --max-time 3 ` +
          `http://${UPSTREAM_IP}/bytes/20000; sleep 4; done`,
      ],
      { stdio: 'ignore' },
    ),
  );
}

const pct = (xs: number[], q: number): number => {
  const v = [...xs].sort((a, b) => a - b);
  return Math.round(v[Math.min(v.length - 1, Math.floor(q * v.length))]!);
};

type Listing = { clients: Record<string, { mac?: string; state: string }> };
let lastListingFailure = '';

/**
 * The harness's own portal calls, over the portal's control socket with sluice's runner (its nudges): openNDS accepts
 * one connection per wake-up, so with the plain ndsctl command every harness call waited for the next one once calls
 * had arrived together (at 64 clients on 10.3.1 the listing never came back in 6 min: src/portal/accept-nudge.ts).
 */
async function harnessCall(
  lab: Lab,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const runner = new NdsctlRunner({ command: [lab.ndsctlPath], socketPath: () => lab.portalSocketPath, timeoutMs });
  try {
    return { code: 0, stdout: (await runner.run(args)).stdout, stderr: '' };
  } catch (err) {
    return { code: 1, stdout: '', stderr: (err as Error).message };
  } finally {
    await runner.destroy();
  }
}

/**
 * The portal's whole client list, null when unreadable. Through the ndsctl command with a long deadline: openNDS 10.3.1
 * runs get_client_interface.sh for every listed client and its ndsctl runs libopennds.sh twice, so at 32 clients on a
 * loaded machine one listing outlasted the harness's 10 s (lab.ndsctl) and the wait for the clients never ended. Busy
 * answers (exit 4) are tried again at the caller's next look.
 */
async function portalListing(lab: Lab): Promise<Listing['clients'] | null> {
  const r = await harnessCall(lab, ['json'], 120_000);
  if (r.code !== 0) {
    // Said once per kind of failure: a portal that exited (openNDS 9.10's SIGCHLD race) shows here as exit 3.
    const why = `exit ${r.code}: ${(r.stdout + r.stderr).trim().split('\n')[0] ?? ''}`;
    if (why !== lastListingFailure) console.log(`# portal-cpu: the portal's listing failed (${why})`);
    lastListingFailure = why;
    return null;
  }
  try {
    return (JSON.parse(r.stdout) as Partial<Listing>).clients ?? {};
  } catch {
    return null;
  }
}

/** A client's state in openNDS's list (`json <mac>`), null when it is not listed or the portal did not answer. */
async function listedState(lab: Lab, mac: string): Promise<string | null> {
  const r = await harnessCall(lab, ['json', mac], 60_000);
  return r.code === 0 ? ((JSON.parse(r.stdout || '{}') as { state?: string }).state ?? null) : null;
}

/**
 * Makes `clients` known to openNDS (a request each) and waits until it lists them all Preauthenticated, each asked by
 * `json <mac>` (not the whole list: on openNDS 10.3.1 at 32 clients and load 17 a listing outlasted the 30 s its
 * preauthidletimeout keeps a splash-page visitor, so the fresh clients were never listed all at once); a client not
 * listed yet requests again at each look (on a loaded machine a request can time out before openNDS sees it).
 */
async function listFresh(lab: Lab, clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => lab.fetch(c, '/ping', 2)));
  // sluice's own gate knows a device by the router's neighbour table: the request (answered 302) put it there.
  if (lab.portal === 'sluice') return;
  await waitFor(
    `openNDS to list ${clients.length} fresh clients`,
    60_000 + clients.length * 2000,
    async () => {
      const missing: Client[] = [];
      for (const c of clients) if ((await listedState(lab, c.mac)) !== 'Preauthenticated') missing.push(c);
      if (missing.length === 0) return true;
      await Promise.all(missing.map((c) => lab.fetch(c, '/ping', 2)));
      return undefined;
    },
    1000,
  );
}

/**
 * One busy window's customers, unmeasured, on a daemon that has just started (`--warm N`: N of them before each
 * measured window; 0: none). A router's sluice has served customers for hours when the next one comes; a daemon 8 s
 * old compiles each purchase's and each close's code as it first runs it (V8 compiles a function at its first call),
 * which a window would otherwise count as metering; and the valve's choice between `status` and auths by MAC
 * (portal/call-costs.ts) then rests on the durations it timed, as on a router, not on a first probe. The same churn
 * (bench/lib/churn.ts) on its own fresh clients; then the three still paying are ended and the window waits until
 * openNDS lists none of the five (it deletes a client at its deauth), so the measured window's openNDS lists what a
 * window without it would.
 */
async function warmUp(lab: Lab, s: Sluice, clients: Client[]): Promise<void> {
  await listFresh(lab, clients);
  const { loops, outcome } = await churn(s, clients);
  // The last purchase is at 25 s of the churn, the time session ends at 20 s: its effects settle in a few ticks.
  await sleep(6000);
  for (const l of loops) l.kill('SIGKILL');
  const said = await outcome();
  for (const c of clients) await s.callInProcess('terminate', { mac: c.mac }).catch(() => undefined);
  if (lab.portal === 'sluice') return console.log(`# portal-cpu warm-up: ${said}`);
  const t0 = performance.now();
  await waitFor(
    'openNDS to forget the warm-up customers',
    180_000,
    async () => {
      for (const c of clients) if ((await listedState(lab, c.mac)) !== null) return undefined;
      return true;
    },
    5000,
  );
  console.log(
    `# portal-cpu warm-up: ${said}; forgotten by openNDS ${Math.round((performance.now() - t0) / 1000)} s later`,
  );
}

/**
 * The CPU a process has run so far (ms): its main thread's (where every grant's own work runs, one after another) and
 * all its threads' (V8's GC and compiler threads too), from each one's schedstat (ns): /proc/<pid>/stat counts in
 * 10 ms ticks, too coarse for a burst of grants that costs the daemon tens of ms. 0 when the process is gone.
 */
function threadsCpuMs(pid: number | null): { main: number; all: number } {
  const ms = { main: 0, all: 0 };
  if (pid === null) return ms;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
        ms.all += t;
        if (Number(tid) === pid) ms.main = t;
      } catch {
        // A thread that ended meanwhile.
      }
    }
  } catch {
    return ms;
  }
  return ms;
}

const cpuSince = (pid: number | null, from: { main: number; all: number }, per = 1): string => {
  const now = threadsCpuMs(pid);
  return `${((now.main - from.main) / per).toFixed(1)}/${((now.all - from.all) / per).toFixed(1)}`;
};

/**
 * Gate-open latency on the kernel path with n clients listed, on fresh clients (openNDS 9.10 did not list terminated
 * clients again within 124 s, so they cannot be reused): the lab's first n, listed, each granted in turn, from the
 * grant's ubus call until its gate is open (the reply, when it says 'opened'; else sluice's `session` showing the
 * gate open, looked at every 50 ms): p50/p99. Then those n are terminated and the next n are listed and granted all
 * at once: when the last gate opened, after the first call; with sluice's own gate, those n are then terminated and
 * granted at once again, `again` times (the same clients: openNDS would not list them again for minutes). Then
 * `first` more fresh clients, one at a time, granted
 * before the portal lists them (the reply says 'pending'), each then requesting the upstream every 100 ms (1 s
 * timeout): the first 200 from the upstream after the first request.
 */
async function gateLatency(
  lab: Lab,
  s: Sluice,
  clients: Client[],
  n: number,
  first: number,
  again: number,
): Promise<Record<string, number | string>> {
  const ubus = await connectUbus(s.socket, silentLogger);
  // With sluice's own gate, the kernel's word on when each gate opened (bench/lib/gate-watch.ts).
  const watch = lab.portal === 'sluice' ? await GateWatch.start(lab.rtNs) : undefined;
  try {
    const isOpen = async (mac: string): Promise<boolean> => {
      const r = (await ubus.call('sluice', 'session', { mac }).catch(() => undefined)) as
        { session?: { gate?: string } } | undefined;
      return r?.session?.gate === 'open';
    };
    // The time until the gate is open as the grant's caller learns it, what the reply said, and with sluice's own gate
    // the time until the kernel had the device's element (NaN if the monitor never showed it).
    const grant = async (mac: string): Promise<[number, string, number]> => {
      const t = performance.now();
      const r = (await ubus.call('sluice', 'grant', { mac, bytes: 1024 * 1024 * 1024 }, { timeoutMs: 60_000 })) as
        { gate?: string } | undefined;
      const reply = r?.gate ?? '?';
      if (reply !== 'opened' && reply !== 'already-open')
        await waitFor(`the gate of ${mac}`, 120_000, async () => ((await isOpen(mac)) ? true : undefined), 50);
      const answered = performance.now() - t;
      if (watch === undefined) return [answered, reply, NaN];
      const opened = await waitFor(
        `the kernel's element of ${mac}`,
        5000,
        async () => watch.openedAfter(mac, t),
        5,
      ).catch(() => NaN);
      return [answered, reply, opened - t];
    };
    const kernelP = (ms: number[]): string =>
      watch === undefined || ms.some(Number.isNaN) ? '' : `${pct(ms, 0.5)} / ${pct(ms, 0.99)}`;
    const replies: Record<string, number> = {};
    const count = (r: string): void => {
      replies[r] = (replies[r] ?? 0) + 1;
    };
    const oneAtATime = clients.slice(0, n);
    const atOnce = clients.slice(n, 2 * n);
    await listFresh(lab, oneAtATime);
    await sleep(3000);
    const loadOne = Math.round(loadavg()[0]! * 100) / 100;
    const one: number[] = [];
    const oneKernel: number[] = [];
    const cpuOne0 = threadsCpuMs(s.daemonPid);
    for (const c of oneAtATime) {
      const [ms, r, kernel] = await grant(c.mac);
      one.push(ms);
      oneKernel.push(kernel);
      count(r);
    }
    const cpuOne = cpuSince(s.daemonPid, cpuOne0, n);
    for (const c of oneAtATime) await ubus.call('sluice', 'terminate', { mac: c.mac }).catch(() => undefined);
    // A deauthed client stays listed Preauthenticated until openNDS's preauthidletimeout (30 s in the lab): wait for
    // them to go, so that the n at once are granted with n listed (each auth costs openNDS 2.5 ms per listed client).
    if (lab.portal !== 'sluice')
      await waitFor(
        'openNDS to forget the clients granted one at a time',
        120_000,
        async () => {
          const r = await lab.ndsctl('json');
          if (r.code !== 0) return undefined;
          const gone = new Set(oneAtATime.map((c) => c.mac));
          const listed = Object.entries((JSON.parse(r.stdout) as Listing).clients);
          return listed.some(([key, c]) => gone.has(key) || gone.has(c.mac ?? '')) ? undefined : true;
        },
        2000,
      );
    await listFresh(lab, atOnce);
    await sleep(3000);
    const loadAll = Math.round(loadavg()[0]! * 100) / 100;
    const listedAll =
      lab.portal === 'sluice'
        ? n
        : await lab
            .ndsctl('json')
            .then((r) => Object.keys((JSON.parse(r.stdout) as Listing).clients).length)
            .catch(() => -1);
    const cpuAll0 = threadsCpuMs(s.daemonPid);
    const t0 = performance.now();
    const all = await Promise.all(atOnce.map((c) => grant(c.mac)));
    const allAtOnceMs = Math.round(performance.now() - t0);
    const cpuAll = cpuSince(s.daemonPid, cpuAll0);
    // Each of the n granted at once: from its own grant call until its gate was open.
    const each = all.map(([ms]) => ms);
    const eachKernel = kernelP(all.map(([, , k]) => k));
    all.forEach(([, r]) => count(r));
    const agains: string[] = [];
    for (let i = 0; lab.portal === 'sluice' && i < again; i++) {
      for (const c of atOnce) await ubus.call('sluice', 'terminate', { mac: c.mac }).catch(() => undefined);
      await sleep(3000);
      const load = Math.round(loadavg()[0]! * 100) / 100;
      const burst = await Promise.all(atOnce.map((c) => grant(c.mac)));
      burst.forEach(([, r]) => count(r));
      const ms = burst.map(([m]) => m);
      const kernel = kernelP(burst.map(([, , k]) => k));
      agains.push(`${pct(ms, 0.5)} / ${pct(ms, 0.99)} ms${kernel === '' ? '' : ` (kernel ${kernel})`} (load ${load})`);
    }
    const firsts: number[] = [];
    const firstLoads: number[] = [];
    for (const c of clients.slice(2 * n, 2 * n + first)) {
      firstLoads.push(Math.round(loadavg()[0]! * 100) / 100);
      const r = (await ubus.call(
        'sluice',
        'grant',
        { mac: c.mac, bytes: 1024 * 1024 * 1024 },
        { timeoutMs: 60_000 },
      )) as { gate?: string } | undefined;
      count(`first:${r?.gate ?? '?'}`);
      const t = Date.now();
      const ok = await waitFor(
        `a 200 for ${c.mac}`,
        60_000,
        async () => {
          const f = await lab.fetch(c, '/ping', 1);
          if (f.exit === 0 && f.http === 200) return f.endedAt;
          await sleep(100);
          return undefined;
        },
        0,
      );
      firsts.push(ok - t);
    }
    return {
      p50: pct(one, 0.5),
      p99: pct(one, 0.99),
      oneKernel: kernelP(oneKernel),
      atOnceKernel: eachKernel,
      max: Math.round(Math.max(...one)),
      loadOne,
      cpuOne,
      atOnceP50: pct(each, 0.5),
      atOnceP99: pct(each, 0.99),
      allAtOnceMs,
      loadAll,
      cpuAll,
      listedAll,
      again: agains.join(', '),
      ...(first > 0 ? { first: firsts.join('/'), firstLoads: firstLoads.join('/') } : {}),
      replies: JSON.stringify(replies),
    };
  } finally {
    watch?.stop();
    await ubus.close();
  }
}

interface Row {
  portal: string;
  clients: number;
  phase: string;
  opennds_ms_s: number;
  sluice_ms_s: number;
  /** The router's whole CPU for the hotspot: the portal's (its idle too) + sluice's. */
  hotspot_ms_s: number;
  metering_ms_s: number;
  /** Portal listings sluice read in the window. */
  listings: number | string;
  load: number;
}

/** openNDS 10.x's install prefix, if there is one (see the header). */
function opennds10Prefix(): string | undefined {
  const dir = process.env['SLUICE_OPENNDS10_PREFIX'] ?? join(homedir(), '.cache/sluice-peers/opennds-10.3.1');
  return existsSync(join(dir, 'usr/bin/opennds')) ? dir : undefined;
}

export default async function main(argv: string[]): Promise<void> {
  const why = labUnavailableReason() ?? daemonUnavailableReason();
  if (why !== null) {
    console.log(`SKIP portal-cpu: needs the real openNDS lab as root (${why})`);
    return;
  }
  const buckets = parseBuckets(arg(argv, '--conntrack-buckets', String(ROUTER_BUCKETS)));
  await withConntrackBuckets(buckets, async (used) => {
    console.log(`# portal-cpu: conntrack buckets ${used}`);
    await run(argv, used);
  });
}

/** The labs and their figures; `buckets` says the conntrack table's size beside them. */
async function run(argv: string[], buckets: string): Promise<void> {
  const sizes = arg(argv, '--clients', '8,32,64').split(',').map(Number);
  // A window is whole rounds of openNDS's checkinterval unless told otherwise: one of 40 s held 2 or 3 of its 15 s
  // rounds, each a share of its own work, so the idle and the busy window differed by a round (±8 ms/s at 32 clients on
  // 10.3.1) whatever sluice did.
  const secondsArg = arg(argv, '--seconds', '');
  const busyWindow = arg(argv, '--scenario', 'busy') === 'busy';
  const portals: Array<{ name: string; prefix?: string; sluice?: boolean }> = [];
  for (const name of arg(argv, '--portals', '9.10,10.3.1').split(',')) {
    if (name === 'sluice') {
      portals.push({ name, sluice: true });
      continue;
    }
    if (name !== '10.3.1') {
      portals.push({ name });
      continue;
    }
    const prefix = opennds10Prefix();
    if (prefix === undefined)
      console.log(
        'SKIP portal-cpu openNDS 10.3.1: no build in SLUICE_OPENNDS10_PREFIX or ~/.cache/sluice-peers/opennds-10.3.1',
      );
    else portals.push({ name, prefix });
  }
  // `--modes none`: no metering figures (only --gate's).
  const allModes = arg(argv, '--modes', 'kernel')
    .split(',')
    .filter((m) => m !== '' && m !== 'none');
  const repeat = Number(arg(argv, '--repeat', '2'));
  // Unmeasured busy windows each daemon serves before its measured one (busy scenario only): see warmUp.
  const warm = busyWindow ? Number(arg(argv, '--warm', '0')) : 0;
  // The client counts whose lab also measures gate-open latency on the kernel path ('none' for none): by default the
  // goal's 32 when it is among --clients, so a run of the figures shows the gate's too.
  const gateAt = arg(argv, '--gate', sizes.includes(32) ? '32' : 'none')
    .split(',')
    .filter((x) => x !== '' && x !== 'none')
    .map(Number);
  // With --gate, that many more fresh clients for the first answer of a client granted before it is listed.
  const first = Number(arg(argv, '--first', '0'));
  // With --gate and sluice's own gate, the at-once burst granted this many times more.
  const again = Number(arg(argv, '--again', '2'));
  // With --gate, this many busy loops (`sh -c 'while :; do :; done'`) run through the gate phase: load.
  const busy = Number(arg(argv, '--busy', '0'));
  const rows: Row[] = [];
  const gates: Array<Record<string, number | string>> = [];
  for (const portal of portals)
    for (const { n, modes, gate } of labPlans(sizes, gateAt, (n) => {
      // sluice's own gate has no 'portal' mode (its usage is the kernel's counters: portal 'sluice' needs them).
      const modes = portal.sluice === true ? allModes.filter((m) => m === 'kernel') : allModes;
      // Each busy window takes CHURN_CLIENTS fresh clients (openNDS lists a client it deauthed again only later).
      const churnClients = busyWindow ? repeat * modes.length * (1 + warm) * CHURN_CLIENTS : 0;
      return { modes, clients: (modes.length > 0 ? n : 0) + churnClients, gateClients: 2 * n + first };
    })) {
      // The gate phase's clients are fresh ones (gateLatency): n listed one at a time, n at once, `first` unlisted.
      const gateClients = gate ? 2 * n + first : 0;
      const churnClients = busyWindow ? repeat * modes.length * (1 + warm) * CHURN_CLIENTS : 0;
      const lab = await Lab.up({
        clients: (modes.length > 0 ? n : 0) + churnClients + gateClients,
        rate: null,
        // sluice's gate lets an unpaid device reach the pay page (its http.listen) itself.
        ...(portal.sluice === true
          ? { sluice: true }
          : {
              // The quickstart's BinAuth on 9.10 too (10.x labs always run it): a deauth then goes by its token.
              binauth: true,
              // The pay page's port open to clients (the quickstart's users_to_router): the customers ask its API.
              theme: PAY_PAGE_LISTEN,
            }),
        ...(portal.prefix !== undefined && { openndsPrefix: portal.prefix }),
      });
      // The metered phase's clients come first, then the busy windows'; the gate phase takes the rest.
      const metered = modes.length > 0 ? lab.clients.slice(0, n) : [];
      const seconds = secondsArg !== '' ? Number(secondsArg) : WINDOW_ROUNDS * lab.checkinterval;
      const fresh = lab.clients.slice(metered.length, metered.length + churnClients);
      const loops: ChildProcess[] = [];
      try {
        // openNDS lists a client once it has seen its traffic: one request each, then one listing until all are there.
        // No loops before the gates open: 64 preauthenticated clients each hitting the splash page every few seconds
        // made openNDS 9.10 exit ("Fatal error in GNU libmicrohttpd daemon.c:3831: Failed to remove FD from epoll
        // set").
        await Promise.all(metered.map((c) => lab.fetch(c, '/ping', 2)));
        if (metered.length > 0 && !portal.sluice)
          await waitFor(
            `openNDS to list ${n} clients`,
            60_000 + n * 1000,
            async () => {
              const clients = await portalListing(lab);
              if (clients !== null && Object.keys(clients).length >= n) return true;
              // A client whose one request openNDS did not see (a lost SYN, a slow start) requests again.
              const listed = new Set(Object.keys(clients ?? {}).map((m) => m.toLowerCase()));
              await Promise.all(metered.filter((c) => !listed.has(c.mac)).map((c) => lab.fetch(c, '/ping', 2)));
              return undefined;
            },
            2000,
          );
        // The 'portal' mode's nft: everything but the counters' JSON dump (an nft without JSON output, for them).
        const nocount = join(lab.dir, 'nft-nocount');
        writeFileSync(
          nocount,
          '#!/bin/sh\ncase "$*" in *-j*sluice_count*) echo "Error: JSON output support not compiled-in" >&2; ' +
            'exit 1;; esac\nexec nft "$@"\n',
        );
        chmodSync(nocount, 0o755);
        const nftLine = (mode: string): string =>
          mode === 'portal' ? `\toption nft '${nocount}'` : `\toption nft 'nft'`;
        const s = await Sluice.start(lab, {
          pollInterval: 2,
          // The package's checkpoint interval (the e2e harness's 5 s wrote the usage to flash 60 times as often).
          checkpointInterval: 300,
          mainOptions: [nftLine(modes[0] ?? 'kernel')],
          extraConfig: HTTP_SECTION,
        });
        if (metered.length > 0) {
          for (const c of metered) await s.callInProcess('grant', { mac: c.mac, bytes: 1024 * 1024 * 1024 });
          let authenticated = 0;
          const grantsDone = performance.now();
          // Sluice's view of each gate (open once openNDS answered its auth), not openNDS's full listing: at 64 clients
          // with no traffic yet (their neighbour entries gone: 1 s per client in get_client_interface.sh) one listing
          // outlasted lab.ndsctl's 10 s, so that wait never ended (2026-11-25: all 64 'gate open' in sluice's log).
          await waitFor(
            'every gate open',
            60_000 + n * 2000,
            async () => {
              const shut: Client[] = [];
              for (const c of metered) {
                const v = (await s.callInProcess('session', { mac: c.mac }).catch(() => ({}))) as {
                  session?: { gate?: string };
                };
                if (v.session?.gate !== 'open') shut.push(c);
              }
              authenticated = metered.length - shut.length;
              // sluice's own gate opens a device the router's neighbour table holds: one whose entry went while the
              // grants before it were made asks again (as a phone keeps asking for the pay page).
              if (portal.sluice === true) await Promise.all(shut.map((c) => lab.fetch(c, '/ping', 2)));
              return shut.length === 0 ? true : undefined;
            },
            2000,
          ).catch(async (err: unknown) => {
            // What held the gates: the portal's count, sluice's view of each gate, and its log's warnings.
            const pending: string[] = [];
            for (const c of metered) {
              const v = (await s.callInProcess('session', { mac: c.mac }).catch(() => ({}))) as {
                session?: { gate?: string };
              };
              if (v.session?.gate !== 'open') pending.push(`${c.mac}:${v.session?.gate ?? '?'}`);
            }
            console.log(
              `# portal-cpu ${n} clients: ${authenticated} gates open in sluice's view; not ` +
                `open: ${pending.length} ${pending.slice(0, 8).join(' ')}`,
            );
            console.log(
              s
                .logTail(400)
                .split('\n')
                .filter((l) => /warn|error|ERR_|timed out|gate/i.test(l))
                .slice(-40)
                .join('\n'),
            );
            throw err;
          });
          console.log(
            `# portal-cpu ${n} clients: every gate open ${Math.round((performance.now() - grantsDone) / 1000)} s ` +
              `after the last grant's reply (load ${loadavg()[0]!.toFixed(2)})`,
          );
          loops.push(...traffic(lab, metered));
          // No portal process with sluice's own gate: its idle is nothing, not sampled.
          const nds = portal.sluice === true ? null : Number(readFileSync(join(lab.dir, 'opennds.pid'), 'utf8').trim());
          const portalPids = (): Record<string, number> => (nds === null ? {} : { nds });
          const noPortal = { perS: { nds: 0 } as Record<string, number>, load: Math.round(loadavg()[0]! * 100) / 100 };
          await s.stopDaemon();
          await sleep(3000);
          // openNDS's idle is sampled again after each window (sluice stopped), and a window's figure subtracts the
          // mean of the idles on either side of it: openNDS's own work drifts as the window's customers join its list.
          let idle = nds === null ? noPortal : await sample(portalPids(), seconds);
          if (nds !== null)
            rows.push({
              portal: portal.name,
              clients: n,
              phase: 'idle',
              opennds_ms_s: idle.perS.nds!,
              sluice_ms_s: 0,
              hotspot_ms_s: idle.perS.nds!,
              metering_ms_s: 0,
              listings: '',
              load: idle.load,
            });
          let freshUsed = 0;
          for (const mode of Array.from({ length: repeat }, () => modes).flat()) {
            const conf = readFileSync(s.config, 'utf8').replace(/\toption nft '[^']*'/, nftLine(mode));
            writeFileSync(s.config, conf);
            // The window starts once the start-up reconcile is done (its listing: at 64 clients openNDS 10.3.1 takes
            // seconds of CPU for it, a daemon's start, not metering) and a few ticks after it.
            const reconciled = (): number => (s.logTail(1_000_000).match(/reconciled with portal/g) ?? []).length;
            const reconciledBefore = reconciled();
            await s.startDaemon();
            await waitFor(
              'the start-up reconcile',
              180_000,
              async () => (reconciled() > reconciledBefore ? true : undefined),
              1000,
            ).catch(() => console.log('# portal-cpu: no "reconciled with portal" line within 180 s'));
            await sleep(8000);
            for (let i = 0; i < warm; i++) await warmUp(lab, s, fresh.slice(freshUsed, (freshUsed += CHURN_CLIENTS)));
            const pid = s.daemonPid;
            if (pid === null) throw new Error('the sluice daemon is not running');
            type MeterStats = {
              meter?: {
                usage_from?: string;
                portal_listings?: number;
                portal_listings_by_reason?: Record<string, number>;
                ticks_ok?: number;
              };
              gates?: Record<string, number>;
            };
            const window = busyWindow ? fresh.slice(freshUsed, (freshUsed += CHURN_CLIENTS)) : [];
            // The window's customers visit the splash page first (listed Preauthenticated), as a café's do.
            // openNDS 9.10 at 64 clients once did not list them within 204 s: that window is measured without them.
            const listed =
              window.length > 0 &&
              (await listFresh(lab, window).then(
                () => true,
                (err: unknown) => (
                  console.log(`# portal-cpu: no customers this window: ${(err as Error).message}`),
                  false
                ),
              ));
            // The visits' work done before the window starts: it is the splash page's, not metering's.
            if (listed && nds !== null) await openNdsQuiet(nds);
            const before = (await s.callInProcess('stats', {}).catch(() => ({}))) as MeterStats;
            const splitBefore = splitCpu(pid);
            const windowStart = performance.now();
            const [m, arrivals] = await Promise.all([
              sample({ ...portalPids(), sluice: pid }, seconds).catch((err: unknown) => {
                // Who died, and what it said, before the lab goes down with its logs.
                console.log(`# portal-cpu: ${(err as Error).message}; sluice's log:\n${s.logTail(60)}`);
                if (nds !== null)
                  console.log(`# openNDS's log:\n${readFileSync(join(lab.dir, 'opennds.log'), 'utf8').slice(-3000)}`);
                throw err;
              }),
              listed ? churn(s, window) : undefined,
            ]);
            if (arrivals) loops.push(...arrivals.loops);
            const split = splitSaid(splitBefore, splitCpu(pid), (performance.now() - windowStart) / 1000);
            const stats = (await s.callInProcess('stats', {}).catch(() => ({}))) as MeterStats;
            const outcome = arrivals ? await arrivals.outcome() : '';
            const listings = (stats.meter?.portal_listings ?? NaN) - (before.meter?.portal_listings ?? NaN);
            // What asked for them (meter/listing-policy.ts's reasons).
            const why = Object.entries(stats.meter?.portal_listings_by_reason ?? {})
              .map(([k, n]) => [k, n - (before.meter?.portal_listings_by_reason?.[k] ?? 0)] as const)
              .filter(([, n]) => n > 0)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ');
            // The valve's calls in the window, by kind (auth, deauth, json_one, json_all): what the portal was asked.
            const calls = Object.entries(stats.gates ?? {})
              .filter(([k]) => k.startsWith('portal_'))
              .map(([k, n]) => `${k.slice(7)} ${n - (before.gates?.[k] ?? 0)}`)
              .join(', ');
            // The daemon's memory at the window's end (its threads' too; not the nft shells'): what more clients cost.
            const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
            await s.stopDaemon();
            await sleep(3000);
            const idleAfter = nds === null ? noPortal : await sample(portalPids(), seconds);
            const idleMean = Math.round(((idle.perS.nds! + idleAfter.perS.nds!) / 2) * 10) / 10;
            const idleSaid = `idle ${idle.perS.nds} before, ${idleAfter.perS.nds} after`;
            idle = idleAfter;
            const ndsWindow = m.perS.nds ?? 0;
            const above = Math.max(0, ndsWindow - idleMean);
            rows.push({
              portal: portal.name,
              clients: n,
              phase: busyWindow ? `${mode} busy` : mode,
              opennds_ms_s: ndsWindow,
              sluice_ms_s: m.perS.sluice!,
              hotspot_ms_s: Math.round((ndsWindow + m.perS.sluice!) * 10) / 10,
              metering_ms_s: Math.round((above + m.perS.sluice!) * 10) / 10,
              listings,
              load: m.load,
            });
            console.log(
              `# portal-cpu openNDS ${portal.name}, ${n} clients, '${mode}' (usage ` +
                `from ${stats.meter?.usage_from ?? '?'}, ${listings} listings in the window` +
                (why === '' ? ', ' : ` (${why}), `) +
                `calls: ${calls || 'none'}, ` +
                `${(stats.meter?.ticks_ok ?? NaN) - (before.meter?.ticks_ok ?? NaN)} ticks in ${seconds} s): ` +
                (nds === null ? 'no portal process, ' : `openNDS ${ndsWindow} ms/s (${idleSaid}), `) +
                `sluice ${m.perS.sluice} ms/s (${split}) → metering ${rows.at(-1)!.metering_ms_s} ms/s ` +
                `(load ${m.load}; conntrack buckets ${buckets}); ` +
                `sluice's RSS ${rss === undefined ? '?' : (Number(rss) / 1024).toFixed(1)} MB` +
                (arrivals ? `; customers: ${outcome}` : ''),
            );
          }
        }
        if (gate) {
          if (metered.length > 0) {
            writeFileSync(s.config, readFileSync(s.config, 'utf8').replace(/\toption nft '[^']*'/, nftLine('kernel')));
            await s.startDaemon();
          }
          for (let i = 0; i < busy; i++) loops.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
          await sleep(8000);
          const g = await gateLatency(lab, s, lab.clients.slice(metered.length + churnClients), n, first, again).catch(
            (err: unknown) => {
              // openNDS 9.10 can die of a divide error in its client refresh (docs/captive-portal.md "Portal
              // restarts"):
              // the lab does not respawn it as procd would, so say so.
              let alive = true;
              try {
                if (!portal.sluice) process.kill(Number(readFileSync(join(lab.dir, 'opennds.pid'), 'utf8').trim()), 0);
              } catch {
                alive = false;
              }
              const why = `${(err as Error).message}${alive ? '' : ' (openNDS had exited)'}`;
              console.log(`# portal-cpu ${n} clients: gate latency not measured: ${why}`);
              return null;
            },
          );
          if (g !== null) gates.push({ clients: n, ...g });
          if (g !== null)
            console.log(
              `# portal-cpu ${n} fresh clients listed, kernel path: gate open one at a time ` +
                `p50 ${g.p50} ms, p99 ${g.p99} ms, max ${g.max} ms` +
                (g.oneKernel !== '' ? ` (kernel p50 / p99 ${g.oneKernel} ms)` : '') +
                ` (load ${g.loadOne}; the daemon's CPU, ` +
                `main thread/all, ${g.cpuOne} ms a grant); ` +
                `${n} at once: each open p50 ${g.atOnceP50} ms, p99 ${g.atOnceP99} ms after its grant` +
                (g.atOnceKernel !== '' ? ` (kernel p50 / p99 ${g.atOnceKernel} ms)` : '') +
                `, ` +
                `all open ${g.allAtOnceMs} ms after the first grant (${g.listedAll} listed, ` +
                `load ${g.loadAll}; the daemon's CPU ${g.cpuAll} ms for the ${n})` +
                (g.again !== '' ? `; again at once, each p50 / p99: ${g.again}` : '') +
                (first > 0
                  ? `; granted before listed, first 200 from the upstream after the first request: ${g.first} ms ` +
                    `(load ${g.firstLoads})`
                  : '') +
                `; replies ${g.replies}; conntrack buckets ${buckets}`,
            );
        }
        await s.stop();
      } catch (err) {
        // The lab does not respawn a portal that exits, as procd would: this lab's figures end here, the next lab's
        // are still measured (openNDS 10.3.1 exited in a second busy window at 32 clients at load 17-19).
        console.log(`# portal-cpu openNDS ${portal.name}, ${n} clients: stopped: ${(err as Error).message}`);
      } finally {
        for (const l of loops) l.kill('SIGKILL');
        await lab.down();
      }
    }
  const summary = sideBySide(rows);
  if (argv.includes('--json')) console.log(JSON.stringify({ rows, gates, summary, conntrack_buckets: buckets }));
  else {
    console.log(`# portal-cpu: the figures below with conntrack buckets ${buckets}`);
    console.table(rows);
    if (gates.length > 0) console.table(gates);
    else console.log('# portal-cpu: no gate-open figures (--gate none, or every gate phase failed: see above)');
    console.table(summary);
  }
}

type LabPlan = { n: number; modes: string[]; gate: boolean };

/** The lab's client namespaces (test/e2e/lab.sh: its DHCP range). */
const LAB_MAX_CLIENTS = 99;

/**
 * The labs a portal's run brings up, in order: one per client count with its metering windows and, when `gateAt` names
 * that count, its gate phase; the gate phase in a lab of its own when both would not fit in one (32 metered clients,
 * a busy window's 5 and the gate phase's 64 fresh ones are 101).
 */
function labPlans(
  sizes: readonly number[],
  gateAt: readonly number[],
  need: (n: number) => { modes: string[]; clients: number; gateClients: number },
): LabPlan[] {
  return sizes.flatMap((n): LabPlan[] => {
    const { modes, clients, gateClients } = need(n);
    if (!gateAt.includes(n)) return [{ n, modes, gate: false }];
    if (modes.length === 0 || clients + gateClients <= LAB_MAX_CLIENTS) return [{ n, modes, gate: true }];
    return [
      { n, modes, gate: false },
      { n, modes: [], gate: true },
    ];
  });
}

/**
 * The portals side by side: for each portal and client count, the means of its kernel-path windows (the router's whole
 * CPU for the hotspot, the portal's idle, sluice's part) and the growth of the whole per added client from the client
 * count before.
 */
function sideBySide(rows: readonly Row[]): Array<Record<string, number | string>> {
  const mean = (xs: number[]): number =>
    xs.length === 0 ? NaN : Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10;
  const out: Array<Record<string, number | string>> = [];
  for (const portal of [...new Set(rows.map((r) => r.portal))]) {
    let before: { clients: number; hotspot: number } | undefined;
    const sizes = [...new Set(rows.filter((r) => r.portal === portal).map((r) => r.clients))].sort((a, b) => a - b);
    for (const clients of sizes) {
      const of = rows.filter((r) => r.portal === portal && r.clients === clients);
      const windows = of.filter((r) => r.phase.startsWith('kernel'));
      if (windows.length === 0) continue;
      const hotspot = mean(windows.map((r) => r.hotspot_ms_s));
      const idle = of.filter((r) => r.phase === 'idle').map((r) => r.opennds_ms_s);
      out.push({
        portal,
        clients,
        windows: windows.length,
        hotspot_ms_s: hotspot,
        portal_idle_ms_s: idle.length === 0 ? 0 : mean(idle),
        sluice_ms_s: mean(windows.map((r) => r.sluice_ms_s)),
        per_added_client:
          before === undefined ? '' : Math.round(((hotspot - before.hotspot) / (clients - before.clients)) * 100) / 100,
        load: windows.map((r) => r.load).join('/'),
      });
      before = { clients, hotspot };
    }
  }
  return out;
}
