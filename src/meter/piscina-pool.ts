/**
 * The Piscina pool itself, in a module of its own so that pool.ts can import it on first use: an idle router whose
 * ticks run on the main thread never evaluates Piscina (docs/performance.md, "Idle memory").
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { UsageResult, UsageTask } from './task.ts';
import type { KernelUsageResult, KernelUsageTask } from './kernel-task.ts';

export interface ThreadOptions {
  filename: string | URL;
  min: number;
  max: number;
  /** A thread above `min` with no task for this long ends (Piscina's idleTimeout). */
  idleTimeoutMs?: number;
  execArgv?: string[];
  /**
   * Called a second after the pool's last thread has ended (and none started since): the busy period is over
   * (heap-release.ts).
   */
  onThreadsEnded?: () => void;
}

/** How long after the last thread ends its memory is let go: the thread's own isolate is gone by then. */
const ENDED_SETTLE_MS = 1000;

export function startPiscina(o: ThreadOptions): Piscina<UsageTask | KernelUsageTask, UsageResult | KernelUsageResult> {
  const filename =
    typeof o.filename === 'string' && !o.filename.startsWith('file:') ? o.filename : fileURLToPath(o.filename);
  const pool = new Piscina<UsageTask | KernelUsageTask, UsageResult | KernelUsageResult>({
    filename,
    minThreads: o.min,
    maxThreads: o.max,
    ...(o.idleTimeoutMs === undefined ? {} : { idleTimeout: o.idleTimeoutMs }),
    // Tasks wait on I/O (the fetch); message-based hand-off keeps the worker's event loop free between tasks.
    atomics: 'disabled',
    ...(o.execArgv ? { execArgv: o.execArgv } : {}),
  });
  const ended = o.onThreadsEnded;
  // Piscina tells of a thread's end before it drops the thread from `threads`: look again a moment later.
  if (ended)
    pool.on('workerDestroy', () => {
      setTimeout(() => {
        if (pool.threads.length === 0) ended();
      }, ENDED_SETTLE_MS).unref();
    });
  return pool;
}
