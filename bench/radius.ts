// `npm run bench -- radius [--records N] [--inflight 1,8,32,64] [--clients 10000] [--disconnects 200]`
// 1. Accounting: N Stop records (durable, through the shared outbox and the ack log) delivered to a real FreeRADIUS
//    (threaded, not -X) with bounded in-flight: records per second from the first append to the last acknowledgement.
// 2. Disconnect: Disconnect-Request → Disconnect-ACK round trip (p50/p99) measured by a prober in another process,
//    while the real Meter ticks `clients` clients back to back (worker pool, a simulated portal in a third process)
//    and every tick's usage goes to the RADIUS sink: on purpose far more often than the daemon's once per checkpoint
//    (main.checkpoint_interval, 300 s by default; the sinks hear usage only once the journal wrote it), so every tick
//    is the worst one, the one a checkpoint's usage reaches the sinks on. Prints figures; asserts nothing.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lines } from './lib/child-lines.ts';
import { createLogger } from '../src/log.ts';
import { SessionManager, type Session } from '../src/sessions/index.ts';
import { MemoryStore } from '../src/sessions/memory-store.ts';
import { Meter, sessionManagerPort } from '../src/meter/index.ts';
import { simulatedMac } from '../src/sim/traffic.ts';
import { SinkHost } from '../src/upstream/index.ts';
import { RadiusUpstream } from '../src/upstream/radius/upstream.ts';
import { RadiusAccounting } from '../src/upstream/radius/accounting.ts';
import { RadiusClient } from '../src/radius/client.ts';
import { configFromUci } from '../src/config/load.ts';
import { parseUci } from '../src/config/uci.ts';
import { FreeRadius } from '../test/peers/freeradius.ts';
import { freePort } from '../test/helpers/net.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');
const arg = (argv: string[], name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
};
const quiet = createLogger({ level: 'error' });

function session(i: number, now: number): Session {
  return {
    id: i.toString(16).padStart(16, '0'),
    mac: simulatedMac(i),
    ip: null,
    user: null,
    plan: null,
    metric: 'bytes',
    allotment: 1n << 30n,
    used: 5 * 2 ** 30,
    bytes: i * 1000 + 5 * 2 ** 30,
    createdAt: now - 60_000,
    startedAt: now - 60_000,
    expiresAt: null,
    endedAt: now,
    state: 'EXPIRED',
    endCause: 'data-limit',
    payments: [],
  };
}

async function accountingThroughput(
  radius: FreeRadius,
  records: number,
  inflight: number,
): Promise<{ perSecond: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-radius-'));
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: radius.acctPort, secret: radius.secret }],
    timeoutMs: 2000,
    retries: 3,
    maxInFlight: 255,
  });
  const acct = new RadiusAccounting({
    dir,
    maxBytes: 64 << 20,
    client: () => client,
    nas: () => ({ identifier: 'bench', ip: '127.0.0.1', calledStationId: 'bench' }),
    interimMs: () => 3_600_000,
    maxInFlight: inflight,
    log: quiet,
    session: () => null,
    recovered: () => ({ active: [], ended: [] }),
  });
  await acct.start();
  const now = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < records; i++) acct.onEvent({ type: 'ended', at: now, session: session(i, now) });
  while ((acct.stats().delivered as Record<string, number>).Stop! < records) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - t0) / 1000;
  await acct.close();
  await client.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: records / seconds, seconds };
}

async function disconnectLatency(
  radius: FreeRadius,
  clients: number,
  disconnects: number,
): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-das-'));
  const sock = join(dir, 'ndsctl.sock');
  const portal = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'meter', 'portal-server.ts'), sock, String(clients), 'opennds', '40', '1'],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: root },
  );
  await lines(portal)();
  const manager = await SessionManager.open({ store: new MemoryStore(), checkpointIntervalMs: 3_600_000 });
  const ids: string[] = [];
  for (let i = 0; i < clients * 1.2; i++) {
    const { session } = await manager.activate({
      mac: simulatedMac(i),
      metric: 'bytes',
      allotment: 1n << 60n,
      payment: { method: 'grant', reference: `bench-${i}`, amount: 1n, asset: 'X', at: Date.now() },
    });
    if (i < disconnects) ids.push(session.id);
  }
  const coaPort = await freePort();
  const config = configFromUci(
    parseUci(
      `config sluice 'main'\n\toption state_dir '${dir}'\nconfig pricing 'p'\n\toption price_per_step 1\n` +
        `config radius 'radius'\n\toption enabled 1\n\toption server 127.0.0.1\n\toption ` +
        `acct_port ${radius.acctPort}\n\toption secret ${radius.secret}\n` +
        `\toption coa_port ${coaPort}\n\toption coa_listen 127.0.0.1\n\toption nas_ip 127.0.0.1\n`,
      'bench',
    ),
  );
  const upstream = RadiusUpstream.fromConfig(config, {
    log: quiet,
    stateDir: dir,
    sessions: manager,
    recovered: () => ({ active: manager.list({ state: 'ACTIVE' }), ended: [] }),
    closeGate: async () => undefined,
  })!;
  const host = new SinkHost({ log: quiet });
  host.add(upstream);
  host.attach(manager);
  // Each tick's usage handed to the sinks as if a checkpoint had just written it: the daemon's sinks hear usage once
  // per checkpoint (the manager's `usage-written`, which this manager's hour-long interval never reaches here).
  manager.on('usage', (batch) => host.usage(batch));
  await host.start();
  let ticks = 0;
  const tickMs: number[] = [];
  const meter = new Meter({
    source: { kind: 'socket', path: sock },
    pollIntervalMs: 10_000,
    sessions: sessionManagerPort(manager),
    workerPath: join(root, 'dist', 'usage-worker.mjs'),
    fetchTimeoutMs: 30_000,
    initialCapacity: clients * 1.3,
  });
  let ticking = true;
  const loop = (async () => {
    while (ticking) {
      const t0 = performance.now();
      await meter.tick();
      tickMs.push(performance.now() - t0);
      ticks++;
    }
  })();
  while (ticks < 3) await new Promise((r) => setTimeout(r, 50));
  const idsFile = join(dir, 'ids.json');
  writeFileSync(idsFile, JSON.stringify(ids));
  const probe = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'radius', 'probe.ts'), String(coaPort), radius.secret, idsFile, '20'],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
  );
  const result = JSON.parse(await lines(probe)()) as { rtts: number[]; acks: number };
  ticking = false;
  await loop;
  await meter.close();
  await host.close();
  await manager.close();
  portal.stdin!.end();
  rmSync(dir, { recursive: true, force: true });
  return {
    p50_ms: pct(result.rtts, 50),
    p99_ms: pct(result.rtts, 99),
    max_ms: Math.max(...result.rtts),
    acks: result.acks,
    requests: result.rtts.length,
    ticks_meanwhile: ticks,
    tick_p50_ms: pct(tickMs, 50),
  };
}

export default async function main(argv: string[]): Promise<void> {
  const records = Number(arg(argv, '--records', '5000'));
  const inflights = arg(argv, '--inflight', '1,8,32,64').split(',').map(Number);
  const clients = Number(arg(argv, '--clients', '10000'));
  const disconnects = Number(arg(argv, '--disconnects', '200'));
  const radius = await FreeRadius.start({ debug: false });
  try {
    console.log(`radius accounting: ${records} Stop records (durable) to FreeRADIUS 3.2 (threaded), per max in-flight`);
    for (const inflight of inflights) {
      const r = await accountingThroughput(radius, records, inflight);
      console.log(
        `  in-flight ${String(inflight).padStart(3)}: ${r.perSecond.toFixed(0).padStart(6)} records/s ` +
          `(${r.seconds.toFixed(2)} s)`,
      );
    }
    console.log(
      `radius Disconnect → ACK while the meter ticks ${clients} clients back to back (${disconnects} requests, ` +
        '20 ms apart)',
    );
    const d = await disconnectLatency(radius, clients, disconnects);
    console.log(
      `  p50 ${d.p50_ms!.toFixed(2)} ms, p99 ${d.p99_ms!.toFixed(2)} ms, max ${d.max_ms!.toFixed(2)} ` +
        `ms; ${d.acks}/${d.requests} ACK; ` +
        `${d.ticks_meanwhile} ticks meanwhile (tick p50 ${d.tick_p50_ms!.toFixed(0)} ms)`,
    );
  } finally {
    await radius.close();
  }
}
