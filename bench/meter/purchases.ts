// The measured process of the meter bench's purchases row, bundled and run with plain node like run.ts. The daemon's
// parts wired as the daemon wires them: SessionManager (memory store), Valve over the portal's control socket,
// Gatekeeper (auth observer = the Meter), the Meter ticking on its own schedule with poll_interval 1 s and its worker
// pool fetching over the same socket. A data session for every simulated device but the purchase MACs; after warm-up,
// `purchases` purchases of 1–8 MiB (activate → gate open → meter.sessionStarted, as the daemon's backend does) arrive
// evenly over `seconds`, and data-limit ends close their gates. Prints one JSON line: tick gaps (start to start) and
// durations during that window (and the fetch part of each: the simulated portal renders its whole list in JavaScript
// for every `json`, a cost the portal's, not sluice's), gate-open latencies (a purchase's auth waits for a tick's
// fetch in progress: the portal serves one request at a time), cuts; `pending` purchases are for clients the portal
// dropped meanwhile (the simulator's departures).
// With <live> (the scale row), only that many devices hold a session before the window, half data and
// half time (alternating), instead of every device; the line then also carries the process's peak RSS.
// Each purchase carries its client's address, as the LAN endpoint's do (SLUICE_BENCH_NO_IP=1: none, as a ubus purchase
// without `ip`). On stderr: where each purchase's gate-open time went (phases: activate, the wait for the portal
// queue, the `json <mac>` lookup, the auth, the main-thread turn after it), the portal calls per class (queue wait,
// time held), the event-loop delay; SLUICE_BENCH_TRACE=1 adds the slowest purchases with the calls that ran ahead.
// argv: <ndsctl.sock> <clients> <purchase MACs file> <purchases> <seconds> <usage-worker.mjs> [<live>]
import { readFileSync } from 'node:fs';
import { Meter, sessionManagerPort } from '../../src/meter/index.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { simulatedMac } from '../../src/sim/traffic.ts';
import { Valve } from '../../src/portal/index.ts';
import { Gatekeeper } from '../../src/gate/gatekeeper.ts';
import { createLogger } from '../../src/log.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [socketPath, clientsArg, macsFile, purchasesArg, secondsArg, workerPath, liveArg] = process.argv.slice(2);
const live = liveArg === undefined ? Infinity : Number(liveArg);
const clients = Number(clientsArg);
const purchases = Number(purchasesArg);
const seconds = Number(secondsArg);
const POLL_MS = 1000;
const buyers = readFileSync(macsFile!, 'utf8').split(',').slice(0, purchases);
if (buyers.length < purchases)
  throw new Error(`only ${buyers.length} preauthenticated clients for ${purchases} purchases`);
const buyerSet = new Set(buyers);
const log = createLogger({ level: 'error' });

const manager = await SessionManager.open({ store: new MemoryStore(), checkpointIntervalMs: 3_600_000 });
let activated = 0;
for (let i = 0; i < clients * 1.2 && activated < live; i++) {
  const mac = simulatedMac(i);
  if (buyerSet.has(mac)) continue;
  const time = live !== Infinity && activated % 2 === 1;
  await manager.activate({
    mac,
    metric: time ? 'seconds' : 'bytes',
    allotment: time ? 86_400n : 1n << 60n,
    payment: { method: 'grant', reference: `bench-${i}`, amount: 1n, asset: 'X', at: Date.now() },
  });
  activated++;
}
const valve = new Valve({
  command: ['/usr/bin/ndsctl'],
  socketPath: () => socketPath!,
  flavour: 'opennds',
  timeoutMs: 30_000,
});
const gates = new Gatekeeper({ valve, sessions: manager, log });
// Per purchase, where its gate-open time goes (printed on stderr): activate, the gate's turn (activate → the
// gatekeeper's auth-starting), the wait for the portal queue (→ its slot starts), the `json <mac>` lookup, what runs
// between the lookup and the auth (the kernel quota, the shaper), the auth, and the main-thread turn after it.
interface Phases {
  asked?: number;
  activated?: number;
  authStarting?: number;
  slot?: number;
  lookupEnd?: number;
  authStart?: number;
  authEnd?: number;
  authFinished?: number;
  done?: number;
  ahead?: string;
}
const phases = new Map<string, Phases>();
const phase = (mac: string): Phases => {
  let p = phases.get(mac);
  if (!p) phases.set(mac, (p = {}));
  return p;
};
/** Every queued portal call: its class, when it was queued, started and ended, and the commands it ran. */
interface Call {
  priority: string;
  queued: number;
  started?: number;
  ended?: number;
  cmds: string[];
}
const calls: Call[] = [];
const runner = valve.runner;
const runExclusive = runner.runExclusive.bind(runner);
runner.runExclusive = ((fn: Parameters<typeof runExclusive>[0], priority?: Parameters<typeof runExclusive>[1]) => {
  const call: Call = { priority: priority ?? 'auth', queued: performance.now(), cmds: [] };
  if (measuring) calls.push(call);
  return runExclusive(async (exec) => {
    call.started = performance.now();
    try {
      return await fn(async (args) => {
        const mac = args[1] ?? '';
        const buying = buyerSet.has(mac) && measuring;
        call.cmds.push(args.length > 1 ? `${args[0]} ${mac}` : args[0]!);
        if (buying && (args[0] === 'json' || args[0] === 'auth') && phase(mac).slot === undefined) {
          phase(mac).slot = performance.now();
          const from = phases.get(mac)!.authStarting ?? Infinity;
          const ahead = calls.filter(
            (c) => c !== call && c.started !== undefined && (c.ended === undefined || c.ended > from),
          );
          phase(mac).ahead ??= ahead
            .map((c) => `${c.priority}:${((c.ended ?? performance.now()) - Math.max(from, c.started!)).toFixed(0)}`)
            .join(',');
        }
        if (buying && args[0] === 'auth') phase(mac).authStart ??= performance.now();
        const r = await exec(args);
        if (buying && args[0] === 'json' && phase(mac).authStart === undefined)
          phase(mac).lookupEnd ??= performance.now();
        if (buying && args[0] === 'auth') phase(mac).authEnd ??= performance.now();
        return r;
      });
    } finally {
      call.ended = performance.now();
    }
  }, priority);
}) as typeof runner.runExclusive;
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
const starts: number[] = [];
const durations: number[] = [];
const fetches: number[] = [];
/** From the tick's start to when its snapshot was asked for: the wait for the portal queue (calls ahead of it). */
const waits: number[] = [];
let measuring = false;
const meter = new Meter({
  source: { kind: 'socket', path: socketPath! },
  flavour: 'opennds',
  pollIntervalMs: POLL_MS,
  sessions: sessionManagerPort(manager),
  portal: valve,
  workerPath: workerPath!,
  fetchTimeoutMs: 30_000,
  initialCapacity: clients * 1.3,
  // As the daemon wires it: a cut's final reading is one `json <mac>` ('read'), not a whole 10k-client tick.
  readClient: (mac, onStart) => valve.client(mac, 'read', onStart),
});
meter.on('tick', (r) => {
  if (!measuring) return;
  starts.push(performance.now() - r.durationMs);
  durations.push(r.durationMs);
  fetches.push(r.fetchMs);
  waits.push(Math.max(0, r.at - (Date.now() - r.durationMs)));
});
gates.on('auth-starting', (mac, id) => {
  meter.authStarting(mac, id);
  phase(mac).authStarting ??= performance.now();
});
gates.on('auth-finished', (mac, id, result) => {
  meter.authFinished(mac, id, result);
  phase(mac).authFinished ??= performance.now();
});
gates.on('opened', (s) => meter.sessionStarted(s.mac));
let cuts = 0;
manager.on('ended', (s) => {
  if (measuring && s.endCause === 'data-limit') cuts++;
});
// Each buyer's address, as a purchase through the LAN endpoint carries it (the pay page's request came from that IP,
// which the endpoint resolved to the MAC through the portal's list before the payment). SLUICE_BENCH_NO_IP=1: none,
// as a ubus `purchase` without `ip` (the gate then looks the client up before its auth).
const buyerIp = new Map<string, string>();
if (process.env['SLUICE_BENCH_NO_IP'] !== '1') {
  for (const mac of buyers) {
    const c = await valve.client(mac, 'lookup');
    if (c?.ip) buyerIp.set(mac, c.ip);
  }
}
meter.start();
await new Promise((r) => setTimeout(r, 3 * POLL_MS)); // warm-up: a few scheduled ticks

measuring = true;
loopDelay.enable();
const t0 = performance.now();
const gateMs: number[] = [];
let pending = 0;
const inFlight: Promise<void>[] = [];
for (let k = 0; k < purchases; k++) {
  const due = t0 + (k * seconds * 1000) / purchases;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const mac = buyers[k]!;
  inFlight.push(
    (async () => {
      const asked = performance.now();
      phase(mac).asked = asked;
      const { session } = await manager.activate({
        mac,
        ip: buyerIp.get(mac) ?? null,
        metric: 'bytes',
        allotment: BigInt((1 + (k % 8)) << 20),
        payment: { method: 'grant', reference: `buy-${k}`, amount: 1n, asset: 'X', at: Date.now() },
      });
      phase(mac).activated = performance.now();
      const gate = await gates.opened(session);
      phase(mac).done = performance.now();
      if (gate === 'pending') {
        pending++;
        phases.delete(mac);
      } else gateMs.push(performance.now() - asked);
    })(),
  );
}
await Promise.all(inFlight);
const left = t0 + seconds * 1000 - performance.now();
if (left > 0) await new Promise((r) => setTimeout(r, left));
measuring = false;
loopDelay.disable();
const windowS = (performance.now() - t0) / 1000;
await meter.close();
await valve.shutdown();
await manager.close();
const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
{
  const q = (xs: number[], p: number): number => {
    const v = [...xs].sort((a, b) => a - b);
    return Math.round((v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? 0) * 10) / 10;
  };
  const spans: Record<string, number[]> = {
    activate: [],
    gateTurn: [],
    queue: [],
    lookup: [],
    between: [],
    auth: [],
    after: [],
    total: [],
  };
  const rows = [...phases.values()].filter(
    (p) => p.asked !== undefined && p.done !== undefined && p.authEnd !== undefined,
  );
  for (const p of rows) {
    spans['activate']!.push(p.activated! - p.asked!);
    spans['gateTurn']!.push(p.authStarting! - p.activated!);
    spans['queue']!.push(p.slot! - p.authStarting!);
    spans['lookup']!.push((p.lookupEnd ?? p.slot!) - p.slot!);
    spans['between']!.push(p.authStart! - (p.lookupEnd ?? p.slot!));
    spans['auth']!.push(p.authEnd! - p.authStart!);
    spans['after']!.push(p.done! - p.authEnd!);
    spans['total']!.push(p.done! - p.asked!);
  }
  const line = Object.entries(spans)
    .map(([k, v]) => `${k} ${q(v, 0.5)}/${q(v, 0.99)}/${q(v, 1)}`)
    .join('  ');
  process.stderr.write(`phases p50/p99/max ms (${rows.length} purchases): ${line}\n`);
  const ms = (ns: number): string => (ns / 1e6).toFixed(1);
  process.stderr.write(
    'event-loop delay p50/p99/max ' +
      `ms: ${ms(loopDelay.percentile(50))}/${ms(loopDelay.percentile(99))}/${ms(loopDelay.max)}\n`,
  );
  const byClass = new Map<string, { n: number; wait: number[]; held: number[] }>();
  for (const c of calls) {
    if (c.started === undefined || c.ended === undefined) continue;
    const e = byClass.get(c.priority) ?? { n: 0, wait: [], held: [] };
    e.n++;
    e.wait.push(c.started - c.queued);
    e.held.push(c.ended - c.started);
    byClass.set(c.priority, e);
  }
  for (const [k, e] of byClass)
    process.stderr.write(
      `  portal calls ${k}: ${e.n}, queue wait ` +
        `p50/p99/max ${q(e.wait, 0.5)}/${q(e.wait, 0.99)}/${q(e.wait, 1)} ms, held ` +
        `p50/p99/max ${q(e.held, 0.5)}/${q(e.held, 0.99)}/${q(e.held, 1)} ms\n`,
    );
  if (process.env['SLUICE_BENCH_TRACE']) {
    const slow = rows.sort((a, b) => b.done! - b.asked! - (a.done! - a.asked!)).slice(0, 8);
    for (const p of slow)
      process.stderr.write(
        `  slow: total ${(p.done! - p.asked!).toFixed(0)} activate ${(p.activated! - p.asked!).toFixed(0)} ` +
          `turn ${(p.authStarting! - p.activated!).toFixed(0)} queue ${(p.slot! - p.authStarting!).toFixed(0)} ` +
          `lookup ${((p.lookupEnd ?? p.slot!) - p.slot!).toFixed(0)} ` +
          `auth ${(p.authEnd! - p.authStart!).toFixed(0)} after ${(p.done! - p.authEnd!).toFixed(0)} ahead ` +
          `[${p.ahead}]\n`,
      );
  }
}
process.stdout.write(
  JSON.stringify({
    gaps,
    durations,
    fetches,
    waits,
    gateMs,
    pending,
    cuts,
    windowS,
    poll_ms: POLL_MS,
    live: activated,
    rss_peak_mb: hwm ? Math.round(Number(hwm[1]) / 1024) : null,
  }) + '\n',
);
process.exit(0);
