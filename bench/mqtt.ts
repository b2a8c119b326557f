// `npm run bench -- mqtt [--messages N] [--ticks N] [--sessions 1000,10000] [--changed 1,0.25] [--no-connected]`
// 1. messages/s from the MQTT sink (outbox → mqtt.js → a real mosquitto, QoS 1, 100 in flight) until all acknowledged;
// 2. main-thread time per tick spent building and queuing the usage report (SinkHost → MqttSink: figures lookup,
//    msgpack rows into the sink's reused buffer, outbox appendMany: CRC and one write()) at 1k and 10k active sessions
//    of a real SessionManager, with every session billed in every tick (changed 1: the worst case) or a fraction of
//    them (a report has a row only for a session the tick billed), then where the time of the largest goes (figures,
//    rows, append), and the JS memory the queued reports hold (the outbox keeps an index, not the payloads);
//    the broker is away (an outage: every report goes to the store and stays there, the worst case for the append);
// 3. bytes per session per report, msgpack and json;
// 4. the same tick with the broker connected: its CPU, and the CPU until the broker acknowledged its report.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { Mosquitto } from '../test/peers/mosquitto.ts';
import { MqttSink } from '../src/upstream/mqtt/sink.ts';
import { SinkHost } from '../src/upstream/host.ts';
import { SessionManager } from '../src/sessions/index.ts';
import { MemoryStore } from '../src/sessions/memory-store.ts';
import { createLogger } from '../src/log.ts';
import { loadMsgpack, RECORD_TYPE, usageParts } from '../src/upstream/mqtt/messages.ts';
import { Outbox } from '../src/upstream/outbox.ts';
import { MsgpackWriter, RowPrefixes } from '../src/upstream/mqtt/writer.ts';
import type { UsageReport } from '../src/meter/ports.ts';
import { mqttConfig } from '../test/upstream/mqtt-config.ts';
import { tempDir } from '../test/upstream/mqtt-rig.ts';

// msgpackr is read when the MQTT sink opens its queue (messages.ts); the bench encodes without a sink.
await loadMsgpack();

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

const quiet = () => {
  const log = createLogger();
  log.level = 'error';
  return log;
};

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Hang guards, not timing goals: a loaded machine (load 15) took more than 5 s to see the sink connected. */
async function until(what: string, cond: () => boolean, ms: number, state: () => unknown): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) {
      const load = loadavg()[0]!.toFixed(1);
      throw new Error(`timed out after ${ms} ms waiting for ${what}; load ${load}; sink ${JSON.stringify(state())}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

const connected = (sink: MqttSink): Promise<void> =>
  until(
    'the sink to connect',
    () => (sink.stats() as { state: string }).state === 'ready',
    30_000,
    () => sink.stats(),
  );

async function throughput(messages: number): Promise<void> {
  const broker = await Mosquitto.create();
  const dir = tempDir('sluice-bench-mqtt-');
  const sink = new MqttSink(mqttConfig(broker.url, { queueMax: 64 << 20 }), {
    log: quiet(),
    routerId: 'bench',
    stateDir: dir,
  });
  try {
    const sessions = await billedSessions(1);
    const host = new SinkHost({ log: quiet() });
    host.add(sink);
    host.attach(sessions.manager);
    // The host holds every event until its start, which starts its sinks: the sink is never started on its own.
    await host.start();
    await connected(sink);
    const started = process.hrtime.bigint();
    for (let i = 0; i < messages; i++) host.usage(sessions.batch);
    await until(
      `${messages} acknowledged`,
      () => (sink.stats() as { acknowledged: number }).acknowledged >= messages,
      300_000,
      () => sink.stats(),
    );
    const s = Number(process.hrtime.bigint() - started) / 1e9;
    const bytes = (sink.stats() as { queue: { bytes: number } }).queue.bytes;
    console.log(
      `  throughput         ${(messages / s).toFixed(0).padStart(7)} msg/s   (${messages} usage messages of 1 ` +
        `session, QoS 1, max_inflight 100, ${s.toFixed(2)} s; queue ${bytes} B after)`,
    );
    await host.close();
  } finally {
    sink.destroy();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `n` ACTIVE data sessions in a real SessionManager and one tick's usage batch for all of them. */
async function billedSessions(n: number): Promise<{ manager: SessionManager; batch: UsageReport[] }> {
  const manager = new SessionManager({ store: new MemoryStore(), checkpointIntervalMs: 3_600_000 });
  await manager.recover();
  const batch: UsageReport[] = [];
  for (let i = 0; i < n; i++) {
    const mac =
      `02:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:` +
      `${(i & 255).toString(16).padStart(2, '0')}:01`;
    const { session } = await manager.activate({
      mac,
      metric: 'bytes',
      allotment: 1n << 32n,
      ...(i % 3 === 0 && { user: `user-${i}` }),
      payment: { method: 'bench', reference: `ref-${i}`, amount: 1n, asset: 'USDC', at: Date.now() },
    });
    // The slot is what the meter's usage batch carries (sessionManagerPort takes it from the manager).
    batch.push({
      mac,
      sessionId: session.id,
      slot: manager.slotOf(session.id),
      metric: 'bytes',
      deltaBytes: 150_000 + i,
      deltaDownloadBytes: 120_000 + i,
      deltaUploadBytes: 30_000,
      remainingBytes: 1e9,
      exhausted: false,
    });
  }
  manager.applyUsage(
    batch.map((u) => u.sessionId),
    batch.map(() => 1_234_567),
    batch.length,
  );
  return { manager, batch };
}

async function tickCost(n: number, ticks: number, changed: number): Promise<void> {
  const dir = tempDir('sluice-bench-mqtt-');
  // A broker that is not there: the sink queues (the tick's cost is the same connected; sending is a later turn).
  const sink = new MqttSink(mqttConfig('mqtt://127.0.0.1:1', { queueMax: 256 << 20 }), {
    log: quiet(),
    routerId: 'bench',
    stateDir: dir,
  });
  const { manager, batch } = await billedSessions(n);
  // Which sessions a tick billed varies from tick to tick: a few random subsets, used in turn.
  const batches = changed >= 1 ? [batch] : Array.from({ length: 8 }, () => batch.filter(() => Math.random() < changed));
  const host = new SinkHost({ log: quiet() });
  host.add(sink);
  host.attach(manager);
  await host.start();
  const ms: number[] = [];
  const cpu: number[] = [];
  const buffers0 = process.memoryUsage().arrayBuffers;
  for (let t = 0; t < ticks; t++) {
    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    host.usage(batches[t % batches.length]!);
    const c = process.cpuUsage(cpu0);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    cpu.push((c.user + c.system) / 1000);
    await new Promise((r) => setImmediate(r));
  }
  const buffers1 = process.memoryUsage().arrayBuffers;
  const stats = sink.stats() as { usage_messages: number; queue: { bytes: number } };
  if (stats.usage_messages === 0)
    throw new Error(`no usage report reached the sink in ${ticks} ticks: nothing was measured`);
  const warm = ms.slice(Math.min(5, ms.length - 1)).sort((a, b) => a - b);
  const warmCpu = cpu.slice(Math.min(5, cpu.length - 1)).sort((a, b) => a - b);
  const rows = Math.round(batches.reduce((a, b) => a + b.length, 0) / batches.length);
  console.log(
    `  tick ${String(n).padStart(6)} active, ${String(rows).padStart(6)} rows  wall ` +
      `median ${pct(warm, 50).toFixed(2)} ms p95 ${pct(warm, 95).toFixed(2)} max ${warm.at(-1)!.toFixed(2)}` +
      ` | CPU median ${pct(warmCpu, 50).toFixed(2)} ms min ${warmCpu[0]!.toFixed(2)} ` +
      `p95 ${pct(warmCpu, 95).toFixed(2)}   (first tick ${ms[0]!.toFixed(2)} ` +
      `ms; ${(stats.usage_messages / ticks).toFixed(0)} messages per tick;` +
      ` queued ${(stats.queue.bytes / 1e6).toFixed(1)} MB on disk; ArrayBuffer ` +
      `memory ${(buffers0 / 1e6).toFixed(1)} → ${(buffers1 / 1e6).toFixed(1)} MB over the ${ticks} ticks)`,
  );
  if (changed < 1) {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  // Where the time goes: the sink's steps done by hand in each of `ticks` more ticks (same batch, an outbox of its
  // own, the broker still away), each step timed apart: the figures alone, then the report (figures and rows) into a
  // reused writer, then the outbox appendMany.
  const box = await Outbox.open({ dir: join(dir, 'split'), maxBytes: 256 << 20, consumers: ['mqtt'] });
  // As the sink has them: numbers that start as doubles, one figuresInto function for every tick (messages.ts,
  // host.ts).
  const big = Number.MAX_SAFE_INTEGER;
  const scratch = { user: null, allotment: big, used: big, remaining: big, bytes: big, state: 'ACTIVE' } as Parameters<
    SessionManager['figuresInto']
  >[2];
  let at = 0;
  const figuresInto = (id: string, out: typeof scratch, slot?: number): boolean =>
    manager.figuresInto(id, at, out, slot);
  const prefixes = new RowPrefixes();
  const writer = new MsgpackWriter(1024);
  const cpuMs = (c0: NodeJS.CpuUsage): number => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const figures: number[] = [],
    report: number[] = [],
    append: number[] = [];
  for (let t = 0; t < ticks; t++) {
    at = Date.now();
    let c0 = process.cpuUsage();
    for (const u of batch) figuresInto(u.sessionId, scratch, u.slot);
    const f = cpuMs(c0);
    c0 = process.cpuUsage();
    const parts = usageParts('msgpack', {
      router: 'bench',
      at,
      usage: batch,
      figuresInto,
      maxPayload: 65536,
      prefixes,
      writer,
    });
    const b = cpuMs(c0);
    c0 = process.cpuUsage();
    box
      .appendMany(
        parts.map((p) => (seq: number, prev: number) => p.payload(seq, prev)),
        { durable: false, type: RECORD_TYPE.usage },
      )
      .catch(() => undefined);
    append.push(cpuMs(c0));
    figures.push(f);
    report.push(b);
    await new Promise((r) => setImmediate(r));
  }
  await box.close();
  const med = (v: number[]): string => {
    const w = v.slice(Math.min(5, v.length - 1)).sort((a, b) => a - b);
    return `${pct(w, 50).toFixed(2)} (min ${w[0]!.toFixed(2)})`;
  };
  console.log(
    `    CPU median per step: the report ${med(report)} ms (of which reading the figures alone ` +
      `takes ${med(figures)}), outbox append ${med(append)} ms`,
  );
  for (const format of ['msgpack', 'json'] as const) {
    const at = Date.now();
    const parts = usageParts(format, {
      router: 'bench',
      at,
      usage: batch,
      figuresInto: (id, out, slot) => manager.figuresInto(id, at, out, slot),
      maxPayload: 65536,
    });
    const bytes = parts.reduce((a, p) => a + p.payload(123456, 123000).length, 0);
    console.log(
      `    ${format.padEnd(8)} ${(bytes / n).toFixed(1)} bytes per session per report (${parts.length} ` +
        `messages, ${bytes} bytes)`,
    );
  }
  await host.close();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The same tick with the broker connected (normal operation): the tick's CPU (building and queuing, as above) and
 * the process's CPU from the tick's start until the broker acknowledged every part of its report (the tick, then
 * reading the parts back from the outbox and publishing them in later turns), so moving work out of the tick
 * shows up here.
 */
async function connectedCost(n: number, ticks: number): Promise<void> {
  const broker = await Mosquitto.create();
  const dir = tempDir('sluice-bench-mqtt-');
  const sink = new MqttSink(mqttConfig(broker.url, { queueMax: 256 << 20 }), {
    log: quiet(),
    routerId: 'bench',
    stateDir: dir,
  });
  const host = new SinkHost({ log: quiet() });
  try {
    const { manager, batch } = await billedSessions(n);
    host.add(sink);
    host.attach(manager);
    await host.start();
    await connected(sink);
    const tick: number[] = [];
    const total: number[] = [];
    const acked = (): number => (sink.stats() as { acknowledged: number }).acknowledged;
    for (let t = 0; t < ticks; t++) {
      const messages = (): number => (sink.stats() as { usage_messages: number }).usage_messages;
      const [before, queued] = [acked(), messages()];
      const c0 = process.cpuUsage();
      host.usage(batch);
      const c1 = process.cpuUsage(c0);
      const target = before + messages() - queued;
      await until(
        `the tick's report acknowledged`,
        () => acked() >= target,
        60_000,
        () => sink.stats(),
      );
      const c2 = process.cpuUsage(c0);
      tick.push((c1.user + c1.system) / 1000);
      total.push((c2.user + c2.system) / 1000);
    }
    const w = (v: number[]) => v.slice(Math.min(5, v.length - 1)).sort((a, b) => a - b);
    const [tk, tt] = [w(tick), w(total)];
    console.log(
      `  connected ${String(n).padStart(6)} active, all billed: tick CPU median ${pct(tk, 50).toFixed(2)} ms ` +
        `(min ${tk[0]!.toFixed(2)})` +
        ` | tick + sending its report until acknowledged: CPU median ${pct(tt, 50).toFixed(2)} ms ` +
        `(min ${tt[0]!.toFixed(2)})`,
    );
  } finally {
    await host.close();
    sink.destroy();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function main(argv: string[]): Promise<void> {
  const messages = Number(arg(argv, 'messages', '20000'));
  const ticks = Number(arg(argv, 'ticks', '40'));
  const sizes = arg(argv, 'sessions', '1000,10000').split(',').map(Number);
  const changed = arg(argv, 'changed', '1,0.25').split(',').map(Number);
  console.log(
    `mqtt: ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (figures are noisy on a shared machine)`,
  );
  await throughput(messages);
  for (const n of sizes) for (const f of changed) await tickCost(n, ticks, f);
  if (!argv.includes('--no-connected')) for (const n of sizes) await connectedCost(n, ticks);
}
