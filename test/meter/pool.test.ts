// tier: daemon
// The real worker pool (workers/usage.ts through tsx), fetching from a real ndsctl.sock server and from the ndsctl
// stand-in process: a worker that dies mid-tick is replaced and the next tick neither loses nor doubles usage.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createAdaptiveRunner,
  createPoolRunner,
  Meter,
  type MeteredSession,
  type SessionsPort,
  type UsageTaskRunner,
} from '../../src/meter/index.ts';
import { holdOptimizer, optimizerHeld, releaseOptimizer } from '../../src/optimizer.ts';
import type { UsageTask } from '../../src/meter/task.ts';
import type { KernelUsageTask } from '../../src/meter/kernel-task.ts';
import { createTable } from '../../src/meter/table.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import { PortalStateFile } from '../peers/ndsctl-state.ts';
import { tryLock, unlock } from '../peers/ndsctl-lock.ts';
import { recordingPortalQueue } from '../helpers/portal-queue.ts';

const WORKER = fileURLToPath(new URL('../../workers/usage.ts', import.meta.url));
const A = '02:00:00:00:00:0a';

/** A sessions port with one old data session: every delta of A is billable. */
function sessionsFor(mac: string, used: { bytes: number }): SessionsPort {
  const s: MeteredSession = { id: 's1', mac, metric: 'bytes', startedAt: 0 };
  return {
    active: (m) => (m === mac ? s : undefined),
    activeSessions: () => [s],
    applyUsage: (_ids, bytes, count, left) => {
      for (let i = 0; i < count; i++) {
        used.bytes += bytes[i]!;
        left[i] = 1e12 - used.bytes;
      }
    },
    remainingBytes: () => 1e12 - used.bytes,
  };
}

/** Injects a fault into chosen ticks, as a crashing worker would. */
function faulty(runner: UsageTaskRunner, faults: Map<number, 'exit' | 'throw'>): UsageTaskRunner {
  return {
    ...runner,
    run: (task: UsageTask) =>
      runner.run({ ...task, ...(faults.has(task.tick) ? { fault: faults.get(task.tick)! } : {}) }),
  };
}

/**
 * A Meter on the adaptive runner with `options`, reading a socket portal that lists A; `done(waitMs)` closes the
 * meter, waits `waitMs` (what a closed runner might still do), then the portal.
 */
async function adaptiveMeter(
  options: Parameters<typeof createAdaptiveRunner>[0],
): Promise<{ meter: Meter; done: (waitMs?: number) => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-'));
  const portal = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  portal.addClient(A, '10.0.0.10');
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: 60_000,
    sessions: sessionsFor(A, { bytes: 0 }),
    runner: createAdaptiveRunner(options),
  });
  return {
    meter,
    done: async (waitMs = 0) => {
      await meter.close();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('worker exits mid-tick (after writing the table): pool replaces it, next tick counts exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-'));
  const portal = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  portal.addClient(A, '10.0.0.10');
  portal.auth(A);
  const used = { bytes: 0 };
  const errors: string[] = [];
  const faults = new Map<number, 'exit' | 'throw'>([
    [3, 'exit'],
    [5, 'throw'],
  ]);
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: 60_000,
    sessions: sessionsFor(A, used),
    runner: faulty(createPoolRunner({ workerPath: WORKER, execArgv: ['--import', 'tsx'] }), faults),
  });
  meter.on('error', (e) => errors.push(e.code));
  try {
    await meter.tick();
    let expected = 0;
    for (let t = 2; t <= 7; t++) {
      // Tick 4 follows the failed tick 3 with a re-auth (counters back to 0): tick 3's reading is the old epoch's tail.
      if (t === 4) {
        portal.deauth(A);
        portal.addClient(A, '10.0.0.10');
        portal.auth(A);
      }
      portal.addTraffic(A, 10 * 1024 * t, 1024);
      expected += 10 * 1024 * t + 1024;
      const r = await meter.tick();
      assert.is(r.ok, !faults.has(t), `tick ${t}`);
    }
    assert.is(used.bytes, expected);
    assert.equal(errors, ['ERR_METER_WORKER', 'ERR_METER_WORKER']);
    assert.equal(meter.stats().skipped, { 'worker-error': 2 });
  } finally {
    await meter.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command source: the worker runs `ndsctl json` (stand-in process), retries while busy (exit 4)', async () => {
  const state = PortalStateFile.create({ config: { flavour: 'opennds' } });
  try {
    state.update((m) => {
      m.addClient(A, '10.0.0.10');
      m.auth(A);
    });
    const used = { bytes: 0 };
    const meter = new Meter({
      source: { kind: 'command', argv: state.command },
      pollIntervalMs: 60_000,
      sessions: sessionsFor(A, used),
      workerPath: WORKER,
      workerExecArgv: ['--import', 'tsx'],
      fetchTimeoutMs: 20_000,
    });
    try {
      const first = await meter.tick();
      assert.ok(first.ok, first.message);
      assert.is(first.clients, 1);
      state.update((m) => {
        m.addTraffic(A, 64 * 1024, 0);
      });
      const lock = `${state.path}.lock`;
      assert.ok(tryLock(lock));
      setTimeout(() => unlock(lock), 400);
      const busy = await meter.tick();
      assert.ok(busy.ok, busy.message);
      assert.is(used.bytes, 64 * 1024);
    } finally {
      await meter.close();
    }
  } finally {
    state.cleanup();
  }
});

test('the fetch runs inside the portal queue, which is released before the tick ends', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-'));
  const portal = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const events: string[] = [];
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: 60_000,
    sessions: sessionsFor(A, { bytes: 0 }),
    workerPath: WORKER,
    workerExecArgv: ['--import', 'tsx'],
    portal: recordingPortalQueue(events),
  });
  meter.on('tick', () => events.push('tick'));
  try {
    const r = await meter.tick();
    assert.ok(r.ok, r.message);
    assert.equal(events, ['lock', 'unlock', 'tick']);
  } finally {
    await meter.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'idle router: with no live session and a small portal the tick runs on the main thread; a live session sends ' +
    'it to the pool',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pool-'));
    const portal = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
    const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
    portal.addClient(A, '10.0.0.10');
    portal.auth(A);
    const counter = globalThis as { inlineTicks?: number };
    counter.inlineTicks = 0;
    const used = { bytes: 0 };
    let live = false;
    const paying = sessionsFor(A, used);
    const sessions: SessionsPort = {
      ...paying,
      active: (m) => (live ? paying.active(m) : undefined),
      activeSessions: () => (live ? paying.activeSessions() : []),
    };
    const meter = new Meter({
      source: { kind: 'socket', path: server.path },
      pollIntervalMs: 60_000,
      sessions,
      workerPath: fileURLToPath(new URL('../fixtures/meter/usage-where.ts', import.meta.url)),
      workerExecArgv: ['--import', 'tsx'],
    });
    // As the daemon starts (main.ts): V8's optimizing compiler held until the pool has work.
    holdOptimizer();
    try {
      for (let t = 0; t < 2; t++) assert.ok((await meter.tick()).ok);
      assert.is(counter.inlineTicks, 2, 'no session: both ticks on the main thread');
      assert.ok(optimizerHeld(), 'idle ticks leave the optimizer held');
      live = true;
      portal.addTraffic(A, 5 * 1024, 1024);
      const billed = await meter.tick();
      assert.ok(billed.ok, billed.message);
      assert.is(counter.inlineTicks, 2, 'a live session: the pool');
      assert.not.ok(optimizerHeld(), 'work for the pool lets the optimizer go');
      // The pool's accountant continues the epochs the main thread's wrote in the shared table: exactly the new bytes.
      assert.is(used.bytes, 6 * 1024);
      portal.addTraffic(A, 2048, 0);
      await meter.tick();
      assert.is(used.bytes, 8 * 1024);
      live = false;
      await meter.tick();
      assert.is(counter.inlineTicks, 3, 'the session gone: back on the main thread');
    } finally {
      releaseOptimizer();
      await meter.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'no live session but a portal past the inline size: the first tick on the main thread, the next ones on the ' +
    'pool',
  async () => {
    const counter = globalThis as { inlineTicks?: number };
    counter.inlineTicks = 0;
    const { meter, done } = await adaptiveMeter({
      hasLiveSessions: () => false,
      inlineMaxBytes: 100,
      workerPath: fileURLToPath(new URL('../fixtures/meter/usage-where.ts', import.meta.url)),
      execArgv: ['--import', 'tsx'],
    });
    try {
      (globalThis as { released?: number }).released = 0;
      for (let t = 0; t < 3; t++) assert.ok((await meter.tick()).ok);
      assert.is(counter.inlineTicks, 1);
      assert.is(
        (globalThis as { released?: number }).released,
        1,
        "the big snapshot's buffer is not kept on the main thread",
      );
    } finally {
      await done();
    }
  },
);

test("the pool's last thread ends: the busy period's memory is let go once, not when the runner closes", async () => {
  let ended = 0;
  let live = true;
  const { meter, done } = await adaptiveMeter({
    hasLiveSessions: () => live,
    idleTimeoutMs: 200,
    onThreadsEnded: () => ended++,
    workerPath: WORKER,
    execArgv: ['--import', 'tsx'],
  });
  try {
    assert.ok((await meter.tick()).ok, 'a live session: the tick runs on the pool');
    live = false;
    const deadline = Date.now() + 15_000;
    while (ended === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.is(ended, 1, 'told once the thread has ended');
    live = true;
    assert.ok((await meter.tick()).ok, 'a new thread for the next live tick');
  } finally {
    await done(1500);
  }
  assert.is(ended, 1, 'closing the runner (its thread destroyed) is not the end of a busy period');
});

/**
 * sluice_count as nft 1.0.6 prints it with one client, A, padded with `pad` spaces (a dump of that many bytes more).
 */
function kernelDump(down: number, pad = 0): string {
  const counter = (name: string, handle: number, bytes: number): object => ({
    counter: { family: 'netdev', name, table: 'sluice_count', handle, packets: 1, bytes },
  });
  const text = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'netdev', name: 'sluice_count', handle: 5 } },
      counter('cu_02000000000a', 10, 0),
      counter('cd_02000000000a', 11, down),
    ],
  });
  return text.slice(0, -1) + ' '.repeat(pad) + '}';
}

/** Kernel ticks through `runner` on one shared table, A in the roster as authenticated. */
function kernelTicks(runner: UsageTaskRunner): (down: number, pad?: number) => Promise<number> {
  const table = createTable(16);
  let tick = 0;
  return async (down, pad = 0) => {
    const task: KernelUsageTask = {
      kind: 'kernel',
      tick: ++tick,
      table,
      counters: { kind: 'inline', text: kernelDump(down, pad) },
      roster: { key: `roster-${tick}`, entries: [[A, 2]] },
      timeoutMs: 5000,
    };
    const r = await runner.runKernel!(task);
    assert.ok(r.ok, r.ok ? '' : r.message);
    return r.ok ? r.dumpBytes : 0;
  };
}

test(
  'kernel counters: a small dump is read on the main thread with live sessions too (the optimizer let go); ' +
    'a dump past the inline size sends the next ticks to the pool',
  async () => {
    const counts = globalThis as { inlineKernelTicks?: number };
    counts.inlineKernelTicks = 0;
    const runner = createAdaptiveRunner({
      hasLiveSessions: () => true,
      inlineMaxBytes: 4096,
      workerPath: fileURLToPath(new URL('../fixtures/meter/usage-where.ts', import.meta.url)),
      execArgv: ['--import', 'tsx'],
    });
    holdOptimizer();
    try {
      const tick = kernelTicks(runner);
      await tick(1000);
      await tick(2000);
      assert.is(counts.inlineKernelTicks, 2, 'a live session, a dump of a few hundred bytes: the main thread');
      assert.not.ok(optimizerHeld(), "a live session's tick lets the optimizer go, though no pool thread starts");
      assert.ok((await tick(3000, 8192)) > 4096);
      assert.is(counts.inlineKernelTicks, 3, 'the big dump itself was read here (its size not known before)');
      await tick(4000, 8192);
      assert.is(counts.inlineKernelTicks, 3, 'the next one on the pool');
    } finally {
      releaseOptimizer();
      await runner.destroy();
    }
  },
);

test("kernel ticks on the main thread: the busy period's end told once, idleTimeoutMs after the last", async () => {
  let ended = 0;
  let live = true;
  const runner = createAdaptiveRunner({
    hasLiveSessions: () => live,
    idleTimeoutMs: 200,
    onThreadsEnded: () => ended++,
    workerPath: WORKER,
    execArgv: ['--import', 'tsx'],
  });
  try {
    const tick = kernelTicks(runner);
    await tick(1000);
    live = false;
    await tick(1000);
    assert.is(ended, 0, 'not at once');
    await new Promise((r) => setTimeout(r, 250));
    await tick(1000);
    assert.is(ended, 1, 'told once the idle time has passed');
    await tick(1000);
    assert.is(ended, 1, 'and once only');
    live = true;
    await tick(2000);
    live = false;
    await new Promise((r) => setTimeout(r, 250));
    await tick(2000);
    assert.is(ended, 2, 'a second busy period, told again');
  } finally {
    await runner.destroy();
  }
});

test.run();
