// tier: fast
// The portal's queue around a tick's task (meter/tick-dispatch.ts): held while the task fetches, released as
// soon as the task signals its fetch over (before it scans), and at the latest twice the fetch timeout after a task
// that never signals, while that task is still running.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Meter, type MeteredSession, type SessionsPort, type UsageTaskRunner } from '../../src/meter/index.ts';
import type { UsageResult, UsageTask } from '../../src/meter/task.ts';
import { recordingPortalQueue } from '../helpers/portal-queue.ts';

const A = '02:00:00:00:00:0a';

function sessions(): SessionsPort {
  const s: MeteredSession = { id: 's1', mac: A, metric: 'bytes', startedAt: 0 };
  return {
    active: (m) => (m === A ? s : undefined),
    activeSessions: () => [s],
    applyUsage: () => {},
    remainingBytes: () => 1e12,
  };
}

/** A runner whose task the test drives: `signal()` says the fetch is over, `fail()` ends the task. */
function drivenRunner(): { runner: UsageTaskRunner; started: Promise<UsageTask>; signal(): void; fail(): void } {
  let task: UsageTask | undefined;
  let fail = (): void => {};
  let begun = (_t: UsageTask): void => {};
  const started = new Promise<UsageTask>((resolve) => (begun = resolve));
  const runner: UsageTaskRunner = {
    run: (t) => {
      task = t;
      begun(t);
      return new Promise<UsageResult>((resolve) => {
        fail = () => resolve({ tick: t.tick, ok: false, problem: 'failed', message: 'driven', fetchMs: 0 });
      });
    },
    close: async () => {},
    destroy: async () => {},
  };
  return {
    runner,
    started,
    signal: () => {
      const cell = new Int32Array(task!.fetchSignal!);
      Atomics.store(cell, 0, task!.tick);
      Atomics.notify(cell, 0);
    },
    fail: () => fail(),
  };
}

function meterWith(runner: UsageTaskRunner, events: string[], fetchTimeoutMs: number): Meter {
  return new Meter({
    source: { kind: 'socket', path: '/nonexistent/ndsctl.sock' },
    pollIntervalMs: 60_000,
    fetchTimeoutMs,
    sessions: sessions(),
    runner,
    portal: recordingPortalQueue(events),
  });
}

/** Rejects if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `events` gets `name`; rejects after `ms`. */
function when(events: string[], name: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (events.includes(name)) resolve();
      else if (Date.now() > deadline) reject(new Error(`no ${name} within ${ms} ms`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

/** A meter on a driven runner, its tick started and its task running. */
async function tickStarted(fetchTimeoutMs: number) {
  const events: string[] = [];
  const driven = drivenRunner();
  const meter = meterWith(driven.runner, events, fetchTimeoutMs);
  const tick = meter.tick();
  await within(driven.started, 5000, 'the task started');
  return { events, driven, meter, tick };
}

/** Waits for the queue's release, then ends the task (ends it anyway when no release comes, so the test can end). */
async function endAfterRelease(events: string[], driven: { fail(): void }): Promise<void> {
  try {
    await when(events, 'unlock', 5000);
    events.push('task ends');
  } finally {
    driven.fail();
  }
}

test('the queue is released when the task signals its fetch over, while the task still runs', async () => {
  const { events, driven, meter, tick } = await tickStarted(60_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(events, ['lock'], 'held while the task fetches');
  driven.signal();
  await endAfterRelease(events, driven);
  await tick;
  assert.equal(events, ['lock', 'unlock', 'task ends']);
  await meter.close();
});

test('a task that never signals holds the queue at most twice the fetch timeout, not until it ends', async () => {
  const { events, driven, meter, tick } = await tickStarted(100);
  await endAfterRelease(events, driven);
  const report = await tick;
  assert.not.ok(report.ok);
  assert.equal(events, ['lock', 'unlock', 'task ends']);
  await meter.close();
});

test('a task that ends without signalling releases the queue at once', async () => {
  const { events, driven, meter, tick } = await tickStarted(60_000);
  driven.fail();
  await within(tick, 5000, 'the tick ended');
  assert.equal(events, ['lock', 'unlock']);
  await meter.close();
});

test.run();
