/**
 * The Piscina pool that runs usage tasks. Threads are kept (minThreads = maxThreads) because a thread start costs
 * tens of ms and the table index is rebuilt per thread; a thread that dies is replaced by Piscina and the next tick
 * recovers from the shared table.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { SnapshotBuffer } from '../portal/index.ts';
import { EpochAccountant } from './epochs.ts';
import type { UsageTaskRunner } from './ports.ts';
import { runUsageTask, type UsageResult, type UsageTask } from './task.ts';

export interface PoolOptions {
  /** Threads (`main.workers`), default 1: ticks never overlap, a second thread only helps if one is slow to start. */
  workers?: number;
  /** Default: usage-worker.mjs next to the running bundle (dist/). From sources, pass workers/usage.ts + tsx. */
  workerPath?: string | URL;
  /** E.g. ['--import', 'tsx'] to run workers/usage.ts unbundled. */
  execArgv?: string[];
}

export function defaultWorkerPath(): URL {
  return new URL('./usage-worker.mjs', import.meta.url);
}

export function createPoolRunner(options: PoolOptions = {}): UsageTaskRunner {
  const path = options.workerPath ?? defaultWorkerPath();
  const filename = typeof path === 'string' && !path.startsWith('file:') ? path : fileURLToPath(path);
  const threads = Math.max(1, Math.floor(options.workers ?? 1));
  const pool = new Piscina<UsageTask, UsageResult>({
    filename,
    minThreads: threads,
    maxThreads: threads,
    // Tasks wait on I/O (the fetch); message-based hand-off keeps the worker's event loop free between tasks.
    atomics: 'disabled',
    ...(options.execArgv ? { execArgv: options.execArgv } : {}),
  });
  return {
    run: (task) => pool.run(task),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

/** Runs tasks on the calling thread (tests; a fallback where worker threads are unavailable). */
export function createInlineRunner(): UsageTaskRunner {
  const accountant = new EpochAccountant();
  const buffer = new SnapshotBuffer();
  return {
    run: (task) => runUsageTask(task, accountant, buffer),
    close: async () => {},
    destroy: async () => {},
  };
}
