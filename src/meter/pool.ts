/**
 * The runners of usage tasks: the Piscina pool (the worker threads), the calling thread (tests), and the adaptive
 * runner the Meter uses by default, which keeps no worker thread alive on an idle router.
 */
import { pathToFileURL } from 'node:url';
import { releaseHeap } from '../heap-release.ts';
import { releaseOptimizer } from '../optimizer.ts';
import { SnapshotBuffer } from '../portal/index.ts';
import { EpochAccountant } from './epochs.ts';
import type { UsageTaskRunner } from './ports.ts';
import { runUsageTask, type UsageResult, type UsageTask } from './task.ts';
import { KeptRoster, runKernelTask, type KernelUsageResult, type KernelUsageTask } from './kernel-task.ts';

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

type PiscinaPool = {
  run(task: UsageTask | KernelUsageTask, options?: { name?: string }): Promise<UsageResult | KernelUsageResult>;
  close(): Promise<void>;
  destroy(): Promise<void>;
};

/**
 * Piscina is imported when the first pool task runs, not when the daemon starts: an idle router that never needs a
 * worker thread does not evaluate it (docs/performance.md, "Idle memory"). Work for the pool is work for V8's
 * optimizing compiler too: the daemon holds it off while idle (optimizer.ts) and lets it go here, before the thread
 * starts.
 */
async function startPool(
  options: PoolOptions,
  threads: { min: number; max: number; idleTimeoutMs?: number; onThreadsEnded?: () => void },
): Promise<PiscinaPool> {
  releaseOptimizer();
  const { startPiscina } = await import('./piscina-pool.ts');
  return startPiscina({
    filename: options.workerPath ?? defaultWorkerPath(),
    ...threads,
    ...(options.execArgv ? { execArgv: options.execArgv } : {}),
  });
}

/** A pool made on first use (one at a time even when tasks race), that close/destroy may find never made. */
function lazyPool(make: () => Promise<PiscinaPool>): UsageTaskRunner {
  let pool: Promise<PiscinaPool> | undefined;
  const get = (): Promise<PiscinaPool> => (pool ??= make());
  return {
    run: async (task) => (await get()).run(task) as Promise<UsageResult>,
    runKernel: async (task) => (await get()).run(task, { name: 'kernel' }) as Promise<KernelUsageResult>,
    close: async () => {
      if (pool) await (await pool).close();
    },
    destroy: async () => {
      if (pool) await (await pool).destroy();
    },
  };
}

/**
 * The pool with its threads kept (minThreads = maxThreads): a thread start costs tens of ms and the table index is
 * rebuilt per thread; a thread that dies is replaced by Piscina and the next tick recovers from the shared table.
 */
export function createPoolRunner(options: PoolOptions = {}): UsageTaskRunner {
  const threads = Math.max(1, Math.floor(options.workers ?? 1));
  return lazyPool(() => startPool(options, { min: threads, max: threads }));
}

/** Runs tasks on the calling thread (tests; a fallback where worker threads are unavailable). */
export function createInlineRunner(): UsageTaskRunner {
  const accountant = new EpochAccountant();
  const buffer = new SnapshotBuffer();
  const kept = new KeptRoster();
  return {
    run: (task) => runUsageTask(task, accountant, buffer),
    runKernel: (task) => runKernelTask(task, accountant, buffer, kept),
    close: async () => {},
    destroy: async () => {},
  };
}

/**
 * Below this snapshot size (the last one read), a tick with no live session runs on the main thread: 64 KiB is ~70
 * openNDS clients, a scan of well under a millisecond here (docs/performance.md: 10k clients, 8.9 MB, ~8 ms).
 */
export const INLINE_MAX_BYTES = 64 * 1024;
/** A worker thread with no task for this long ends (the next pool task starts a new one, tens of ms). */
export const POOL_IDLE_TIMEOUT_MS = 30_000;

export interface AdaptiveOptions extends PoolOptions {
  /** True while any session is live: then every portal tick runs on the pool (a small kernel tick stays here). */
  hasLiveSessions: () => boolean;
  inlineMaxBytes?: number;
  idleTimeoutMs?: number;
  /**
   * When the pool's last thread has ended, or `idleTimeoutMs` after the last kernel tick with live sessions on the main
   * thread (the busy period is over). Default: releaseHeap (heap-release.ts), not once the runner is closing.
   */
  onThreadsEnded?: () => void;
}

/**
 * The Meter's default runner. While sessions are live, every portal tick is fetched, scanned and accounted on the
 * worker pool; a kernel tick whose last dump and listing were small runs on the main thread, live sessions or not
 * (see runKernel below). With none live and a small portal (the last snapshot under `inlineMaxBytes`) the tick runs on
 * the main thread instead, and the pool's thread ends after `idleTimeoutMs` without a task: an idle router carries no
 * worker thread (~12 MB resident, not given back once a thread has run), and the main thread's heap grown in the busy
 * period is let go then (`onThreadsEnded`). So the first tick with no live session runs here too,
 * whatever the portal's size: one scan of a large list on the main thread at start-up (10k clients: ~10 ms here),
 * after which its size sends the next ticks to the pool. Switching is safe at any tick: the state is the shared
 * table, and each side's accountant is only a cache of it (rebuilt from the table, epochs.ts).
 */
export function createAdaptiveRunner(options: AdaptiveOptions): UsageTaskRunner {
  const threads = Math.max(1, Math.floor(options.workers ?? 1));
  let closing = false;
  const threadsEnded = options.onThreadsEnded ?? releaseHeap;
  const idleMs = options.idleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS;
  /** When a kernel tick with live sessions last ran on this thread (performance.now()); undefined: none since idle. */
  let liveHereAt: number | undefined;
  const pool = lazyPool(() =>
    startPool(options, {
      min: 0,
      max: threads,
      idleTimeoutMs: idleMs,
      onThreadsEnded: () => {
        if (!closing) threadsEnded();
      },
    }),
  );
  // The main thread runs the worker's own module (dist/usage-worker.mjs): the same code, and none of it in sluice.mjs.
  let inline: Promise<WorkerModule> | undefined;
  const inlineModule = (): Promise<WorkerModule> =>
    (inline ??= import(workerUrl(options.workerPath ?? defaultWorkerPath()).href));
  const inlineMax = options.inlineMaxBytes ?? INLINE_MAX_BYTES;
  let lastBytes = 0;
  return {
    run: async (task) => {
      if (lastBytes > inlineMax || options.hasLiveSessions()) {
        const result = await pool.run(task);
        if (result.ok) lastBytes = result.snapshotBytes;
        return result;
      }
      const worker = await inlineModule();
      const result = await worker.default(task);
      if (result.ok) lastBytes = result.snapshotBytes;
      // Too big to go on reading here (the next ticks go to the pool): do not keep its buffer on the main thread.
      if (lastBytes > inlineMax) worker.releaseBuffer?.();
      return result;
    },
    // The kernel's tick reads a dump of a few hundred bytes per client through the thread's long-lived shell (no fork
    // of the daemon) and, now and then, the portal's listing: while both are small it runs here, live sessions or not.
    // A worker thread for it would be a second isolate compiling the same code again and collecting its own garbage:
    // at 32 clients its thread and V8's helper threads took 3.8-5.7 ms/s of a daemon's first minute, the scan here
    // well under a millisecond a tick (docs/performance.md).
    runKernel: async (task) => {
      if (lastBytes > inlineMax) {
        const result = await pool.runKernel!(task);
        if (result.ok) lastBytes = Math.max(result.dumpBytes, result.snapshotBytes);
        return result;
      }
      if (options.hasLiveSessions()) {
        // Live sessions' ticks are work worth compiling, on whichever thread they run (optimizer.ts).
        releaseOptimizer();
        liveHereAt = performance.now();
      } else if (liveHereAt !== undefined && performance.now() - liveHereAt >= idleMs) {
        // The busy period these ticks metered is over, as a pool thread's end would say for its ticks.
        liveHereAt = undefined;
        if (!closing) threadsEnded();
      }
      const worker = await inlineModule();
      const result = await worker.kernel(task);
      if (result.ok) lastBytes = Math.max(result.dumpBytes, result.snapshotBytes);
      if (lastBytes > inlineMax) worker.releaseBuffer?.();
      return result;
    },
    close: () => {
      closing = true;
      return pool.close();
    },
    destroy: () => {
      closing = true;
      return pool.destroy();
    },
  };
}

/** What workers/usage.ts exports. */
interface WorkerModule {
  default: (task: UsageTask) => Promise<UsageResult>;
  kernel: (task: KernelUsageTask) => Promise<KernelUsageResult>;
  releaseBuffer?: () => void;
}

function workerUrl(path: string | URL): URL {
  return typeof path === 'string' && !path.startsWith('file:') ? pathToFileURL(path) : new URL(path);
}
