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
// With <live> (the scale row, issue 28 item 3), only that many devices hold a session before the window, half data and
// half time (alternating), instead of every device; the line then also carries the process's peak RSS.
// argv: <ndsctl.sock> <clients> <purchase MACs file> <purchases> <seconds> <usage-worker.mjs> [<live>]
import { readFileSync } from 'node:fs';
import { Meter, sessionManagerPort } from '../../src/meter/index.ts';
import { MemoryStore, SessionManager } from '../../src/sessions/index.ts';
import { simulatedMac } from '../../src/sim/traffic.ts';
import { Valve } from '../../src/portal/index.ts';
import { Gatekeeper } from '../../src/gate/gatekeeper.ts';
import { createLogger } from '../../src/log.ts';

const [socketPath, clientsArg, macsFile, purchasesArg, secondsArg, workerPath, liveArg] = process.argv.slice(2);
const live = liveArg === undefined ? Infinity : Number(liveArg);
const clients = Number(clientsArg);
const purchases = Number(purchasesArg);
const seconds = Number(secondsArg);
const POLL_MS = 1000;
const buyers = readFileSync(macsFile!, 'utf8').split(',').slice(0, purchases);
if (buyers.length < purchases) throw new Error(`only ${buyers.length} preauthenticated clients for ${purchases} purchases`);
const buyerSet = new Set(buyers);
const log = createLogger({ level: 'error' });

const manager = await SessionManager.open({ store: new MemoryStore(), checkpointIntervalMs: 3_600_000 });
let activated = 0;
for (let i = 0; i < clients * 1.2 && activated < live; i++) {
  const mac = simulatedMac(i);
  if (buyerSet.has(mac)) continue;
  const time = live !== Infinity && activated % 2 === 1;
  await manager.activate({ mac, metric: time ? 'seconds' : 'bytes', allotment: time ? 86_400n : 1n << 60n,
    payment: { method: 'grant', reference: `bench-${i}`, amount: 1n, asset: 'X', at: Date.now() } });
  activated++;
}
const valve = new Valve({ command: ['/usr/bin/ndsctl'], socketPath: () => socketPath!, flavour: 'opennds', timeoutMs: 30_000 });
const gates = new Gatekeeper({ valve, sessions: manager, log });
const starts: number[] = [];
const durations: number[] = [];
const fetches: number[] = [];
/** From the tick's start to when its snapshot was asked for: the wait for the portal queue (calls ahead of it). */
const waits: number[] = [];
let measuring = false;
const meter = new Meter({
  source: { kind: 'socket', path: socketPath! }, flavour: 'opennds', pollIntervalMs: POLL_MS, sessions: sessionManagerPort(manager),
  portal: valve, workerPath: workerPath!, fetchTimeoutMs: 30_000, initialCapacity: clients * 1.3,
  onTick: (r) => {
    if (!measuring) return;
    starts.push(performance.now() - r.durationMs);
    durations.push(r.durationMs);
    fetches.push(r.fetchMs);
    waits.push(Math.max(0, r.at - (Date.now() - r.durationMs)));
  },
});
gates.on('auth-starting', (mac, id) => meter.authStarting(mac, id));
gates.on('auth-finished', (mac, id, result) => meter.authFinished(mac, id, result));
gates.on('opened', (s) => meter.sessionStarted(s.mac));
let cuts = 0;
manager.on('ended', (s) => {
  if (measuring && s.endCause === 'data-limit') cuts++;
});
meter.start();
await new Promise((r) => setTimeout(r, 3 * POLL_MS)); // warm-up: a few scheduled ticks

measuring = true;
const t0 = performance.now();
const gateMs: number[] = [];
let pending = 0;
const inFlight: Promise<void>[] = [];
for (let k = 0; k < purchases; k++) {
  const due = t0 + (k * seconds * 1000) / purchases;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const mac = buyers[k]!;
  inFlight.push((async () => {
    const asked = performance.now();
    const { session } = await manager.activate({ mac, metric: 'bytes', allotment: BigInt((1 + (k % 8)) << 20),
      payment: { method: 'grant', reference: `buy-${k}`, amount: 1n, asset: 'X', at: Date.now() } });
    const gate = await gates.opened(session);
    if (gate === 'pending') pending++;
    else gateMs.push(performance.now() - asked);
  })());
}
await Promise.all(inFlight);
const left = t0 + seconds * 1000 - performance.now();
if (left > 0) await new Promise((r) => setTimeout(r, left));
measuring = false;
const windowS = (performance.now() - t0) / 1000;
await meter.close();
await valve.shutdown();
await manager.close();
const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(JSON.stringify({ gaps, durations, fetches, waits, gateMs, pending, cuts, windowS, poll_ms: POLL_MS, live: activated,
  rss_peak_mb: hwm ? Math.round(Number(hwm[1]) / 1024) : null }) + '\n');
process.exit(0);
